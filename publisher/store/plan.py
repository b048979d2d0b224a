"""Claiming an edition's batches, planning included: every sending process (the one that
started the send and any `publisher worker`) calls `claim_next`, which cuts the next batch
from the audience and claims it or, once the audience is read to its end, takes over a work
item nobody holds (its holder died or lost its lease).

Planning is folded into claiming, so a send writes each ledger row once, `inflight` in the
batch that sends it, and there is no pass over the audience before the first request. The
edition's `send_plans` row is the shared cursor (how far the audience has been read, the
next batch number). A cut locks it with a conditional UPDATE (a row lock on PostgreSQL,
the write lock on SQLite), reads the next subscribers still due, writes the batch's work
item (held by the cutter, with the range of subscriber ids it covers) and moves the cursor:
one short transaction, so cutters on several hosts queue only for that. The batch's ledger
rows are written in a second transaction, fenced by the lease; only rows it actually wrote
or moved are sent (INSERT ... ON CONFLICT DO NOTHING / UPDATE ... RETURNING), so a row
written by anyone else meanwhile is never sent by two. The unique (edition, subscriber)
ledger row remains the final guard.

`take_over` is the claim of an item a previous holder left: its rows are first put in
order as `reconcile` does for a whole edition: `inflight` rows were never requested and are
sent, with the subscribers of its range that have no row yet (the holder died between the
cut and the write); `requested` rows may have reached the provider and become `uncertain`
(the idempotent file outbox sends them again; exactly-once mode leaves them `requested`
under their provider batch id, cancelled and resent by the process that owns the send).
One transaction, fenced by the lease.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, literal, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from publisher.store import Store, dialect, ledger, work
from publisher.store.ledger import INFLIGHT, PENDING, REQUESTED, UNCERTAIN
from publisher.store.models import (
    DeliveryRow,
    SendPlanRow,
    SendWorkRow,
    SubscriberRow,
    UTCDateTime,
)
from publisher.support import killpoints

__all__ = ["TAKEN_OVER", "Claimed", "claim_next", "start_round", "take_over"]

_DELIVERIES = cast(Table, DeliveryRow.__table__)
_SUBSCRIBERS = cast(Table, SubscriberRow.__table__)
_WORK = cast(Table, SendWorkRow.__table__)
_PLANS = cast(Table, SendPlanRow.__table__)

TAKEN_OVER = "requested by a worker that stopped answering; may have been accepted, assumed sent"


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
        if not dialect.rowcount(moved):
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
    mine: Collection[int] = (),
) -> Claimed | None:
    """The next batch this process sends, claimed (`inflight`, held under `lease`): a new
    one cut from the audience, else, once the audience is read to its end, an item another
    holder left (a lease lapses after a minute or so: the cut goes on meanwhile, and one
    query per batch is saved). None when there is neither (items others hold may still be
    open). `mine`: the batches of the edition this process is sending (see work.claim)."""
    while cut := _cut(store, lease, edition_id, audience, batch_size, now):
        number, due = cut
        killpoints.reached("claim.cut")  # the item is written, its rows are not
        rows = _write_rows(store, lease, edition_id, number, due, now)
        if rows:
            return Claimed(number, rows)
    while item := work.claim(store, lease, now=now, edition_id=edition_id, mine=mine):
        rows = take_over(store, lease, item, audience, now=now, requested_to=requested_to)
        if rows:
            return Claimed(item.number, rows, taken_over=item.taken_over)
    return None


def _cut(
    store: Store,
    lease: work.Lease,
    edition_id: int,
    audience: Sequence[str],
    batch_size: int,
    now: datetime,
) -> tuple[int, list[tuple[Any, ...]]] | None:
    """Cut the next batch from the audience under the edition's cursor: its work item,
    held by this process with the range of subscriber ids it covers, and the cursor moved
    past it, in one short transaction (the rows are written after it, outside the lock,
    so claimers on several hosts write their batches at the same time). The batch number
    and its due subscribers (id, email, name, token, has a pending row); None when the
    audience is read to its end."""
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
        start, number = int(cursor[0]), int(cursor[1])
        due, after, complete = ledger.read_due(connection, edition_id, audience, start, batch_size)
        if due:
            connection.execute(
                _WORK.insert().values(
                    edition_id=edition_id,
                    number=number,
                    status=work.OPEN,
                    holder=lease.holder,
                    lease_until=lease.until(),
                    claims=1,
                    first_id=start + 1,
                    last_id=after,
                    updated_at=now,
                )
            )
        connection.execute(
            update(_PLANS)
            .where(p.edition_id == edition_id)
            .values(after_id=after, next_number=number + bool(due), complete=complete)
        )
    return (number, due) if due else None


def _write_rows(
    store: Store,
    lease: work.Lease,
    edition_id: int,
    number: int,
    due: list[tuple[Any, ...]],
    now: datetime,
) -> list[tuple[Any, ...]]:
    """Write the ledger rows of a cut batch `inflight`, fenced by its lease; the rows
    claimed (id, email, name, token). None claimed (all written by others meanwhile): the
    item is done."""
    with store.engine.begin() as connection:
        work.fence(connection, lease, edition_id, number)
        claimed = _claim_rows(connection, store, edition_id, number, due, now)
        if not claimed:
            work.complete(connection, lease, edition_id, number, now)
    return [row[:4] for row in due if row[0] in claimed]


def _claim_rows(
    connection: Connection,
    store: Store,
    edition_id: int,
    number: int,
    due: list[tuple[Any, ...]],
    now: datetime,
) -> set[int]:
    """Write `due` as batch `number`, `inflight`: new rows inserted, pending ones moved;
    the subscriber ids actually written (a row written by another meanwhile is not)."""
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
        returned = table.c.subscriber_id
        try:  # a plain INSERT first: ON CONFLICT's per-row speculative insertion costs more
            with connection.begin_nested():
                plain = insert(table).from_select(columns, chosen).returning(returned)
                claimed.update(connection.scalars(plain))
        except IntegrityError:  # a row was written by another meanwhile: leave it theirs
            ignoring = dialect.insert_ignore(store.engine, table).from_select(columns, chosen)
            claimed.update(connection.scalars(ignoring.returning(returned)))
    if old:
        moving = (
            update(table)
            .where(
                table.c.edition_id == edition_id,
                dialect.in_ids(store.engine, table.c.subscriber_id, old),
                table.c.status == PENDING,
            )
            .values(status=INFLIGHT, batch=number, attempts=table.c.attempts + 1, updated_at=now)
            .returning(table.c.subscriber_id)
        )
        claimed.update(connection.scalars(moving))
    return claimed


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
    id: its rows a previous holder left `inflight` (never requested), and the subscribers
    of its range still due (its holder died between the cut and writing the rows).
    `requested_to`: what the previous holder's `requested` rows become (UNCERTAIN, PENDING
    for an idempotent backend, None to leave them: exactly-once mode). Empty: the item is
    done. One transaction."""
    edition_id, number = claim.edition_id, claim.number
    table = _DELIVERIES
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
        due = _due_of(connection, claim, audience)
        claimed = _claim_rows(connection, store, edition_id, number, due, now)
        if not claimed:  # everyone in it left, or the resume put its rows in a newer batch
            work.complete(connection, lease, edition_id, number, now)
    return [row[:4] for row in due if row[0] in claimed]


def _due_of(
    connection: Connection, claim: work.Claim, audience: Sequence[str]
) -> list[tuple[Any, ...]]:
    """The subscribers of an item's range it still has to reach (ledger.read_due)."""
    due, _, _ = ledger.read_due(
        connection,
        claim.edition_id,
        audience,
        claim.first_id - 1,
        size=claim.last_id - claim.first_id + 1,
        until=claim.last_id,
    )
    return due
