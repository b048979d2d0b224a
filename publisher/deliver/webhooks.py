"""Delivering outgoing webhooks (issue 22): the deliveries publisher.store.outbox wrote with
each change, POSTed at least once, signed by the Standard Webhooks scheme (the
`standardwebhooks` library), retried with backoff over about a day, the endpoint disabled
when they are exhausted.

Headers: `webhook-id` (msg_<event>_<endpoint>: the same on every attempt, so a receiver
deduplicates on it), `webhook-timestamp` (the attempt's wall-clock time: receivers refuse old
ones) and `webhook-signature` (v1,<base64 HMAC-SHA256 of id.timestamp.body>). Connections
go through sources.network's guard: public addresses only unless the operator allows
private ones (`webhooks.allow_private_addresses`, for a receiver on this host).
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import httpx
from standardwebhooks import Webhook

from publisher.config import PublisherConfig, WebhooksConfig
from publisher.deliver.webhook_http import Connections
from publisher.errors import PublisherError
from publisher.sources.network import Address, Network, is_public, names_private_host
from publisher.store import Store, processes, webhook_queue
from publisher.store.webhook_queue import Due, Outcome

__all__ = [
    "BACKOFF",
    "DeliveryRun",
    "Deliverer",
    "WebhookUrlInvalid",
    "check_url",
    "deliver_due",
    "message_id",
]

# waits after the 1st, 2nd... failed attempt: 8 attempts over about 27 hours, then give up
BACKOFF = tuple(
    timedelta(seconds=s) for s in (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
)
Posted = tuple[Due, "Future[Outcome]"]  # a claimed delivery and its attempt under way
KEEP = timedelta(days=30)  # delivered deliveries and their attempts, then pruned
LEASE = timedelta(minutes=2)  # longer than an attempt can take (timeouts below)
RESPONSE_KEPT = 2000  # characters of a receiver's answer kept with the attempt
MAX_URL = 2000


class WebhookUrlInvalid(PublisherError):
    """An endpoint URL the deliverer will not post to; the message says why."""


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL as it will be used, or WebhookUrlInvalid: https:// to a public host, or (only
    when the operator allows private addresses) http(s) to 127.0.0.1 or localhost. A public
    name that resolves to a private address is refused again when connecting."""
    url = url.strip()
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise WebhookUrlInvalid("this is not a web address") from None
    if len(url) > MAX_URL or not parsed.host or parsed.userinfo:
        raise WebhookUrlInvalid("this is not a web address (or it holds a password)")
    private = names_private_host(url)
    if private and not (allow_private and _names_loopback(parsed.host)):
        raise WebhookUrlInvalid(
            "it points at a private or local address; only public addresses are allowed"
        )
    if parsed.scheme == "https" or (parsed.scheme == "http" and private):
        return url
    raise WebhookUrlInvalid("it must start with https://")


def _names_loopback(host: str) -> bool:
    host = host.lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_too(address: Address) -> bool:
    """The operator allows this host's own receivers: loopback, never the rest of the
    private network (10/8, 192.168/16, cloud metadata at 169.254.169.254...)."""
    return is_public(address) or address.is_loopback


def webhook_connections(settings: WebhooksConfig, network: Network | None = None) -> Connections:
    """Kept-alive connections, each checked on the address it is made to (sources.network's
    guard: public addresses, and loopback when the operator allows it); `network` resolves
    names (tests pass their own resolver)."""
    public = _loopback_too if settings.allow_private_addresses else is_public
    resolve = (network or Network()).resolve
    return Connections(
        Network(resolve=resolve, public=public), timeout=settings.timeout, keep=settings.workers
    )


def message_id(due: Due) -> str:
    return f"msg_{due.event_id}_{due.endpoint_id}"


