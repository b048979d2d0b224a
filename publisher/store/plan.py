"""Claiming an edition's batches, planning included: every sending process (the one that
started the send and any `publisher worker`) calls `claim_next`, which either takes over a
work item nobody holds (its holder died or lost its lease) or cuts the next batch from the
audience and claims it, in one transaction.

Planning is folded into claiming so a send writes each ledger row once, as `inflight` in
the batch that sends it: the edition's `send_plans` row is the shared cursor (how far the
audience has been read, the next batch number). A claimer locks it with a conditional
UPDATE (a row lock on PostgreSQL, the write lock on SQLite), reads the next subscribers
still due after it, writes their rows `inflight` with the batch number and the work item
held by itself, and moves the cursor, all before it commits; the next claimer waits for
that commit and goes on after it. Only rows this claimer actually wrote or moved are
returned (INSERT ... ON CONFLICT DO NOTHING / UPDATE ... RETURNING), so a row written by
anyone else meanwhile is never sent by two. The unique (edition, subscriber) ledger row
remains the final guard.

`take_over` is the claim of an item a previous holder left: its rows are first put in
order as `reconcile` does for a whole edition: `inflight` rows were never requested and are
sent; `requested` rows may have reached the provider and become `uncertain` (the idempotent
file outbox sends them again; exactly-once mode leaves them `requested` under their
provider batch id, cancelled and resent by the process that owns the send). One
transaction, fenced by the lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, literal, select, update
from sqlalchemy.engine import Connection

from publisher.store import Store, dialect, work
from publisher.store.ledger import INFLIGHT, PENDING, REQUESTED, UNCERTAIN
from publisher.store.models import (
    DeliveryRow,
    SendPlanRow,
    SendWorkRow,
    SubscriberRow,
    UTCDateTime,
)
from publisher.store.subscribers import follows

_DELIVERIES = cast(Table, DeliveryRow.__table__)
_SUBSCRIBERS = cast(Table, SubscriberRow.__table__)
_WORK = cast(Table, SendWorkRow.__table__)
_PLANS = cast(Table, SendPlanRow.__table__)

TAKEN_OVER = "requested by a worker that stopped answering; may have been accepted, assumed sent"
READ_CHUNK = 1000  # subscribers read per query while cutting a batch


@dataclass(frozen=True)
class Claimed:
    number: int
    rows: list[tuple[Any, ...]]  # (id, email, name, token), by id
    taken_over: bool = False


def start_round(store: Store, edition_id: int, *, now: datetime) -> None:
    """Before the process that owns a send dispatches (each round): the audience is read
    again from its start, so rows put back to `pending` (a resume, a cancellation) are
    found; batch numbers go on after every number used so far."""
    d, w, p = _DELIVERIES.c, _WORK.c, _PLANS.c
    with store.engine.begin() as connection:
        used = max(
            connection.scalar(select(func.max(d.batch)).where(d.edition_id == edition_id)) or 0,
            connection.scalar(select(func.max(w.number)).where(w.edition_id == edition_id)) or 0,
        )
        values = {"after_id": 0, "next_number": used + 1, "complete": False, "updated_at": now}
        moved = connection.execute(update(_PLANS).where(p.edition_id == edition_id).values(values))
        if not moved.rowcount:
            connection.execute(_PLANS.insert().values(edition_id=edition_id, **values))


def claim_next(
    store: Store,
    lease: work.Lease,
    edition_id: int,
    audience: Sequence[str],
    *,
    batch_size: int,
    now: datetime,
    requested_to: str | None,
) -> Claimed | None:
    """The next batch this process sends, claimed (`inflight`, held under `lease`): an item
    left by another holder first, else a new one cut from the audience. None when there is
    neither (the audience is read to its end; items others hold may still be open)."""
    item = work.claim(store, lease, now=now, edition_id=edition_id)
    if item is not None:
        rows = take_over(store, lease, item, audience, now=now, requested_to=requested_to)
        return Claimed(item.number, rows, taken_over=item.taken_over)
    return cut_next(store, lease, edition_id, audience, batch_size=batch_size, now=now)


def cut_next(
    store: Store,
    lease: work.Lease,
    edition_id: int,
    audience: Sequence[str],
    *,
    batch_size: int,
    now: datetime,
) -> Claimed | None:
    """Cut the next batch from the audience and claim it: one transaction under the
    edition's cursor (see the module docstring)."""
    p = _PLANS.c
    with store.engine.begin() as connection:
        cursor = connection.execute(
            update(_PLANS)  # takes the cursor's lock before anything is read
            .where(p.edition_id == edition_id, p.complete.is_(False))
            .values(updated_at=now)
            .returning(p.after_id, p.next_number)
        ).first()
        if cursor is None:
            return None
        after, number = int(cursor[0]), int(cursor[1])
        while True:
            due, after, complete = _read_due(connection, edition_id, audience, after, batch_size)
            rows = _write_claim(connection, store, lease, edition_id, number, due, now)
            if rows or complete:
                break  # else: every row read was written meanwhile; read on
        connection.execute(
            update(_PLANS)
            .where(p.edition_id == edition_id)
            .values(after_id=after, next_number=number + bool(rows), complete=complete)
        )
    return Claimed(number, rows) if rows else None


