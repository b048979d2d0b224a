"""The dispatcher: stream the audience in batches, claim each batch in the ledger, send the
batches concurrently through a backend, retry what is worth retrying, record the outcome.

The calling thread is the producer: it claims batches (`inflight`), builds each one's
recipients and, when the backend can (`encode`: SendGrid serialises the request body), its
request, and queues it for `workers` sending threads, a few batches ahead (at most
`3 * workers` claimed and unrecorded: memory stays flat, and a worker never waits for the
store or for body building). It also records outcomes (`sent`, `failed`, `uncertain`). A
worker marks its batch `requested` (one UPDATE) right before each attempt writes the request,
and back to `inflight` when the provider definitely refused it (429, 5xx, connection refused),
before it sleeps out the backoff: after a crash only `requested` rows may have reached the
provider (see publisher.store.ledger). Batches still queued when the send stops (paused,
Ctrl-C) were never requested: they stay `inflight` and the resume sends them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from queue import SimpleQueue
from typing import Any

from publisher.deliver import killpoints
from publisher.deliver.base import (
    BOUNCED,
    DeliveryBackend,
    Message,
    PermanentError,
    Recipient,
    Scheduled,
    TooLargeError,
    TransientError,
    UncertainError,
)
from publisher.store import Store, ledger
from publisher.store.ledger import INFLIGHT, REQUESTED, SENT, Due

# mark(recipients, status, scheduled): record in the ledger that a (part of a) batch is
# about to be requested (exactly-once mode: under this provider batch), was accepted, or was
# definitely refused; called from worker threads.
Mark = Callable[[Sequence[Recipient], str, Scheduled | None], None]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    max_failed_batches: int = 3

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        """Exponential backoff with jitter; never sooner than the provider's Retry-After."""
        backoff = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        jittered = backoff * (0.5 + rng() / 2)
        return max(jittered, retry_after) if retry_after is not None else jittered


@dataclass
class Outcome:
    failed: dict[int, str] = field(default_factory=dict)
    uncertain: list[int] = field(default_factory=list)
    batch_error: str | None = None  # the whole batch failed (counts towards pausing)
    requests: int = 0
    scheduled: Scheduled | None = None  # exactly-once mode: the batch's provider batch id

    def merge(self, other: Outcome) -> Outcome:
        self.failed.update(other.failed)
        self.uncertain.extend(other.uncertain)
        self.batch_error = self.batch_error or other.batch_error
        self.requests += other.requests
        self.scheduled = self.scheduled or other.scheduled
        return self

    def split_failed(self) -> tuple[dict[int, str], dict[int, str]]:
        """(failed, bounced): a bounce is a permanent refusal of the address."""
        failed, bounced = {}, {}
        for sid, error in self.failed.items():
            if error.startswith(BOUNCED):
                bounced[sid] = error[len(BOUNCED) :]
            else:
                failed[sid] = error
        return failed, bounced


@dataclass
class DispatchResult:
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    uncertain: int = 0
    unknown_batches: int = 0  # exactly-once mode: outcome unknown, to cancel and resend
    batches: int = 0
    requests: int = 0
    failed_batches: int = 0
    paused: bool = False
    stopped: bool = False  # asked to stop (daemon shutdown): the rest waits for a resume
    last_error: str | None = None


