"""Sending an edition: choose the backend, build the message, reconcile the ledger, dispatch.

`publisher.pipeline.send_edition` and the CLI call these. The send's time is the `now` it is
given; elapsed seconds come from `SendOptions.elapsed` (time.monotonic unless a test gives
its own); a lease not given in SendOptions counts epoch seconds with time.time (leases are
compared across processes and hosts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from publisher.config import PublisherConfig
from publisher.deliver import broadcast_message as broadcasts
from publisher.deliver import exactly_once
from publisher.deliver.backends.registry import make_backend
from publisher.deliver.base import DeliveryBackend, Message, check_send_at
from publisher.deliver.dispatch import Dispatcher, DispatchResult, RetryPolicy
from publisher.deliver.exactly_once import Cancellation
from publisher.deliver.report import DeliveryReport, final_status
from publisher.deliver.workers import LeaseHeartbeat, claims_for
from publisher.errors import DeliveryError
from publisher.store import Store, batches, ledger, numbers, plan, processes, work
from publisher.store.audience_counts import count_audience
from publisher.store.editions import StoredEdition, get_edition, newest_edition
from publisher.store.suppression import hold_back


def policy_from(config: PublisherConfig) -> RetryPolicy:
    d = config.delivery
    return RetryPolicy(d.max_attempts, d.backoff_base, d.backoff_max, d.max_failed_batches)


def load_edition(store: Store, edition_id: int) -> StoredEdition:
    """The stored edition with this id (DeliveryError if there is none)."""
    edition = get_edition(store, edition_id)
    if edition is None:
        raise DeliveryError(f"no edition with id {edition_id}")
    return edition


def build_message(
    config: PublisherConfig,
    edition: StoredEdition,
    *,
    now: datetime,
    send_at: datetime | None = None,
    link_key: str = "",
    store: Store | None = None,
) -> Message:
    """The edition as a message; `link_key` (the store's, for a real send): its subscriber
    links say which edition they came from (publisher.support.marks). A broadcast's
    edition needs the `store` (its sender)."""
    if broadcasts.is_broadcast(edition.campaign) and store is not None:
        return broadcasts.broadcast_message(
            config, store, edition, now=now, send_at=send_at, link_key=link_key
        )
    org, campaign = config.organisation, config.campaign(edition.campaign)
    return Message(
        edition_id=edition.id,
        campaign=edition.campaign,
        number=edition.number,
        title=campaign.title,
        subject=edition.subject,
        html=edition.html,
        text=edition.text,
        from_email=org.from_email,
        from_name=org.from_name,
        reply_to=org.reply_to,
        public_url=org.public_url,
        unsubscribe_mailto=config.delivery.unsubscribe_mailto or org.from_email,
        date=now,
        send_at=send_at,
        link_key=link_key,
    )


def edition_audience(
    config: PublisherConfig, store: Store, campaign: str, edition_id: int
) -> Sequence[str]:
    """The topics an edition goes to: its campaign's audience, or its broadcast's."""
    if broadcasts.is_broadcast(campaign):
        return broadcasts.broadcast_audience(store, edition_id)
    return config.campaign(campaign).audience


def edition_campaign(store: Store, message: Message) -> str:
    """The edition's campaign key (a broadcast's message names its outbox folder instead)."""
    if message.campaign == broadcasts.CAMPAIGN:
        edition = get_edition(store, message.edition_id)
        return edition.campaign if edition else message.campaign
    return message.campaign


@dataclass(frozen=True)
class SendOptions:
    resend_uncertain: bool = False
    resend_batch: int | None = None  # staff checked the provider: batch N never arrived
    send_at: datetime | None = None
    progress: Callable[[int, int], None] | None = None
    clock: Callable[[], float] | None = None
    should_stop: Callable[[], bool] | None = None
    elapsed: Callable[[], float] = time.monotonic  # the dispatcher's seconds since start
    lease: work.Lease | None = None  # this process as the holder of work items
    lease_seconds: float = 60.0


def deliver_edition(
    config: PublisherConfig,
    store: Store,
    edition_id: int,
    *,
    now: datetime,
    backend: DeliveryBackend[Any, Any] | None = None,
    **options: Any,
) -> DeliveryReport:
    """Send (or finish sending) an edition to every active subscriber following its
    campaign, exactly once each. Options: see SendOptions; `progress(advance, total)` is
    called per finished batch."""
    opts = SendOptions(**options)
    edition = load_edition(store, edition_id)
    backend = backend or make_backend(config)
    try:
        return _deliver(config, store, edition, backend, opts, now)
    finally:
        backend.close()


def _deliver(
    config: PublisherConfig,
    store: Store,
    edition: StoredEdition,
    backend: DeliveryBackend[Any, Any],
    opts: SendOptions,
    now: datetime,
) -> DeliveryReport:
    if opts.send_at is not None:
        check_send_at(backend, now, opts.send_at)  # the provider's limit, in its settings
    # The one place a send asks for exactly-once mode; the capability goes where it is used.
    cancellation = backend.cancellation
    send_at = None if cancellation else opts.send_at  # exactly-once: each batch is scheduled
    key = numbers.link_key(store, now=now)
    message = build_message(config, edition, now=now, send_at=send_at, link_key=key, store=store)
    report = DeliveryReport(
        edition.id, edition.campaign, edition.number, backend.name, backend.destination(message)
    )
    lease = opts.lease or work.Lease(processes.new_holder(), opts.lease_seconds, time.time)
    _reconcile(store, backend, cancellation, edition.id, opts, now, report, lease)
    audience = edition_audience(config, store, edition.campaign, edition.id)
    hold_back(store, edition.id, audience, now=now)  # paused/suppressed: `skipped`, with why
    if broadcasts.is_broadcast(edition.campaign):  # its exclusions: `skipped` too
        broadcasts.exclude(store, edition.id, now=now)
    before = ledger.counts(store, edition.id)
    report.skipped = sum(before.get(s, 0) for s in ledger.DONE)
    total = max(0, count_audience(store, audience) - report.skipped)
    ledger.set_edition_status(store, edition.id, "sending")
    started = opts.clock() if opts.clock else 0.0
    with LeaseHeartbeat(store, lease):
        _rounds(config, store, backend, cancellation, message, opts, now, total, lease, report)
    if opts.clock:
        report.seconds = opts.clock() - started
    _finish(store, edition, report, now)
    return report


def _rounds(
    config: PublisherConfig,
    store: Store,
    backend: DeliveryBackend[Any, Any],
    cancellation: Cancellation | None,
    message: Message,
    opts: SendOptions,
    now: datetime,
    total: int,
    lease: work.Lease,
    report: DeliveryReport,
) -> None:
    """Plan the batches left, send them with whichever workers are running, and in
    exactly-once mode cancel and send again what became unknown."""
    edition_id = message.edition_id
    for round_ in range(1, 6):
        plan.start_round(store, edition_id, now=now)
        result = _dispatch(config, store, backend, cancellation, message, opts, now, total, lease)
        _add(report, result)
        if cancellation is None or not result.unknown_batches:
            break
        # exactly-once mode: cancel what became unknown (timeouts), then send it again
        _note_recovery(report, exactly_once.recover(store, cancellation, edition_id, now=now))
        if result.paused or result.stopped or round_ == 5:
            report.stopped = report.stopped or not result.paused  # the resume sends them
            break


def _reconcile(
    store: Store,
    backend: DeliveryBackend[Any, Any],
    cancellation: Cancellation | None,
    edition_id: int,
    opts: SendOptions,
    now: datetime,
    report: DeliveryReport,
    lease: work.Lease,
) -> None:
    """Before sending: cancel unknown batches (exactly-once mode), put staff's resend
    requests and the rows a killed run left behind in order (publisher.store.ledger);
    batches other live processes hold are theirs (publisher.store.work)."""
    work.reap_dead(store, edition_id=edition_id)
    live = work.live_numbers(store, edition_id, lease.clock)
    if cancellation is not None:
        _note_recovery(report, exactly_once.recover(store, cancellation, edition_id, now=now))
    if opts.resend_batch is not None:
        if not batches.resend_batch(store, edition_id, opts.resend_batch, now=now):
            raise DeliveryError(f"batch {opts.resend_batch} has no uncertain recipients")
    reconciled = ledger.reconcile(
        store,
        edition_id,
        now=now,
        resend_uncertain=opts.resend_uncertain,
        resend_inflight=backend.settings.idempotent,
        exclude=live,
    )
    report.recovered_uncertain = reconciled.uncertain


def _note_recovery(report: DeliveryReport, recovery: exactly_once.Recovery) -> None:
    """Exactly-once mode: the batches cancelled (sent again) and those too late to cancel."""
    report.cancelled.extend(recovery.cancelled)
    report.too_late.extend(recovery.too_late)


def _dispatch(
    config: PublisherConfig,
    store: Store,
    backend: DeliveryBackend[Any, Any],
    cancellation: Cancellation | None,
    message: Message,
    opts: SendOptions,
    now: datetime,
    total: int,
    lease: work.Lease,
) -> DispatchResult:
    workers, max_unknown = backend.settings.workers, 1_000_000
    if cancellation is not None:
        workers, max_unknown = exactly_once.send_capacity(store, cancellation, workers)
    progress = opts.progress
    dispatcher = Dispatcher(
        store,
        backend,
        message,
        policy_from(config),
        now,
        progress=(lambda n: progress(n, total)) if progress else None,
        should_stop=opts.should_stop,
        elapsed=opts.elapsed,
        workers=workers,
        cancellation=cancellation,
        earliest=opts.send_at,
        max_unknown=max_unknown,
        lease=lease,
    )
    audience = edition_audience(config, store, edition_campaign(store, message), message.edition_id)
    batches_ = claims_for(dispatcher, audience, wait=True)
    return dispatcher.run(batches_)


def _add(report: DeliveryReport, result: DispatchResult) -> None:
    for name in ("sent", "failed", "bounced", "uncertain", "batches", "requests"):
        setattr(report, name, getattr(report, name) + getattr(result, name))
    report.paused, report.stopped = result.paused, result.stopped
    report.last_error = result.last_error or report.last_error


def _finish(store: Store, edition: StoredEdition, report: DeliveryReport, now: datetime) -> None:
    if not (report.paused or report.stopped):
        ledger.skip_leftovers(store, edition.id, now=now)
    report.totals = ledger.counts(store, edition.id)
    report.status = final_status(report.totals, paused=report.paused, stopped=report.stopped)
    reached = report.totals.get(ledger.SENT, 0) + report.totals.get(ledger.UNCERTAIN, 0)
    first_time = edition.sent_at is None and reached > 0
    ledger.set_edition_status(store, edition.id, report.status, sent_at=now if first_time else None)
    report.failures = ledger.failures(store, edition.id)
    report.uncertain_batches = batches.uncertain_batches(store, edition.id)


def resumable_edition(store: Store, campaign: str, *, resend_uncertain: bool = False) -> int:
    """The campaign's newest edition, if it has something left to send."""
    unfinished = (UNSENT, *STARTED)
    leftover = [ledger.FAILED, ledger.PENDING, ledger.INFLIGHT, ledger.REQUESTED]
    if resend_uncertain:
        leftover.append(ledger.UNCERTAIN)
    newest = newest_edition(store, campaign)
    if newest is None:
        raise DeliveryError(f"{campaign}: no edition to resume")
    left = ledger.has_rows(store, newest.id, leftover)
    if newest.status in unfinished or left:
        return newest.id
    raise DeliveryError(f"{campaign}: edition {newest.number} has nothing left to send")


UNSENT = "composed"  # stored, its send never started (stopped by an error, a crash)
STARTED = ("sending", "paused", "failed")  # its send started and did not finish


def unfinished_edition(store: Store, campaign: str) -> StoredEdition | None:
    """The newest edition if it was composed and never sent (status `composed`: the next
    plain send sends it) or its send was started but never finished (`sending`, `paused`,
    `failed`: `publisher send --resume` finishes it)."""
    newest = newest_edition(store, campaign)
    return newest if newest and newest.status in (UNSENT, *STARTED) else None
