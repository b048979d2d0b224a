"""The audit log: every staff action with who, when and from where. Repeated failures
(failed log-ins, throttled attempts) from one address are one row counting them, so a
flood cannot push the real entries off the page."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Dialect, Table, insert, select

from publisher.store import Store
from publisher.store.models import AuditRow

__all__ = ["AGGREGATE_WINDOW", "SEVERAL", "AuditEntry", "recent", "record", "record_many"]

AGGREGATE_WINDOW = timedelta(hours=1)
SEVERAL = "(several addresses)"


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str
    ip: str | None
    repeats: int = 1


_ADD = insert(AuditRow)  # built once: the API writes a row per create


def record_many(store: Store, entries: list[AuditEntry]) -> None:
    """Plain rows, one statement (`repeats` as given, no aggregating): the API's batched
    creates write one per person."""
    if entries:
        rows = [
            (e.at, e.actor[:320], e.action, e.target, e.ip, e.repeats)
            for e in entries
        ]  # fmt: skip
        with store.begin() as connection:
            if connection.dialect.name == "sqlite":  # see _plain
                sql, convert = _plain(connection.dialect)
                plain = [(convert(row[0]), *row[1:]) for row in rows]
                connection.connection.cursor().executemany(sql, plain)
                return
            connection.execute(_ADD, [dict(zip(_COLUMNS, row, strict=True)) for row in rows])


_COLUMNS = ("at", "actor", "action", "target", "ip", "repeats")


@functools.lru_cache(maxsize=4)
def _plain(dialect: Dialect) -> tuple[str, Callable[[Any], Any]]:
    """On SQLite the API's rows go straight through the DBAPI cursor's executemany (the
    loop in C; SQLAlchemy's per-row work was a good part of the group-commit writer's CPU):
    the INSERT built once from the table, and what the `at` column's type makes of a time
    (its own bind processor). The other columns' types bind plain values as they are."""
    quote = dialect.identifier_preparer.quote
    table = cast(Table, AuditRow.__table__)
    listed = ", ".join(quote(table.c[name].name) for name in _COLUMNS)
    marks = ", ".join("?" * len(_COLUMNS))
    at = table.c.at.type.dialect_impl(dialect).bind_processor(dialect)
    sql = f"INSERT INTO {quote(table.name)} ({listed}) VALUES ({marks})"
    return sql, at if at is not None else (lambda value: value)


def record(
    store: Store,
    actor: str,
    action: str,
    target: str = "",
    *,
    ip: str | None,
    now: datetime,
    aggregate: bool = False,
) -> None:
    """One row; with `aggregate`, a repeat of the same action from the same address within
    AGGREGATE_WINDOW counts on that row instead (its time moves on; attempts at several
    accounts name SEVERAL as the actor), so trying many addresses adds no rows either."""
    if not aggregate:  # one plain INSERT (the API writes one per create)
        row = dict(at=now, actor=actor[:320], action=action, target=target, ip=ip, repeats=1)
        with store.begin() as connection:  # joins an enclosing one_transaction()
            connection.execute(_ADD, row)
        return
    with store.session() as session:
        if aggregate:
            same = session.scalar(
                select(AuditRow)
                .where(AuditRow.action == action, AuditRow.ip == ip)
                .where(AuditRow.at > now - AGGREGATE_WINDOW)
                .order_by(AuditRow.id.desc())
                .limit(1)
            )
            if same is not None:
                same.repeats, same.at = same.repeats + 1, now
                if same.actor != actor[:320]:
                    same.actor = SEVERAL
                return
        session.add(
            AuditRow(at=now, actor=actor[:320], action=action, target=target, ip=ip, repeats=1)
        )


def recent(store: Store, *, limit: int = 200) -> list[AuditEntry]:
    """Newest first (an aggregated row by the time of its latest repeat)."""
    query = select(AuditRow).order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit)
    with store.session() as session:
        return [
            AuditEntry(r.at, r.actor, r.action, r.target, r.ip, r.repeats)
            for r in session.scalars(query)
        ]