def _read_due(
    connection: Connection, edition_id: int, audience: Sequence[str], after: int, size: int
) -> tuple[list[tuple[Any, ...]], int, bool]:
    """Up to `size` subscribers after id `after` that the edition still has to reach:
    (id, email, name, token, has a pending row), the last id read, and whether the audience
    is read to its end."""
    s, d = _SUBSCRIBERS.c, _DELIVERIES.c
    columns = [s.id, s.email, s.name, s.token, d.status]
    if audience:
        columns.append(s.topics)
    join = (d.subscriber_id == s.id) & (d.edition_id == edition_id)
    due: list[tuple[Any, ...]] = []
    while len(due) < size:
        query = (
            select(*columns)
            .select_from(_SUBSCRIBERS.outerjoin(_DELIVERIES, join))
            .where(s.status == "active", s.id > after)
            .order_by(s.id)
            .limit(min(READ_CHUNK, size - len(due)) if not audience else READ_CHUNK)
        )
        chunk = connection.execute(query).all()
        if not chunk:
            return due, after, True
        for row in chunk:
            after = row[0]
            if row[4] is not None and row[4] != PENDING:
                continue  # sent, failed in this round, uncertain, or in another's batch
            if audience and not follows(row[5] or (), audience):
                continue  # left pending if a retry: skipped when the edition finishes
            due.append((row[0], row[1], row[2], row[3], row[4] == PENDING))
            if len(due) >= size:
                break
    return due, after, False


def _write_claim(
    connection: Connection,
    store: Store,
    lease: work.Lease,
    edition_id: int,
    number: int,
    due: list[tuple[Any, ...]],
    now: datetime,
) -> list[tuple[Any, ...]]:
    """Write `due` as batch `number`, `inflight`, and its work item held by this process;
    the rows actually claimed (id, email, name, token)."""
    table, subscribers = _DELIVERIES, _SUBSCRIBERS
    new = [row[0] for row in due if not row[4]]
    old = [row[0] for row in due if row[4]]
    claimed: set[int] = set()
    if new:
        chosen = select(
            literal(edition_id),
            subscribers.c.id,
            literal(number),
            literal(INFLIGHT),
            literal(1),
            literal(now, UTCDateTime()),
        ).where(dialect.in_ids(store.engine, subscribers.c.id, new))
        columns = ["edition_id", "subscriber_id", "batch", "status", "attempts", "updated_at"]
        statement = dialect.insert_ignore(store.engine, table).from_select(columns, chosen)
        claimed.update(connection.scalars(statement.returning(table.c.subscriber_id)))
    if old:
        statement = (
            update(table)
            .where(
                table.c.edition_id == edition_id,
                dialect.in_ids(store.engine, table.c.subscriber_id, old),
                table.c.status == PENDING,
            )
            .values(status=INFLIGHT, batch=number, attempts=table.c.attempts + 1, updated_at=now)
            .returning(table.c.subscriber_id)
        )
        claimed.update(connection.scalars(statement))
    if not claimed:
        return []
    connection.execute(
        _WORK.insert().values(
            edition_id=edition_id,
            number=number,
            status=work.OPEN,
            holder=lease.holder,
            lease_until=lease.until(),
            claims=1,
            updated_at=now,
        )
    )
    return [row[:4] for row in due if row[0] in claimed]


def take_over(
    store: Store,
    lease: work.Lease,
    claim: work.Claim,
    audience: Sequence[str],
    *,
    now: datetime,
    requested_to: str | None,
) -> list[tuple[Any, ...]]:
    """The recipients (id, email, name, token) of an item taken over, now `inflight`, by
    id. `requested_to`: what a previous holder's `requested` rows become (UNCERTAIN, PENDING
    for an idempotent backend, None to leave them: exactly-once mode)."""
    edition_id, number = claim.edition_id, claim.number
    table, subscribers = _DELIVERIES, _SUBSCRIBERS
    in_batch = [table.c.edition_id == edition_id, table.c.batch == number]
    with store.engine.begin() as connection:
        work.fence(connection, lease, edition_id, number)
        connection.execute(
            update(table)
            .where(*in_batch, table.c.status == INFLIGHT)
            .values(status=PENDING, updated_at=now)
        )  # never requested (a previous holder's, or ours before a lost connection)
        if requested_to is not None:
            note = TAKEN_OVER if requested_to == UNCERTAIN else None
            connection.execute(
                update(table)
                .where(*in_batch, table.c.status == REQUESTED)
                .values(status=requested_to, error=note, updated_at=now)
            )
        columns = [subscribers.c.id, subscribers.c.email, subscribers.c.name, subscribers.c.token]
        query = (
            select(*columns, subscribers.c.topics)
            .join(subscribers, subscribers.c.id == table.c.subscriber_id)
            .where(*in_batch, table.c.status == PENDING, subscribers.c.status == "active")
            .order_by(subscribers.c.id)
        )
        rows = [
            tuple(row[:4])
            for row in connection.execute(query)
            if not audience or follows(row[4] or (), audience)
        ]
        if rows:
            connection.execute(
                update(table)
                .where(
                    *in_batch,
                    dialect.in_ids(store.engine, table.c.subscriber_id, [r[0] for r in rows]),
                    table.c.status == PENDING,
                )
                .values(status=INFLIGHT, attempts=table.c.attempts + 1, updated_at=now)
            )
        else:  # everyone in it left, or the resume put its rows in a newer batch
            work.complete(connection, lease, edition_id, number, now)
    return rows
