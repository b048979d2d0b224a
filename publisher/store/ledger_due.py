"""Who an edition still has to reach: active subscribers following the campaign with no
ledger row or a `pending` one, read in subscriber-id order, chunk after chunk. The names are
on the surface as `publisher.store.ledger`'s (re-exported there)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from publisher.store import Store
from publisher.store.ledger_states import PENDING
from publisher.store.models import DeliveryRow, SubscriberRow
from publisher.store.subscribers import follows

# the names are publisher.store.ledger's (its __all__), not this module's own
__all__: list[str] = []

# Core tables (typed as Table: the ORM declares __table__ as a plain FromClause)
_DELIVERIES = cast(Table, DeliveryRow.__table__)
_SUBSCRIBERS = cast(Table, SubscriberRow.__table__)

READ_CHUNK = 1000  # subscribers read per query while looking for the due ones


class Due(NamedTuple):
    """A subscriber this edition still has to reach; `retry` if a ledger row exists."""

    subscriber_id: int
    email: str
    name: str | None
    token: str
    retry: bool


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