def send_with_retries(
    backend: DeliveryBackend,
    prepared: Any,
    recipients: Sequence[Recipient],
    batch_key: str,
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    mark: Mark | None = None,
    encoded: Any = None,
    send_at: datetime | None = None,
) -> Outcome:
    """One batch: retry transient errors, split on 413, fail on refusals, never resend an
    uncertain request. `mark` (the ledger) hears `requested` right before the backend
    writes the batch (through its hooks) and `inflight` after every definite refusal, so a
    crash during a backoff sleep resends. `encoded`: the batch's request, built beforehand
    by `backend.encode` (every attempt sends it; the halves of a 413 are built afresh).
    `send_at`: exactly-once mode, the batch gets a provider batch id delivering then."""
    everyone = [r.subscriber_id for r in recipients]
    hooks = _Hooks(recipients, mark)
    scheduled: Scheduled | None = None
    for attempt in range(1, policy.max_attempts + 1):
        try:
            if send_at is not None and scheduled is None:
                killpoints.reached("batch_id.before")
                scheduled = backend.new_batch(send_at)
                killpoints.reached("batch_id.created")
            hooks.scheduled = scheduled
            if encoded is None:
                encoded = backend.encode(prepared, recipients, batch_key)
            failed = backend.send(prepared, encoded, recipients, hooks, scheduled)
            return Outcome(failed=failed, requests=attempt, scheduled=scheduled)
        except TransientError as exc:
            if mark:
                mark(recipients, INFLIGHT, None)  # refused: nothing of it was accepted
            if attempt == policy.max_attempts:
                message = f"{exc} (gave up after {attempt} attempts)"
                return Outcome(
                    dict.fromkeys(everyone, message), batch_error=message, requests=attempt
                )
            killpoints.reached("retry.sleep")
            sleep(policy.delay(attempt, exc.retry_after, rng))
        except TooLargeError as exc:
            if mark:
                mark(recipients, INFLIGHT, None)
            if len(recipients) == 1:
                return Outcome({everyone[0]: str(exc)}, requests=attempt)
            half = len(recipients) // 2
            parts = [
                send_with_retries(
                    backend, prepared, part, batch_key, policy,
                    sleep=sleep, rng=rng, mark=mark, send_at=send_at,
                )
                for part in (recipients[:half], recipients[half:])
            ]  # fmt: skip
            return parts[0].merge(parts[1]).merge(Outcome(requests=attempt))
        except PermanentError as exc:
            if mark:
                mark(recipients, INFLIGHT, None)  # refused: resend after a crash, never assume sent
            return Outcome(
                dict.fromkeys(everyone, str(exc)), batch_error=str(exc), requests=attempt
            )
        except UncertainError as exc:  # left `requested`: assumed sent, or cancelled
            uncertain = everyone if exc.uncertain is None else exc.uncertain
            return Outcome(
                failed=exc.failed, uncertain=uncertain, requests=attempt, scheduled=scheduled
            )
    raise AssertionError("unreachable")


class _Hooks:
    """The ledger's side of a backend's send: `writing` marks the part `requested` (with
    the batch id in exactly-once mode, in the same transaction), `accepted` marks it sent."""

    def __init__(self, recipients: Sequence[Recipient], mark: Mark | None) -> None:
        self.recipients = recipients
        self.mark = mark
        self.scheduled: Scheduled | None = None

    def writing(self, part: Sequence[Recipient]) -> None:
        if self.mark:
            self.mark(part, REQUESTED, self.scheduled)
        killpoints.reached("request.before_write")

    def accepted(self, part: Sequence[Recipient]) -> None:
        if self.mark:
            self.mark(part, SENT, None)


