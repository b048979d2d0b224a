"""Rate limits kept in the store, so that every `publisher serve` process (and a restart)
shares them: one fixed-window counter per key. A window's row is deleted once the window
has ended, in the same transaction as the next hit, so the table holds at most one row per
key used in the current windows; callers bound the keys (a refused hit counts nothing).
Which keys, and how many hits each allows, is the caller's rule (publisher/web/limits.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, delete, func, select, update

from publisher.store import Store, dialect
from publisher.store.models import RateLimitRow

__all__ = ["Limit", "count_limits", "take"]

_TABLE = cast(Table, RateLimitRow.__table__)


@dataclass(frozen=True)
class Limit:
    """At most `hits` per fixed window of `window` seconds for `key` (at most 100
    characters: hash personal data such as an address before making it a key)."""

    key: str
    hits: int
    window: int


class _Full(Exception):
    def __init__(self, limit: Limit) -> None:
        self.limit = limit


def take(store: Store, limits: Sequence[Limit], *, now: datetime) -> Limit | None:
    """Count one hit against every limit, all or none, in one transaction: None when every
    limit had room (each counted), else the first full limit (nothing counted). Counters of
    ended windows are deleted first."""
    stamp = int(now.timestamp())
    try:
        with store.engine.begin() as connection:
            connection.execute(delete(_TABLE).where(_TABLE.c.expires <= stamp))
            for limit in limits:
                if not _hit(store, connection, limit, stamp):
                    raise _Full(limit)  # rolls the hits counted so far back
    except _Full as full:
        return full.limit
    return None


def _hit(store: Store, connection: Connection, limit: Limit, stamp: int) -> bool:
    """One hit on one counter; False if its window is full. Each statement is atomic on
    its row, so concurrent processes never count past the limit."""
    start = stamp - stamp % limit.window
    table = _TABLE
    for _ in range(2):  # twice only if another process created the row meanwhile
        counted = connection.execute(
            update(table)
            .where(table.c.key == limit.key, table.c.window_start == start)
            .where(table.c.hits < limit.hits)
            .values(hits=table.c.hits + 1)
        )
        if dialect.rowcount(counted):
            return True
        exists = connection.execute(
            select(table.c.window_start, table.c.hits).where(table.c.key == limit.key)
        ).first()
        if exists is not None and exists.window_start == start:
            if exists.hits < limit.hits:  # made by another process after our UPDATE began
                continue  # (PostgreSQL: that UPDATE's snapshot did not see it): count again
            return False  # full for this window
        if exists is not None:  # an older window not pruned yet (pruning is by `expires`)
            connection.execute(
                update(table)
                .where(table.c.key == limit.key)
                .values(window_start=start, expires=start + limit.window, hits=1)
            )
            return True
        values = {"key": limit.key, "window_start": start, "expires": start + limit.window}
        if dialect.insert_if_absent(connection, table, values | {"hits": 1}):
            return True  # else another process made the row meanwhile: count on it
    return False


def count_limits(store: Store) -> int:
    """Counter rows in the store (the tests and the benchmark check they stay bounded)."""
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(_TABLE)).scalar() or 0
