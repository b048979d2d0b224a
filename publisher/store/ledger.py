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

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from publisher.store import Store, dialect, outbox, tallies, work
from publisher.store.models import (
    BroadcastRow,
    DeliveryBatchRow,
    DeliveryRow,
    EditionRow,
    SubscriberRow,
)
from publisher.store.subscribers import follows
from publisher.store.work import Lease

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

# Core tables (typed as Table: the ORM declares __table__ as a plain FromClause)
_DELIVERIES = cast(Table, DeliveryRow.__table__)
_SUBSCRIBERS = cast(Table, SubscriberRow.__table__)
_BATCHES = cast(Table, DeliveryBatchRow.__table__)

PENDING, INFLIGHT, REQUESTED, SENT, FAILED, UNCERTAIN, SKIPPED, BOUNCED = (
    "pending",
    "inflight",
    "requested",
    "sent",
    "failed",
    "uncertain",
    "skipped",
    "bounced",
)
UNFINISHED = (INFLIGHT, REQUESTED)  # claimed by a send, outcome not recorded yet
DONE = (SENT, UNCERTAIN)  # never sent again without --resend-uncertain / --resend-batch
READ_CHUNK = 1000  # subscribers read per query while looking for the due ones
RECIPIENT_ATTEMPTS = 3  # a recipient refused temporarily (4xx) is tried this often in all


class Due(NamedTuple):
    """A subscriber this edition still has to reach; `retry` if a ledger row exists."""

    subscriber_id: int
    email: str
    name: str | None
    token: str
    retry: bool


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


def iter_due(
    store: Store, edition_id: int, audience: Sequence[str], *, chunk: int = 1000
) -> Iterator[Due]:
    """Active subscribers following the campaign with no ledger row or a `pending` one, in
    subscriber-id order (read_due, chunk after chunk, each read again while the database is
    unreachable)."""
    after, complete = 0, False
    while not complete:
        read = partial(_read_chunk, store, edition_id, audience, after, chunk)
        due, after, complete = store.retrying(read, what="reading the audience")
        for row in due:
            yield Due(row[0], row[1], row[2], row[3], retry=row[4])


def _read_chunk(
    store: Store, edition_id: int, audience: Sequence[str], after: int, size: int
) -> tuple[list[tuple[Any, ...]], int, bool]:
    with store.engine.connect() as connection:
        return read_due(connection, edition_id, audience, after, size)


def read_due(
    connection: Connection,
    edition_id: int,
    audience: Sequence[str],
    after: int,
    size: int,
    until: int | None = None,
) -> tuple[list[tuple[Any, ...]], int, bool]:
    """Up to `size` subscribers after id `after` (up to `until`) that the edition still
    has to reach: (id, email, name, token, has a pending row), the last id read, and
    whether the audience (or the range) is read to its end."""
    s, d = _SUBSCRIBERS.c, _DELIVERIES.c
    # status is read, not filtered on: `status = 'active' AND id > n ORDER BY id` may be
    # planned on the status index (every row matches) and a sort of the whole list, per
    # batch; on id alone it is a range of the primary key
    columns = [s.id, s.email, s.name, s.token, s.status, *([s.topics] if audience else [])]
    due: list[tuple[Any, ...]] = []
    while len(due) < size:
        query = select(*columns).where(s.id > after)
        if until is not None:
            query = query.where(s.id <= until)
        chunk = connection.execute(query.order_by(s.id).limit(READ_CHUNK)).all()
        if not chunk:
            return due, after, True
        # the ledger rows of the chunk, as a range of the (edition, subscriber) index: two
        # range scans whatever the planner's statistics say (a join can turn into a scan of
        # the whole ledger per batch while a fresh table's statistics are not collected)
        states: dict[int, str] = dict(
            connection.execute(
                select(d.subscriber_id, d.status).where(
                    d.edition_id == edition_id,
                    d.subscriber_id >= chunk[0][0],
                    d.subscriber_id <= chunk[-1][0],
                )
            ).all()
        )
        for row in chunk:
            after, status = row[0], states.get(row[0])
            if row[4] != "active":
                continue
            if status is not None and status != PENDING:
                continue  # sent, failed in this round, uncertain, or in another's batch
            if audience and not follows(row[5] or (), audience):
                continue  # left pending if a retry: skipped when the edition finishes
            due.append((row[0], row[1], row[2], row[3], status == PENDING))
            if len(due) >= size:
                break
    return due, after, False