def batched(items: Iterable[Due], size: int) -> Iterator[list[Due]]:
    batch: list[Due] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Recipients(Sequence[Recipient]):
    """A batch's recipients kept as plain tuples, a Recipient made when one is read.

    The collector stops tracking a plain tuple of strings and numbers at once, not a
    Recipient (a tuple subclass): the thousand Recipients of every batch waiting in the queue
    or in flight would be promoted to the oldest generation and bring on a full collection
    every few batches (~50 ms each here), a pause of every sending thread."""

    def __init__(self, rows: list[tuple[int, str, str | None, str, str]]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return _Recipients(self._rows[index])
        return Recipient._make(self._rows[index])


@dataclass
class _Batch:
    number: int
    recipients: _Recipients
    encoded: Any  # the backend's prepared request (`encode`), or None


@dataclass
class Dispatcher:
    store: Store
    backend: DeliveryBackend
    message: Message
    policy: RetryPolicy
    now: datetime
    progress: Callable[[int], None] | None = None
    # Asked between batches: True stops taking new ones (SIGTERM to the daemon). Batches a
    # worker is sending finish; queued ones stay `inflight` (never requested) for a resume.
    should_stop: Callable[[], bool] | None = None
    sleep: Callable[[float], None] = time.sleep
    elapsed: Callable[[], float] = time.monotonic  # ledger times: `now` + time since start
    workers: int | None = None  # default backend.workers (exactly-once mode may use fewer)
    earliest: datetime | None = None  # exactly-once mode: never deliver before (--send-at)
    max_unknown: int = 1_000_000  # exactly-once mode: stop once this many batches are unknown
    result: DispatchResult = field(default_factory=DispatchResult)
    _started: float = field(default=0.0, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    # Ledger writes of this send, one at a time: a writer waiting here wakes as soon as the
    # other is done, where SQLite's busy handler would sleep (1, 2, 5, 10... ms) and retry.
    _writing: threading.Lock = field(default_factory=threading.Lock, init=False)

    def stamp(self) -> datetime:
        """The time ledger rows are written with: the caller's `now` advanced by the seconds
        this send has run (so the ledger shows progress: schedule_state reads it as liveness;
        the caller's clock stays the only source of the date)."""
        return self.now + timedelta(seconds=self.elapsed() - self._started)

    def run(self, due: Iterable[Due]) -> DispatchResult:
        self._started = self.elapsed()
        prepared = self.backend.prepare(self.message)
        number = ledger.next_batch_number(self.store, self.message.edition_id)
        workers = max(1, self.workers or self.backend.workers)
        ahead = self.backend.build_ahead * workers  # `workers` sending, the rest queued
        ready: SimpleQueue[_Batch | None] = SimpleQueue()
        done: SimpleQueue[tuple[_Batch, Outcome | BaseException | None]] = SimpleQueue()
        threads = [
            threading.Thread(
                target=self._work, args=(prepared, ready, done), name=f"deliver-{i}", daemon=True
            )
            for i in range(workers)
        ]
        for thread in threads:
            thread.start()
        outstanding, error = 0, None

        def record(block: bool) -> None:  # one finished batch (got first: Ctrl-C safe)
            nonlocal outstanding, error
            finished = done.get() if block else done.get_nowait()
            outstanding -= 1
            error = self._record(*finished) or error

        try:
            # plain tuples (see _Recipients): a Due waiting in a batch would be promoted too
            for batch in batched(map(tuple, due), self.backend.batch_size):  # type: ignore[arg-type]
                while outstanding >= ahead:  # wait for a worker to finish one
                    record(block=True)
                while not done.empty():  # record what finished meanwhile (liveness, progress)
                    record(block=False)
                if self.should_stop is not None and self.should_stop():
                    self.result.stopped = True
                    self._stop.set()
                if self._stop.is_set():  # paused, stopped, or a worker failed
                    break
                ready.put(self._prepare(prepared, number, batch))  # type: ignore[arg-type]
                killpoints.reached("claim.queued")
                number += 1
                outstanding += 1
        except BaseException:  # also on Ctrl-C: queued batches stay inflight, never requested
            self._stop.set()
            raise
        finally:  # count what the workers recorded
            for _ in threads:
                ready.put(None)
            while outstanding:
                record(block=True)
            for thread in threads:
                thread.join()
        if error is not None:
            raise error
        if self.result.failed_batches >= self.policy.max_failed_batches:
            self.result.paused = True
        return self.result

    def _prepare(self, prepared: Any, number: int, batch: list[tuple]) -> _Batch:
        """Claim the batch (`inflight`) and build its request, ahead of the workers."""
        with self._writing:
            ledger.claim_batch(
                self.store,
                self.message.edition_id,
                number,
                batch,  # type: ignore[arg-type]  # plain tuples in Due's field order
                now=self.stamp(),
            )
        public_url = self.message.public_url
        recipients = _Recipients(
            sorted(  # by id: a part of a batch is a range (mark_range)
                [(d[0], d[1], d[2], d[3], public_url) for d in batch]  # Due: id, email, name, token
            )
        )
        return _Batch(
            number, recipients, self.backend.encode(prepared, recipients, self._key(number))
        )

    def _key(self, number: int) -> str:
        return f"{self.message.edition_id}-{number}"

    def _send_at(self) -> datetime | None:
        """Exactly-once mode: when the provider delivers a batch sent now (`hold` ahead)."""
        if not self.backend.cancellable:
            return None
        at = self.stamp() + self.backend.hold
        return max(at, self.earliest) if self.earliest else at

    def _mark(self, number: int) -> Mark:
        edition = self.message.edition_id

        def mark(part: Sequence[Recipient], status: str, scheduled: Scheduled | None) -> None:
            first, last = part[0].subscriber_id, part[-1].subscriber_id
            with self._writing:
                ledger.mark_range(
                    self.store, edition, number, first, last, status, now=self.stamp(),
                    provider_id=scheduled.batch_id if scheduled else None,
                    send_at=scheduled.send_at if scheduled else None,
                )  # fmt: skip

        return mark

    def _work(
        self,
        prepared: Any,
        ready: SimpleQueue[_Batch | None],
        done: SimpleQueue[tuple[_Batch, Outcome | BaseException | None]],
    ) -> None:
        """A sending thread: take the next prepared batch, send it, record its outcome in
        the ledger before taking another (so at most `workers` batches are ever
        `requested`), hand the outcome to the producer for counting."""
        while (batch := ready.get()) is not None:
            if self._stop.is_set():
                done.put((batch, None))  # never requested: left inflight, resent on resume
                continue
            with self._lock:
                self.result.batches += 1
            try:
                outcome = send_with_retries(
                    self.backend,
                    prepared,
                    batch.recipients,
                    self._key(batch.number),
                    self.policy,
                    sleep=self.sleep,
                    mark=self._mark(batch.number),
                    encoded=batch.encoded,
                    send_at=self._send_at(),
                )
                self._finish(batch, outcome)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the producer
                self._stop.set()
                done.put((batch, exc))
                continue
            with self._lock:  # counted here, so a pause stops this worker's next batch
                if outcome.batch_error:
                    self.result.failed_batches += 1
                if self.result.failed_batches >= self.policy.max_failed_batches:
                    self._stop.set()
                if self.result.unknown_batches >= self.max_unknown:
                    self._stop.set()  # cancel (and resend) them before going on
            done.put((batch, outcome))

    def _finish(self, batch: _Batch, outcome: Outcome) -> None:
        """Write a batch's outcome to the ledger (in the worker, under the write lock). In
        exactly-once mode a batch of unknown outcome stays `requested` under its batch id:
        it is cancelled and sent again (publisher.deliver.exactly_once)."""
        failed, bounced = outcome.split_failed()
        unknown = self.backend.cancellable and outcome.uncertain and outcome.scheduled
        killpoints.reached("finish.before")
        with self._writing:
            ledger.finish_batch(
                self.store,
                self.message.edition_id,
                batch.number,
                failed=failed,
                bounced=bounced,
                uncertain=[] if unknown else outcome.uncertain,
                keep_requested=outcome.uncertain if unknown else (),
                now=self.stamp(),
            )
        killpoints.reached("finish.after")
        if unknown:
            with self._lock:
                self.result.unknown_batches += 1

    def _record(
        self, batch: _Batch, outcome: Outcome | BaseException | None
    ) -> BaseException | None:
        """In the producer: count a batch the worker recorded."""
        if outcome is None:
            return None
        if isinstance(outcome, BaseException):
            return outcome
        self._count(outcome, len(batch.recipients))
        return None

    def _count(self, outcome: Outcome, size: int) -> None:
        unknown = len(outcome.uncertain) if self.backend.cancellable and outcome.scheduled else 0
        _, bounced = outcome.split_failed()
        self.result.sent += size - len(outcome.failed) - len(outcome.uncertain)
        if self.progress:
            self.progress(size)
        self.result.requests += outcome.requests
        self.result.failed += len(outcome.failed) - len(bounced)
        self.result.bounced += len(bounced)
        self.result.uncertain += len(outcome.uncertain) - unknown
        if outcome.batch_error:
            self.result.last_error = outcome.batch_error
        elif outcome.failed:
            self.result.last_error = next(iter(outcome.failed.values())).removeprefix(BOUNCED)