@dataclass
class DeliveryRun:
    """What one pass delivered: the note the daemon logs."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    lost: int = 0

    @property
    def note(self) -> str:
        if not (self.delivered or self.retrying or self.failed or self.lost):
            return ""
        return (
            f"webhooks: {self.delivered} delivered, {self.retrying} to retry, "
            f"{self.failed} given up"
        )

    def add(self, state: str) -> None:
        name = {"delivered": "delivered", "pending": "retrying", "failed": "failed"}
        setattr(self, name.get(state, "lost"), getattr(self, name.get(state, "lost")) + 1)


def _wall() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deliverer:
    """Claims due deliveries and posts them. `clock` decides what is due and when to retry
    (tests pass a controllable one); `wall` is the signature's timestamp (the receiver
    compares it with its own clock, so it stays the real time); `connections` are the
    kept-alive guarded ones of webhook_connections by default."""

    store: Store
    settings: WebhooksConfig = field(default_factory=WebhooksConfig)
    clock: Callable[[], datetime] = _wall
    wall: Callable[[], datetime] = _wall
    connections: Connections | None = None
    holder: str = field(default_factory=processes.new_holder)
    batch: int = 100
    monotonic: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._own_connections = self.connections is None
        if self.connections is None:
            self.connections = webhook_connections(self.settings)
        self._signers: dict[str, Webhook] = {}  # one key object per endpoint secret
        self._pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="webhooks")

    def close(self) -> None:
        webhook_queue.release(self.store, holder=self.holder)
        self._pool.shutdown(wait=True)
        if self._own_connections and self.connections is not None:
            self.connections.close()

    def run_once(self) -> DeliveryRun:
        """One claim of due deliveries, posted at once (none of them waits on another: the
        claim never takes two of one ordering key), each outcome recorded."""
        run = DeliveryRun()
        self._record([(due, self._pool.submit(self._attempt, due)) for due in self._claim()], run)
        return run

    def run_until_idle(self, *, limit: int = 1000) -> DeliveryRun:
        """Claims until nothing is due right now (at most `limit` claims), overlapped: the
        next batch is claimed, and the previous one's outcomes recorded, while a batch is
        being posted. Order per ordering key holds as in run_once: a delivery being posted
        is still pending, so no claim takes one queued behind it."""
        total, previous = DeliveryRun(), list[Posted]()
        batch = self._claim()
        for passes in range(1, limit + 1):
            current = [(due, self._pool.submit(self._attempt, due)) for due in batch]
            self._record(previous, total)  # the pool has gone on to `current` meanwhile
            if not current and not previous:
                break
            # with nothing in flight, what waited behind the batch just recorded may be due
            batch, previous = (self._claim() if passes < limit else []), current
        self._record(previous, total)
        return total

    def _claim(self) -> list[Due]:
        return webhook_queue.claim_due(
            self.store, holder=self.holder, now=self.clock(), lease=LEASE, limit=self.batch
        )

    def _record(self, posted: list[Posted], run: DeliveryRun) -> None:
        """Wait for the batch's posts, record their outcomes in one transaction."""
        if not posted:
            return
        results = [(due, future.result()) for due, future in posted]
        now = self.clock()
        for state in webhook_queue.record_outcomes(
            self.store, results, holder=self.holder, now=now
        ):
            run.add(state)

    def _attempt(self, due: Due) -> Outcome:
        outcome = self._post(due)
        return outcome if outcome.ok else _next_step(due, outcome, self.clock())

    def _post(self, due: Due) -> Outcome:
        body = json.dumps(due.payload, separators=(",", ":"), ensure_ascii=False)
        msg_id, stamp = message_id(due), self.wall()
        headers = {
            "content-type": "application/json",
            "user-agent": "publisher-webhooks/1",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": self._signer(due.secret).sign(msg_id, stamp, body),
        }
        started = self.monotonic()
        assert self.connections is not None
        try:
            answer = self.connections.post(due.url, body.encode(), headers, kept=RESPONSE_KEPT)
        except Exception as exc:  # noqa: BLE001 - every failure is an attempt to log
            took = int((self.monotonic() - started) * 1000)
            return Outcome(False, None, took, error=_describe(exc))
        took = int((self.monotonic() - started) * 1000)
        ok = 200 <= answer.status < 300
        error = None if ok else f"HTTP {answer.status}"
        return Outcome(ok, answer.status, took, error=error, response=answer.text)

    def _signer(self, secret: str) -> Webhook:
        # the secret's key decoded once per endpoint, not once per POST (a race between two
        # workers makes two equal objects: harmless)
        signer = self._signers.get(secret)
        if signer is None:
            signer = self._signers[secret] = Webhook(secret)
        return signer


def _describe(exc: BaseException) -> str:
    kind = type(exc).__name__
    text = " ".join(str(exc).split())[:300]
    return f"{kind}: {text}" if text else kind


def _next_step(due: Due, outcome: Outcome, now: datetime) -> Outcome:
    """A failed attempt: retry after the next wait of BACKOFF, or give up (all used) and
    disable the endpoint."""
    made = due.attempts + 1
    if made <= len(BACKOFF):
        return replace(outcome, retry_at=now + BACKOFF[made - 1])
    why = f"{made} attempts failed over a day; the last: {outcome.error}"
    return replace(outcome, disable=why[:500])


def deliver_due(
    config: PublisherConfig, store: Store, *, now: datetime | None = None
) -> DeliveryRun:
    """One pass of the daemon's job (a fresh deliverer: nothing is kept between passes)."""
    fixed = now
    webhook_queue.reap_dead(store)
    webhook_queue.prune(store, before=(now or _wall()) - KEEP)
    deliverer = Deliverer(
        store, config.webhooks, clock=(lambda: fixed) if fixed is not None else _wall
    )
    try:
        return deliverer.run_until_idle()
    finally:
        deliverer.close()
