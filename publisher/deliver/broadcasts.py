"""Sending a broadcast (an action alert, issue 21): send, send now, resume, the due ones.

A broadcast is rendered (publisher.render.alert) from its draft, then, when it is sent,
claimed (publisher.store.broadcasts.claim_broadcast: one process only, `sending`) and
composed ONCE into an edition of the reserved campaign key "~broadcast" numbered by its id.
From there it is a digest edition's send: the same `deliver_edition` (dispatcher, ledger,
exactly-once mode, outcomes, numbers marks, resume), to the broadcast's audience (topics;
its exclusions, paused and suppressed people as `skipped` ledger rows), under the sender
staff chose. The checks, the rendering and the test send (outside the ledger) are
publisher.deliver.broadcast_preview's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from publisher.config import PublisherConfig
from publisher.deliver import approval
from publisher.deliver.base import DeliveryBackend
from publisher.deliver.broadcast_lease import SendLease, running_clock
from publisher.deliver.broadcast_preview import (
    RenderedBroadcast,
    refuse_unsendable,
    render_broadcast,
)
from publisher.deliver.report import DeliveryReport
from publisher.deliver.service import deliver_edition
from publisher.errors import DeliveryError, PublisherError
from publisher.store import Store, audit, processes
from publisher.store.broadcast_leases import hold_broadcast
from publisher.store.broadcasts import (
    Broadcast,
    BroadcastNotFound,
    broadcast_edition,
    claim_broadcast,
    due_broadcasts,
    finish_broadcast,
    get_broadcast,
)
from publisher.store.leases import DEFAULT_LEASE

__all__ = [
    "DueReport",
    "broadcast_status",
    "resume_broadcast",
    "send_broadcast",
    "send_broadcast_now",
    "send_due_broadcasts",
]

log = logging.getLogger(__name__)
RESUMABLE = ("sending", "failed")  # its send started and did not finish


def broadcast_status(report: DeliveryReport) -> str:
    """The broadcast's status once its edition's send ended: `sent` (everyone reached,
    some perhaps uncertain), `failed` (some or all refused: a resume retries them), or
    still `sending` (paused, stopped: a resume finishes it)."""
    if report.status in ("sent", "uncertain", "empty"):
        return "sent"
    if report.status in ("failed", "partly_failed"):
        return "failed"
    return "sending"


def send_broadcast(
    config: PublisherConfig,
    store: Store,
    broadcast_id: int,
    *,
    by: str | None,
    now: datetime,
    version: int | None = None,
    backend: DeliveryBackend[Any, Any] | None = None,
    owner: str | None = None,
    lease: timedelta = DEFAULT_LEASE,
    clock: Callable[[], datetime] | None = None,
    **options: Any,
) -> DeliveryReport:
    """Send a draft or scheduled broadcast (of `version`, when given) now: approval
    checked, rendered, claimed (DeliveryError when another process has it, or it was sent),
    composed once into its edition, sent exactly once per person. The claim is a lease of
    `owner` (default: this process), renewed while it sends (on `clock`, default `now`
    running on): if the process dies, a daemon takes the send over. Options: see
    publisher.deliver.service.SendOptions."""
    held = _Held(owner or processes.this_process(), lease, clock or running_clock(now))
    claimed, rendered = _claim(
        config, store, broadcast_id, by=by, now=now, version=version, held=held
    )
    return _send(config, store, claimed, rendered, now, backend, options, held)


def send_broadcast_now(
    config: PublisherConfig,
    store: Store,
    broadcast_id: int,
    *,
    by: str,
    version: int,
    clock: Callable[[], datetime],
) -> tuple[Broadcast, Callable[[], None]]:
    """Send now from an edge that answers first (the admin page, the API): checked and
    claimed BEFORE the answer, as `send_broadcast` (so of two requests one gets it; the
    other, and anything that stops it going, raises here: NotApproved, DeliveryError), and
    the send itself returned to run AFTER the answer (its failure is logged: the
    broadcast's status says how it went). Returns (the claimed broadcast, the send)."""
    held = _Held(processes.this_process(), DEFAULT_LEASE, clock)
    claimed, rendered = _claim(
        config, store, broadcast_id, by=by, now=clock(), version=version, held=held
    )

    def send() -> None:
        try:
            _send(config, store, claimed, rendered, clock(), None, {}, held)
        except PublisherError as exc:
            log.warning("broadcast %s not sent: %s", broadcast_id, exc)

    return claimed, send


def _claim(
    config: PublisherConfig,
    store: Store,
    broadcast_id: int,
    *,
    by: str | None,
    now: datetime,
    version: int | None,
    held: _Held,
) -> tuple[Broadcast, RenderedBroadcast]:
    """The broadcast claimed for sending (`sending`: no other process sends it) and its
    rendering; raises what stops it going, before anything is claimed."""
    broadcast = _load(store, broadcast_id)
    approval.require_approved(config, store, "broadcast", broadcast_id)
    if broadcast.status not in ("draft", "scheduled"):
        raise DeliveryError(_not_sendable(broadcast))
    refuse_unsendable(config, broadcast)
    rendered = render_broadcast(config, store, broadcast, now=now)  # before the claim
    claimed = claim_broadcast(
        store, broadcast_id, version=version, by=by or "system", now=now, owner=held.owner,
        lease=held.lease,
    )  # fmt: skip
    if claimed is None:
        raise DeliveryError(_not_sendable(_load(store, broadcast_id)))
    return claimed, rendered


def resume_broadcast(
    config: PublisherConfig,
    store: Store,
    broadcast_id: int,
    *,
    by: str | None,
    now: datetime,
    backend: DeliveryBackend[Any, Any] | None = None,
    owner: str | None = None,
    lease: timedelta = DEFAULT_LEASE,
    clock: Callable[[], datetime] | None = None,
    **options: Any,
) -> DeliveryReport:
    """Finish a broadcast whose send started and did not finish (`sending`, `failed`), as
    `publisher send --resume` finishes an edition: nobody is sent it twice. It takes the
    send's claim (a lease of `owner`, default this process, renewed while it sends; `clock`
    for the renewals, default `now` running on) whoever had it. Options: see SendOptions
    (`resend_uncertain`, `resend_batch`...)."""
    broadcast = _load(store, broadcast_id)
    approval.require_approved(config, store, "broadcast", broadcast_id)
    if broadcast.status not in RESUMABLE:
        raise DeliveryError(
            f"broadcast {broadcast_id} is {broadcast.status}: nothing to resume"
            + ("; `publisher broadcast send` sends it" if broadcast.status != "sent" else "")
        )
    rendered = None
    if broadcast.edition_id is None:  # stopped before it was composed
        rendered = render_broadcast(config, store, broadcast, now=now)
    held = _Held(owner or processes.this_process(), lease, clock or running_clock(now))
    hold_broadcast(store, broadcast_id, owner=held.owner, now=now, lease=lease)
    return _send(config, store, broadcast, rendered, now, backend, options, held)


def _send(
    config: PublisherConfig,
    store: Store,
    broadcast: Broadcast,
    rendered: RenderedBroadcast | None,
    now: datetime,
    backend: DeliveryBackend[Any, Any] | None,
    options: dict[str, Any],
    held: _Held,
) -> DeliveryReport:
    """Compose (once) and send under the claim's heartbeat; record how it ended, unless
    another process took the send over meanwhile (then it is theirs to record). A send
    stopped between batches keeps its lease, to lapse: a daemon finishes it."""
    edition_id = broadcast.edition_id
    if edition_id is None:
        assert rendered is not None
        edition_id = broadcast_edition(
            store, broadcast.id, subject=rendered.subject, preheader=rendered.preheader,
            html=rendered.html, text=rendered.text, now=now,
        )  # fmt: skip
    beat = SendLease(store, broadcast.id, owner=held.owner, lease=held.lease, clock=held.clock)
    options = options | {"should_stop": beat.should_stop(options.get("should_stop"))}
    try:
        with beat:
            report = deliver_edition(config, store, edition_id, now=now, backend=backend, **options)
    except Exception:
        finish_broadcast(store, broadcast.id, "failed", now=now, owner=held.owner)  # resumable
        raise
    finish_broadcast(
        store, broadcast.id, broadcast_status(report), now=now, owner=held.owner,
        release=report.status != "sending",
    )  # fmt: skip
    return report


@dataclass(frozen=True)
class _Held:
    """Who sends the broadcast, and the lease its claim is renewed for, on what clock."""

    owner: str
    lease: timedelta
    clock: Callable[[], datetime]


def _load(store: Store, broadcast_id: int) -> Broadcast:
    broadcast = get_broadcast(store, broadcast_id)
    if broadcast is None:
        raise BroadcastNotFound(f"no broadcast {broadcast_id}")
    return broadcast


def _not_sendable(broadcast: Broadcast) -> str:
    if broadcast.status in ("draft", "scheduled"):  # the version asked for moved on
        return (
            f"broadcast {broadcast.id} was changed by {broadcast.updated_by} (now version "
            f"{broadcast.version}): look at it again before sending"
        )
    if broadcast.status in RESUMABLE:
        return (
            f"broadcast {broadcast.id} is {broadcast.status}: its send started; "
            f"`publisher broadcast send {broadcast.id} --resume` finishes it"
        )
    return f"broadcast {broadcast.id} is {broadcast.status}: it cannot be sent again"


@dataclass
class DueReport:
    """What one pass over the due broadcasts did (the daemon logs `note`)."""

    sent: list[tuple[int, str]]  # (broadcast id, its status afterwards)
    problems: list[tuple[int, str]]  # (broadcast id, why it did not go)

    @property
    def note(self) -> str:
        done = [f"broadcast {i}: {status}" for i, status in self.sent]
        done += [f"broadcast {i} not sent: {why}" for i, why in self.problems]
        return "; ".join(done) or "broadcasts: none due"


def send_due_broadcasts(
    config: PublisherConfig,
    store: Store,
    *,
    now: datetime,
    backend_for: Callable[[], DeliveryBackend[Any, Any]] | None = None,
    **options: Any,
) -> DueReport:
    """Send every scheduled broadcast whose time has come (the daemon, every poll). Each is
    claimed first: of several daemons, one sends it; a broadcast another process claimed
    in between is left to it. One that may not go (not approved) stays scheduled."""
    report = DueReport([], [])
    for due in due_broadcasts(store, now=now):
        backend = backend_for() if backend_for else None
        try:
            sent = send_broadcast(
                config, store, due.id, by="scheduler", now=now, version=due.version,
                backend=backend, **options,
            )  # fmt: skip
        except PublisherError as exc:
            if _claimed_by_another(store, due):
                continue
            log.warning("broadcast %s not sent: %s", due.id, exc)
            report.problems.append((due.id, str(exc)))
            continue
        report.sent.append((due.id, broadcast_status(sent)))
        audit.record(
            store, "scheduler", "broadcast sent", f"{due.id}: {sent.status}", ip=None, now=now
        )
    return report


def _claimed_by_another(store: Store, due: Broadcast) -> bool:
    now_ = get_broadcast(store, due.id)
    return now_ is None or now_.version != due.version
