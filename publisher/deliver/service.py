"""Sending an edition: choose the backend, build the message, reconcile the ledger, dispatch.

`publisher.pipeline.send_edition` and the CLI call these; nothing here reads the clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from publisher.config import PublisherConfig
from publisher.deliver.base import DeliveryBackend, Message, Recipient
from publisher.deliver.dispatch import Dispatcher, RetryPolicy, send_with_retries
from publisher.deliver.registry import make_backend
from publisher.errors import DeliveryError
from publisher.store import Store, ledger
from publisher.store.editions import StoredEdition, get_edition
from publisher.store.models import DeliveryRow, EditionRow, SubscriberRow
from publisher.store.subscribers import count_audience
from publisher.store.suppression import hold_back

SEND_AT_LIMIT = timedelta(hours=72)  # SendGrid refuses send_at further ahead


@dataclass
class DeliveryReport:
    edition_id: int
    campaign: str
    number: int
    backend: str
    destination: str
    sent: int = 0  # this run
    failed: int = 0
    uncertain: int = 0  # timed out this run: assumed sent, not resent
    skipped: int = 0  # reached by an earlier run (or unsure), not sent again
    batches: int = 0
    requests: int = 0
    seconds: float = 0.0
    paused: bool = False
    stopped: bool = False  # stopped between batches on request; resumable
    recovered_uncertain: int = 0  # requested rows of a killed run, now assumed sent
    last_error: str | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def note(self) -> str:
        line = (
            f"{self.campaign} #{self.number}: {self.sent} sent to {self.destination}, "
            f"{self.skipped} skipped, {self.failed} failed"
        )
        if self.uncertain:
            line += f", {self.uncertain} uncertain"
        if self.paused:
            line += (
                f"; PAUSED after {self.batches} batches ({self.last_error}); fix it and "
                f"run `publisher send {self.campaign} --resume`"
            )
        elif self.stopped:
            line += f"; STOPPED on request, `publisher send {self.campaign} --resume` finishes it"
        elif self.failed:
            line += f"; `publisher send {self.campaign} --resume` retries the failed ones"
        return line


def policy_from(config: PublisherConfig) -> RetryPolicy:
    d = config.delivery
    return RetryPolicy(d.max_attempts, d.backoff_base, d.backoff_max, d.max_failed_batches)


def load_edition(store: Store, edition_id: int | StoredEdition) -> StoredEdition:
    """By id; an unstored StoredEdition (id 0, from a preview compose) is taken as it is."""
    if isinstance(edition_id, StoredEdition):
        return edition_id
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
) -> Message:
    org, campaign = config.organisation, config.campaign(edition.campaign)
    if send_at is not None and not (now <= send_at <= now + SEND_AT_LIMIT):
        raise DeliveryError("send_at must be in the future and at most 72 hours ahead")
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
    )


def deliver_edition(
    config: PublisherConfig,
    store: Store,
    edition_id: int,
    *,
    now: datetime,
    backend: DeliveryBackend | None = None,
    resend_uncertain: bool = False,
    send_at: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """Send (or finish sending) an edition to every active subscriber following its
    campaign, exactly once each. `progress(advance, total)` is called per finished batch."""
    edition = load_edition(store, edition_id)
    message = build_message(config, edition, now=now, send_at=send_at)
    backend = backend or make_backend(config)
    audience = config.campaign(edition.campaign).audience
    report = DeliveryReport(
        edition.id, edition.campaign, edition.number, backend.name, backend.destination(message)
    )
    reconciled = ledger.reconcile(
        store,
        edition.id,
        now=now,
        resend_uncertain=resend_uncertain,
        resend_inflight=getattr(backend, "idempotent", False),
    )
    report.recovered_uncertain = reconciled.uncertain
    hold_back(store, edition.id, audience, now=now)  # paused/suppressed: `skipped`, with why
    before = ledger.counts(store, edition.id)
    report.skipped = sum(before.get(s, 0) for s in ledger.DONE)
    total = max(0, count_audience(store, audience) - report.skipped)
    ledger.set_edition_status(store, edition.id, "sending")
    dispatcher = Dispatcher(
        store,
        backend,
        message,
        policy_from(config),
        now,
        progress=(lambda n: progress(n, total)) if progress else None,
        should_stop=should_stop,
    )
    started = clock() if clock else 0.0
    try:
        result = dispatcher.run(ledger.iter_due(store, edition.id, audience))
    finally:
        backend.close()
        if clock:
            report.seconds = clock() - started
    for name in (
        "sent",
        "failed",
        "uncertain",
        "batches",
        "requests",
        "paused",
        "stopped",
        "last_error",
    ):
        setattr(report, name, getattr(result, name))
    if result.paused:
        ledger.set_edition_status(store, edition.id, "paused")
    elif result.stopped:
        pass  # still 'sending': a resume (or the daemon's next start) finishes it
    else:
        ledger.skip_leftovers(store, edition.id, now=now)
        first_time = edition.status != "sent" or edition.sent_at is None
        ledger.set_edition_status(store, edition.id, "sent", sent_at=now if first_time else None)
    report.failures = ledger.failures(store, edition.id)
    return report


@dataclass
class DryRun:
    edition_id: int
    campaign: str
    number: int
    backend: str
    destination: str
    recipients: int
    batches: int
    already_done: int
    sample: str


def dry_run(
    config: PublisherConfig,
    store: Store,
    edition_id: int | StoredEdition,
    *,
    now: datetime,
    backend: DeliveryBackend | None = None,
) -> DryRun:
    """Counts, batches and one sample message; nothing is sent and the ledger is untouched."""
    edition = load_edition(store, edition_id)
    message = build_message(config, edition, now=now)
    backend = backend or make_backend(config)
    audience = config.campaign(edition.campaign).audience
    first, due = None, 0
    for item in ledger.iter_due(store, edition.id, audience):
        first = first or item
        due += 1
    sample_to = (
        Recipient(first.subscriber_id, first.email, first.name, first.token, message.public_url)
        if first
        else Recipient(0, "someone@example.org", None, "sample-token", message.public_url)
    )
    done = ledger.counts(store, edition.id)
    return DryRun(
        edition.id,
        edition.campaign,
        edition.number,
        backend.name,
        backend.destination(message),
        due,
        math.ceil(due / backend.batch_size),
        sum(done.get(s, 0) for s in ledger.DONE),
        backend.preview(backend.prepare(message), sample_to),
    )


def send_test_message(
    config: PublisherConfig,
    store: Store,
    edition_id: int | StoredEdition,
    address: str,
    *,
    now: datetime,
    backend: DeliveryBackend | None = None,
) -> str | None:
    """Send the edition to one address, outside the ledger. None on success, else the error."""
    edition = load_edition(store, edition_id)
    message = build_message(config, edition, now=now)
    backend = backend or make_backend(config)
    with store.session() as session:
        known = session.execute(
            select(SubscriberRow.name, SubscriberRow.token).where(
                SubscriberRow.email == address.strip().lower()
            )
        ).first()
    name, token = (known.name, known.token) if known else (None, "test-send")
    recipient = Recipient(0, address.strip(), name, token, message.public_url)
    try:
        outcome = send_with_retries(
            backend,
            backend.prepare(message),
            [recipient],
            f"{edition.id}-test",
            policy_from(config),
        )
    finally:
        backend.close()
    problems = list(outcome.failed.values())
    if outcome.uncertain:
        problems.append("timed out; it may still arrive")
    return "; ".join(problems) or None


def resumable_edition(store: Store, campaign: str, *, resend_uncertain: bool = False) -> int:
    """The campaign's newest edition, if it has something left to send."""
    unfinished = ("composed", "sending", "paused")
    leftover = [ledger.FAILED, ledger.PENDING, ledger.INFLIGHT, ledger.REQUESTED]
    if resend_uncertain:
        leftover.append(ledger.UNCERTAIN)
    with store.session() as session:
        newest = session.execute(
            select(EditionRow.id, EditionRow.number, EditionRow.status)
            .where(EditionRow.campaign == campaign)
            .order_by(EditionRow.number.desc())
            .limit(1)
        ).first()
        if newest is None:
            raise DeliveryError(f"{campaign}: no edition to resume")
        left = session.scalar(
            select(DeliveryRow.id)
            .where(DeliveryRow.edition_id == newest.id, DeliveryRow.status.in_(leftover))
            .limit(1)
        )
    if newest.status in unfinished or left is not None:
        return newest.id
    raise DeliveryError(f"{campaign}: edition {newest.number} has nothing left to send")


def newest_edition(store: Store, campaign: str) -> StoredEdition | None:
    with store.session() as session:
        newest = session.scalar(
            select(EditionRow.id)
            .where(EditionRow.campaign == campaign)
            .order_by(EditionRow.number.desc())
            .limit(1)
        )
    return None if newest is None else get_edition(store, newest)


def unfinished_edition(store: Store, campaign: str) -> StoredEdition | None:
    """The newest edition if its send was started or composed but never finished."""
    newest = newest_edition(store, campaign)
    return newest if newest and newest.status in ("sending", "paused") else None