# Built once (SMTP calls mark_range once a message: building the statement each time cost
# more than running it, bench/README.md "SMTP at 18 KB").
_MARK_SENT = (
    update(_DELIVERIES)
    .where(
        _DELIVERIES.c.edition_id == bindparam("e"),
        _DELIVERIES.c.subscriber_id.in_(bindparam("ids", expanding=True)),
        _DELIVERIES.c.status == bindparam("was"),
    )
    .values(status=SENT, updated_at=bindparam("now", type_=_DELIVERIES.c.updated_at.type))
)
_MARK_RANGE = (
    update(_DELIVERIES)
    .where(
        _DELIVERIES.c.edition_id == bindparam("e"),
        _DELIVERIES.c.subscriber_id >= bindparam("lo"),
        _DELIVERIES.c.subscriber_id <= bindparam("hi"),
        _DELIVERIES.c.batch == bindparam("n"),
        _DELIVERIES.c.status == bindparam("was"),
    )
    .values(
        status=bindparam("to"), updated_at=bindparam("now", type_=_DELIVERIES.c.updated_at.type)
    )
)


def mark_range(
    store: Store,
    edition_id: int,
    batch: int,
    first: int,
    last: int,
    status: str,
    *,
    now: datetime,
    provider_id: str | None = None,
    send_at: datetime | None = None,
    sent: Sequence[int] = (),
    batch_rows: bool = False,
    lease: Lease | None = None,
) -> int:
    """`requested` (from `inflight`) right before the backend writes the request, or
    `inflight` (from `requested`) after the provider definitely refused it: one UPDATE for
    the rows of the batch whose subscriber id is in [first, last] (a batch, or a half of
    one after 413: recipients go out in subscriber-id order, so a part is a range).
    `provider_id`/`send_at` (exactly-once mode, with `requested`): the provider batch id is
    recorded in the same transaction, before any byte of the request is written. `sent`:
    subscribers the backend reported accepted since its previous write (SMTP, one message
    at a time), recorded `sent` in the same transaction. `batch_rows`: the send keeps
    `delivery_batches` rows (exactly-once mode); a refused batch's is marked so. `lease`:
    the batch is a work item this process must still hold (else LeaseLost, nothing
    written: the batch is not sent)."""
    old = INFLIGHT if status == REQUESTED else REQUESTED
    with store.engine.begin() as connection:
        if lease is not None:
            work.fence(connection, lease, edition_id, batch)
        if sent:
            connection.execute(
                _MARK_SENT, {"e": edition_id, "ids": list(sent), "was": REQUESTED, "now": now}
            )
        where = {"e": edition_id, "lo": first, "hi": last, "n": batch, "was": old}
        result = connection.execute(_MARK_RANGE, {**where, "to": status, "now": now})
        if provider_id is not None:
            _batch_row(connection, edition_id, batch, now, REQUESTED, provider_id, send_at)
        elif status == INFLIGHT and batch_rows:
            _batch_status(connection, edition_id, batch, "refused", now)
    return dialect.rowcount(result)


def _batch_row(
    connection: Connection,
    edition_id: int,
    number: int,
    now: datetime,
    status: str,
    provider_id: str | None,
    send_at: datetime | None,
) -> None:
    values: dict[str, object] = {"provider_id": provider_id, "send_at": send_at}
    if not _batch_status(connection, edition_id, number, status, now, **values):
        connection.execute(
            insert(_BATCHES).values(
                edition_id=edition_id,
                number=number,
                cancel_cleared=False,
                status=status,
                updated_at=now,
                **values,
            )
        )


def _batch_status(
    connection: Connection,
    edition_id: int,
    number: int,
    status: str,
    now: datetime,
    **values: object,
) -> int:
    table = _BATCHES
    result = connection.execute(
        update(table)
        .where(table.c.edition_id == edition_id, table.c.number == number)
        .values(**{"status": status, "updated_at": now, **values})
    )
    return dialect.rowcount(result)


