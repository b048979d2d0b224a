"""The delivery ledger: one row per (edition, subscriber), the record of exactly-once sending.

States of a row::

    (no row) / pending --claim--> inflight --request about to be written--> requested
    requested --provider refused (429, 5xx, 413, 400, connection refused)--> inflight
    requested --provider accepted (202, 250)--> sent
    requested --no answer: timed out, connection dropped after sending--> uncertain
    inflight/requested --refused for good--> failed

* A batch is claimed (rows written `inflight`, with the batch number, one transaction per
  batch) before it is handed to a worker (a few batches ahead of the workers: at most
  3 x workers claimed and not yet finished; never requested, they are resent). Right before
  each attempt writes its request, the worker marks the batch `requested` (one UPDATE per
  batch per attempt); when the provider definitely refuses the attempt (429, 5xx, 413, 400,
  connection refused before anything was written) it goes back to `inflight` before the
  backoff sleep. It becomes `sent` only after the provider accepted it. An answer that never
  came (timeout, connection dropped after the request was written) makes it `uncertain`: it
  may have been accepted, it is not resent.
* Resuming (`reconcile`) sends `inflight` rows again (their request never left, or was
  refused) and turns `requested` rows into `uncertain`: the process died while the request
  may have reached the provider, for instance killed between SendGrid's 202 and our update.
  SendGrid has no idempotency key, so resending could deliver twice; we prefer never twice.
  Such a batch is *assumed sent* and not resent. The only window left is "request written,
  answer not received" (at most one batch per worker): if the provider in fact never took
  it, those recipients miss this edition. Every request carries the batch identity in
  `custom_args` (`batch: "<edition>-<n>"`), so the operator can look the batch up in the
  provider's activity log and, if it never arrived, `publisher send --resume
  --resend-uncertain` sends those rows again.
* An idempotent backend (the file outbox: one file per subscriber, replaced atomically)
  resends its in-flight and requested rows instead: for it a resume is exactly-once with no
  gap at all.
* `failed` rows go back to `pending` on resume and are retried if the subscriber is still
  active and still follows the campaign; the others are left unsent and marked `skipped`
  when the edition finishes.
* Any number of processes send one edition together: batches are cut from the audience
  and claimed under a lease (publisher.store.plan, publisher.store.work); a claim only sends
  the rows it wrote or moved itself, so nobody is in two batches.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from publisher.store import Store, dialect, tallies
from publisher.store.edition_status import set_edition_status
from publisher.store.ledger_due import READ_CHUNK, Due, iter_due
from publisher.store.ledger_due import read_due as read_due
from publisher.store.ledger_marks import _batch_status as _batch_status
from publisher.store.ledger_marks import finish_batch, mark_range
from publisher.store.ledger_states import (
    BOUNCED,
    DONE,
    FAILED,
    INFLIGHT,
    PENDING,
    RECIPIENT_ATTEMPTS,
    REQUESTED,
    SENT,
    SKIPPED,
    UNCERTAIN,
    UNFINISHED,
)
from publisher.store.models import DeliveryRow, SubscriberRow

__all__ = [
    "BOUNCED",
    "DONE",
    "FAILED",
    "INFLIGHT",
    "PENDING",
    "READ_CHUNK",
    "RECIPIENT_ATTEMPTS",
    "REQUESTED",
    "SENT",
    "SKIPPED",
    "UNCERTAIN",
    "UNFINISHED",
    "Due",
    "Reconciled",
    "counts",
    "failures",
    "finish_batch",
    "has_rows",
    "iter_due",
    "mark_range",
    "next_batch_number",
    "reconcile",
    "set_edition_status",
    "skip_leftovers",
]


@dataclass(frozen=True)
class Reconciled:
    uncertain: int  # requested rows found after a crash, now assumed sent
    requeued: int  # in-flight rows found after a crash (never requested): sent again
    retried: int  # failed rows put back to pending
    resent: int  # uncertain rows put back to pending (--resend-uncertain)


def reconcile(
    store: Store,
    edition_id: int,
    *,
    now: datetime,
    resend_uncertain: bool = False,
    resend_inflight: bool = False,
    exclude: Collection[int] = (),
) -> Reconciled:
    """Make the ledger consistent before (re)sending an edition; see the module docstring.
    `resend_inflight`: the backend is idempotent (the file outbox), so requested rows can
    simply be sent again too. `exclude`: batches other processes hold under a live lease
    (publisher.store.work): their rows are theirs to record."""
    note = "requested when the send stopped; may have been accepted, assumed sent"
    mine = [or_(DeliveryRow.batch.is_(None), DeliveryRow.batch.not_in(list(exclude)))]
    if not exclude:
        mine = []
    with store.session() as session:
        tallies.forget(session, edition_id)  # counted again when this send finishes
        requeued = _move(session, edition_id, INFLIGHT, PENDING, now, where=mine)
        if resend_inflight:
            requeued += _move(session, edition_id, REQUESTED, PENDING, now, where=mine)
        uncertain = _move(session, edition_id, REQUESTED, UNCERTAIN, now, error=note, where=mine)
        # a recipient refused temporarily is retried a bounded number of times
        retried = _move(
            session,
            edition_id,
            FAILED,
            PENDING,
            now,
            where=[DeliveryRow.attempts < RECIPIENT_ATTEMPTS, *mine],
        )
        resent = (
            _move(session, edition_id, UNCERTAIN, PENDING, now, where=mine)
            if resend_uncertain
            else 0
        )
    return Reconciled(uncertain, requeued, retried, resent)


def _move(
    session: Session,
    edition_id: int,
    old: str,
    new: str,
    now: datetime,
    error: str | None = None,
    *,
    where: Sequence[ColumnElement[bool]] = (),
) -> int:
    values: dict[str, object] = {"status": new, "updated_at": now}
    if error is not None or new == PENDING:
        values["error"] = error
    result = session.execute(
        update(DeliveryRow)
        .where(DeliveryRow.edition_id == edition_id, DeliveryRow.status == old, *where)
        .values(**values)
    )
    return dialect.rowcount(result)


def next_batch_number(store: Store, edition_id: int) -> int:
    with store.session() as session:
        query = select(func.max(DeliveryRow.batch)).where(DeliveryRow.edition_id == edition_id)
        return (session.scalar(query) or 0) + 1


def skip_leftovers(store: Store, edition_id: int, *, now: datetime) -> int:
    """Pending rows nobody claimed (the subscriber left meanwhile) become `skipped`."""
    with store.session() as session:
        return _move(session, edition_id, PENDING, SKIPPED, now, error="no longer active")


def counts(store: Store, edition_id: int) -> dict[str, int]:
    with store.session() as session:
        rows = session.execute(
            select(DeliveryRow.status, func.count())
            .where(DeliveryRow.edition_id == edition_id)
            .group_by(DeliveryRow.status)
        ).all()
    return {status: count for status, count in rows}


def has_rows(store: Store, edition_id: int, statuses: Sequence[str]) -> bool:
    """Whether any of the edition's ledger rows has one of `statuses`."""
    query = (
        select(DeliveryRow.id)
        .where(DeliveryRow.edition_id == edition_id, DeliveryRow.status.in_(list(statuses)))
        .limit(1)
    )
    with store.session() as session:
        return session.scalar(query) is not None


def failures(store: Store, edition_id: int, *, limit: int = 5) -> list[tuple[str, str]]:
    """(email, error) of a few failed or bounced rows, for the summary."""
    with store.session() as session:
        rows = session.execute(
            select(SubscriberRow.email, DeliveryRow.error)
            .join(SubscriberRow, SubscriberRow.id == DeliveryRow.subscriber_id)
            .where(DeliveryRow.edition_id == edition_id, DeliveryRow.status.in_((FAILED, BOUNCED)))
            .limit(limit)
        ).all()
    return [(email, error or "") for email, error in rows]
