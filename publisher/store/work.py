"""Send work items (table `send_work`): an edition's batches as rows that any number of
processes, on one host or several, claim under a lease.

A work item is `open` until the outcome of its batch is recorded, then `done`. A process
claims an open item nobody holds, or one whose lease lapsed (its holder died, or lost the
database longer than the lease), with `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL
(publisher.store.dialect), and writes itself as `holder` with `lease_until` (epoch seconds,
from the clock the caller passes in: hosts keep their clocks in step with NTP). The lease is
renewed by a heartbeat and by every ledger write of the batch, and every such write first
checks, in the same transaction, that the item is still held by the writer (`fence`): a
holder whose lease was taken over can no longer mark its batch `requested`, so it never
sends it, and the one who took it over finds its rows as the ledger says (see
publisher.store.plan). The unique (edition, subscriber) ledger row stays the final guard.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, or_, select, tuple_, union, update
from sqlalchemy.engine import Connection

from publisher.errors import DeliveryError
from publisher.store import Store, dialect, processes
from publisher.store.models import EditionRow, SendPlanRow, SendWorkRow

__all__ = [
    "Claim",
    "Lease",
    "LeaseLost",
    "claim",
    "heartbeat",
    "held_by",
    "live_numbers",
    "open_items",
    "reap_dead",
    "release",
    "sending_editions",
]

_WORK = cast(Table, SendWorkRow.__table__)
_PLANS = cast(Table, SendPlanRow.__table__)
OPEN, DONE = "open", "done"


class LeaseLost(DeliveryError):
    """This process no longer holds the batch (its lease lapsed and another took it over)."""


@dataclass(frozen=True)
class Lease:
    holder: str  # host:pid:random, unique to one process
    seconds: float
    clock: Callable[[], float]  # epoch seconds; time.time at the edge

    def until(self) -> float:
        return self.clock() + self.seconds


def _held(lease: Lease, edition_id: int, number: int) -> list:
    w = _WORK.c
    return [
        w.edition_id == edition_id,
        w.number == number,
        w.holder == lease.holder,
        w.status == OPEN,
    ]


def fence(connection: Connection, lease: Lease, edition_id: int, number: int) -> None:
    """Inside a ledger transaction: renew the lease of the batch, or raise LeaseLost."""
    values = {"e": edition_id, "n": number, "h": lease.holder, "until": lease.until()}
    result = connection.execute(_FENCE, values)
    if dialect.rowcount(result) != 1:
        raise LeaseLost(f"edition {edition_id}: batch {number} was taken over by another worker")


# Built once: SMTP fences once a message, and building it cost more than running it.
_FENCE = (
    update(_WORK)
    .where(
        _WORK.c.edition_id == bindparam("e"),
        _WORK.c.number == bindparam("n"),
        _WORK.c.holder == bindparam("h"),
        _WORK.c.status == OPEN,
    )
    .values(lease_until=bindparam("until", type_=_WORK.c.lease_until.type))
)


def complete(
    connection: Connection, lease: Lease, edition_id: int, number: int, now: datetime
) -> None:
    """Inside the transaction recording the batch's outcome: the item is done (or
    LeaseLost, if another process took it over)."""
    result = connection.execute(
        update(_WORK)
        .where(*_held(lease, edition_id, number))
        .values(status=DONE, holder=None, lease_until=None, updated_at=now)
    )
    if dialect.rowcount(result) != 1:
        raise LeaseLost(f"edition {edition_id}: batch {number} was taken over by another worker")


@dataclass(frozen=True)
class Claim:
    edition_id: int
    number: int
    taken_over: bool  # claimed before (its holder died, lost its lease, or stopped)
    first_id: int  # the subscriber ids it was cut from (publisher.store.plan)
    last_id: int


def claim(
    store: Store,
    lease: Lease,
    *,
    now: datetime,
    edition_id: int | None = None,
    mine: Collection[int] = (),
) -> Claim | None:
    """Take the first open item (of an edition that is `sending`) nobody holds or whose lease
    lapsed; None when there is none right now. One UPDATE ... WHERE key IN (SELECT ... FOR
    UPDATE SKIP LOCKED) ... RETURNING: on PostgreSQL concurrent claimers skip each other's
    rows; on SQLite the statement takes the write lock before it reads. `mine`: the items
    of `edition_id` this process is sending; one it holds but is not sending is free too (a
    claim committed whose answer the lost connection took)."""
    w = _WORK.c
    orphan = w.holder == lease.holder
    if mine:
        orphan = orphan & ~dialect.in_ids(store.engine, w.number, list(mine))
    # never one of `mine`, even if its lease lapsed meanwhile: it is being sent right now
    lapsed = (w.lease_until < lease.clock()) & (w.holder != lease.holder)
    free = or_(w.holder.is_(None), lapsed, orphan)
    chosen = (
        select(w.edition_id, w.number)
        .join(EditionRow, EditionRow.id == w.edition_id)
        .where(w.status == OPEN, free, EditionRow.status == "sending")
        .order_by(w.edition_id, w.number)
        .limit(1)
    )
    if edition_id is not None:
        chosen = chosen.where(w.edition_id == edition_id)
    statement = (
        update(_WORK)
        .where(tuple_(w.edition_id, w.number).in_(dialect.skip_locked(store.engine, chosen, _WORK)))
        .values(holder=lease.holder, lease_until=lease.until(), claims=w.claims + 1, updated_at=now)
        .returning(w.edition_id, w.number, w.claims, w.first_id, w.last_id)
    )
    with store.engine.begin() as connection:
        row = connection.execute(statement).first()
    if row is None:
        return None
    return Claim(row[0], row[1], row[2] > 1, row[3], row[4])


def heartbeat(store: Store, lease: Lease) -> int:
    """Renew every item this process holds; the number renewed."""
    w = _WORK.c
    with store.engine.begin() as connection:
        result = connection.execute(
            update(_WORK)
            .where(w.holder == lease.holder, w.status == OPEN)
            .values(lease_until=lease.until())
        )
    return dialect.rowcount(result)


def release(store: Store, lease: Lease) -> int:
    """Give back the items this process holds (a clean stop): another takes them at once."""
    w = _WORK.c
    with store.engine.begin() as connection:
        result = connection.execute(
            update(_WORK)
            .where(w.holder == lease.holder, w.status == OPEN)
            .values(holder=None, lease_until=None)
        )
    return dialect.rowcount(result)


def reap_dead(store: Store, *, edition_id: int | None = None) -> int:
    """Leases held by processes of this host that no longer exist lapse at once (a killed
    `publisher send` resumed on the same host need not wait out its lease)."""
    w = _WORK.c
    query = select(w.holder).where(w.status == OPEN, w.holder.is_not(None)).distinct()
    if edition_id is not None:
        query = query.where(w.edition_id == edition_id)
    with store.engine.connect() as connection:
        holders: list[str] = list(connection.scalars(query))
    dead = [holder for holder in holders if processes.gone(holder)]
    if not dead:
        return 0
    with store.engine.begin() as connection:
        result = connection.execute(
            update(_WORK).where(w.holder.in_(dead), w.status == OPEN).values(lease_until=0.0)
        )
    return dialect.rowcount(result)


def open_items(store: Store, edition_id: int) -> int:
    w = _WORK.c
    with store.engine.connect() as connection:
        query = select(func.count()).where(w.edition_id == edition_id, w.status == OPEN)
        return int(connection.scalar(query) or 0)


def held_by(store: Store, lease: Lease, edition_id: int) -> int:
    w = _WORK.c
    query = select(func.count()).where(
        w.edition_id == edition_id, w.status == OPEN, w.holder == lease.holder
    )
    with store.engine.connect() as connection:
        return int(connection.scalar(query) or 0)


def live_numbers(store: Store, edition_id: int, clock: Callable[[], float]) -> set[int]:
    """Open items of the edition under a lease that has not lapsed."""
    w = _WORK.c
    query = select(w.number).where(
        w.edition_id == edition_id,
        w.status == OPEN,
        w.holder.is_not(None),
        w.lease_until >= clock(),
    )
    with store.engine.connect() as connection:
        return set(connection.scalars(query))


def sending_editions(store: Store) -> list[int]:
    """Editions being sent with work left: open items, or an audience not read to its end
    (publisher.store.plan)."""
    w, p = _WORK.c, _PLANS.c
    left = union(
        select(w.edition_id).where(w.status == OPEN),
        select(p.edition_id).where(p.complete.is_(False)),
    )
    query = (
        select(EditionRow.id)
        .where(EditionRow.status == "sending", EditionRow.id.in_(left))
        .order_by(EditionRow.id)
    )
    with store.engine.connect() as connection:
        return list(connection.scalars(query))