def finish_batch(
    store: Store,
    edition_id: int,
    batch: int,
    *,
    failed: dict[int, str],
    bounced: dict[int, str] | None = None,
    uncertain: Sequence[int] = (),
    keep_requested: Sequence[int] = (),
    batch_rows: bool = False,
    lease: Lease | None = None,
    now: datetime,
) -> None:
    """Record a batch's outcome once the provider answered: `failed` rows with their error,
    `bounced` ones (the address was refused for good: the subscriber becomes `bounced` with
    the reason, never sent to again), `uncertain` ones (no answer), `keep_requested` ones
    (exactly-once mode: outcome unknown, cancelled and resent later), every other row of
    the batch `sent`. `batch_rows`: the send keeps `delivery_batches` rows (exactly-once
    mode), mark this one accepted. `lease`: the work item, done in the same transaction
    (LeaseLost, nothing written, if another process took it over). One transaction."""
    table = _DELIVERIES
    by_subscriber = and_(
        table.c.edition_id == edition_id, table.c.subscriber_id == bindparam("sid")
    )
    with store.session() as session:
        connection = session.connection()
        if lease is not None:
            work.complete(connection, lease, edition_id, batch, now)
        for status, errors in ((FAILED, failed), (BOUNCED, bounced or {})):
            if errors:
                connection.execute(
                    update(table)
                    .where(by_subscriber)
                    .values(status=status, error=bindparam("err"), updated_at=now),
                    [{"sid": sid, "err": err[:2000]} for sid, err in errors.items()],
                )
        if bounced:
            _bounce_subscribers(connection, bounced, now)
        if uncertain:
            connection.execute(
                update(table)
                .where(by_subscriber)
                .values(
                    status=UNCERTAIN,
                    updated_at=now,
                    error="no answer (timed out, or dropped after sending); may have been accepted",
                ),
                [{"sid": sid} for sid in uncertain],
            )
        connection.execute(
            update(table)
            .where(
                table.c.edition_id == edition_id,
                table.c.batch == batch,
                table.c.status.in_(UNFINISHED),
                table.c.subscriber_id.not_in(list(keep_requested)),
            )
            .values(status=SENT, error=None, updated_at=now)
        )
        if batch_rows and not keep_requested:
            _batch_status(connection, edition_id, batch, "accepted", now)


def _bounce_subscribers(connection: Connection, bounced: dict[int, str], now: datetime) -> None:
    subscribers = _SUBSCRIBERS
    connection.execute(
        update(subscribers)
        .where(subscribers.c.id == bindparam("sid"), subscribers.c.status == "active")
        .values(status="bounced", status_reason=bindparam("why"), updated_at=now),
        [{"sid": sid, "why": f"bounced: {why}"[:2000]} for sid, why in bounced.items()],
    )


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


def set_edition_status(
    store: Store, edition_id: int, status: str, *, sent_at: datetime | None = None
) -> None:
    values: dict[str, object] = {"status": status}
    if sent_at is not None:
        values["sent_at"] = sent_at
    with store.session() as session:
        session.execute(update(EditionRow).where(EditionRow.id == edition_id).values(**values))
        counted = None
        if status == "sending":
            tallies.forget(session, edition_id)
        else:  # a send finished: what the staff pages show until the next one starts
            counted = _tally(session, edition_id)
        if sent_at is not None:  # the first time it reached anyone: reported once
            _edition_sent(session, edition_id, status, sent_at, counted)


def _tally(session: Session, edition_id: int) -> dict[str, int] | None:
    """Count the finished edition's ledger once and keep it (None: not tallied)."""
    campaign = session.scalar(select(EditionRow.campaign).where(EditionRow.id == edition_id))
    if campaign is None or campaign.startswith("~"):  # see publisher.store.tallies
        return None
    counts = _counts_by_status(session, edition_id)
    tallies.write(session, edition_id, counts)
    return counts


def _edition_sent(
    session: Session, edition_id: int, status: str, now: datetime, counted: dict[str, int] | None
) -> None:
    """edition.sent with the ledger's counts (`counted`: just counted, else counted here),
    in the transaction that marks it sent."""
    edition = session.get(EditionRow, edition_id)
    if edition is None or edition.campaign.startswith("~"):  # the welcome, a broadcast
        broadcast = session.scalar(
            select(BroadcastRow).where(BroadcastRow.edition_id == edition_id)
        )
        if broadcast is not None:  # a broadcast's edition reports as the broadcast
            counts = _counts_by_status(session, edition_id)
            subject = broadcast.subject
            outbox.broadcast_sent(session, broadcast.id, now, subject=subject, counts=counts)
        return
    per_status = (
        counted if counted is not None else _counts_by_status(session, edition_id)
    ).items()
    data = {
        "edition": {
            "id": edition.id,
            "campaign": edition.campaign,
            "number": edition.number,
            "subject": edition.subject,
            "status": status,
        },
        "counts": dict(per_status),
    }
    outbox.enqueue(session, "edition.sent", data, now, ordering_key=f"edition:{edition_id}")


def _counts_by_status(session: Session, edition_id: int) -> dict[str, int]:
    rows = session.execute(
        select(DeliveryRow.status, func.count())
        .where(DeliveryRow.edition_id == edition_id)
        .group_by(DeliveryRow.status)
    ).all()
    return {str(name): int(n) for name, n in rows}
