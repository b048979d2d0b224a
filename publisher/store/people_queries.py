"""Read-only queries of the staff dashboard's people page: subscribers by status and topic,
growth per day, search by address or name, and the subscriber CSV export. Everything
returned is plain values or `Subscriber`s; the wording is the edges' own
(publisher.support.screen)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta, tzinfo
from itertools import pairwise as pairs
from typing import Any

from sqlalchemy import column, func, or_, select
from sqlalchemy import text as sql_text

from publisher.store import Store
from publisher.store.models import SubscriberRow, SubscriberTallyRow
from publisher.store.subscribers import Subscriber

__all__ = [
    "export_rows",
    "growth",
    "search_subscribers",
    "subscriber_counts",
]


def subscriber_counts(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    """Subscribers by status, and active subscribers by topic ('(all topics)' when none):
    read from the tallies the database's own triggers keep exact (migration 0022), a few
    dozen rows whatever the number of subscribers."""
    query = select(
        SubscriberTallyRow.status, SubscriberTallyRow.kind, SubscriberTallyRow.topic,
        SubscriberTallyRow.n,
    ).where(SubscriberTallyRow.n != 0)  # fmt: skip
    statuses: dict[str, int] = {}
    topics: dict[str, int] = {}
    with store.session() as session:
        for status, kind, topic, n in session.execute(query):
            if kind == "all":
                statuses[str(status)] = int(n)
            elif status == "active":
                topics["(all topics)" if kind == "none" else str(topic)] = int(n)
    return statuses, dict(sorted(topics.items()))


def _day_starts(now: datetime, days: int, zone: tzinfo) -> list[datetime]:
    """The UTC instants the last `days` days of `zone`'s calendar begin at, and the end of
    today: local midnights, so a day with a clock change has 23 or 25 hours."""
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    return [
        datetime.combine(first + timedelta(days=i), time(), zone).astimezone(UTC)
        for i in range(days + 1)
    ]


def growth(
    store: Store, *, now: datetime, days: int = 30, zone: tzinfo = UTC
) -> list[tuple[datetime, int, int]]:
    """(day, new that day, total by the end of it) for the last `days` days of `zone`'s
    calendar (the day as its local midnight). One statement of indexed range counts over
    the window's days; the total before it is the triggers' tally of every subscriber
    less those created since the window began (never a count over the whole table)."""
    starts = _day_starts(now, days, zone)
    created = SubscriberRow.created_at

    def count(*where: Any) -> Any:
        return select(func.count()).where(*where).scalar_subquery()

    per_day = [count(created >= a, created < b, created <= now) for a, b in pairs(starts)]
    everyone = select(func.coalesce(func.sum(SubscriberTallyRow.n), 0)).where(
        SubscriberTallyRow.kind == "all"
    )
    with store.session() as session:
        since: Any = session.execute(select(count(created >= starts[0]), *per_day)).one()
        total = int(session.scalar(everyone) or 0) - int(since[0])
    out = []
    for index in range(days):
        total += int(since[index + 1])
        out.append((starts[index].astimezone(zone), int(since[index + 1]), total))
    return out


def search_subscribers(store: Store, text: str, *, limit: int = 50) -> list[Subscriber]:
    """Subscribers whose address or name contains `text`, whatever its case (erased ones
    never), by address. Served by migration 0023's trigram indexes: on PostgreSQL the
    planner picks pg_trgm's (addresses are stored in lower case; a name is matched with
    ILIKE, as SQLite's LIKE ignores case); on SQLite the FTS5 table names the candidate rows
    (for three characters or more), each checked by the same LIKE. Without them it reads
    every row."""
    wanted = text.strip().lower().replace("\\", "").replace("%", "").replace("_", "")
    pattern = f"%{wanted}%"
    query = (
        select(SubscriberRow)
        .where(or_(SubscriberRow.email.like(pattern), SubscriberRow.name.ilike(pattern)))
        .where(SubscriberRow.email.not_like("%@erased.invalid"))
        .order_by(SubscriberRow.email)
        .limit(limit)
    )
    with store.session() as session:
        if len(wanted) >= 3 and _sqlite_trigrams(session):
            query = query.where(SubscriberRow.id.in_(_trigram_candidates(wanted)))
        return [_subscriber(row) for row in session.scalars(query)]


def _sqlite_trigrams(session: Any) -> bool:
    """Whether this is SQLite with migration 0023's FTS5 table (an SQLite built without
    FTS5 migrates without it)."""
    if session.get_bind().dialect.name != "sqlite":
        return False
    found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'subscribers_search'"
    return session.scalar(sql_text(found)) is not None


def _trigram_candidates(wanted: str) -> Any:
    """The ids whose address or name holds `wanted` as a phrase of trigrams (case folded):
    every row the LIKE matches, maybe a few more (the LIKE decides)."""
    phrase = '"' + wanted.replace('"', '""') + '"'
    statement = "SELECT rowid FROM subscribers_search WHERE subscribers_search MATCH :phrase"
    return sql_text(statement).bindparams(phrase=phrase).columns(column("rowid"))


def _subscriber(row: SubscriberRow) -> Subscriber:
    return Subscriber(row.id, row.email, row.name, tuple(row.topics or ()), row.status, row.token)


def export_rows(store: Store) -> Iterator[list[str]]:
    """The subscriber CSV's cells (header first) as stored; erased rows left out. The
    caller writing a file makes them spreadsheet-safe (publisher.support.screen)."""
    yield ["email", "name", "topics", "status", "created_at"]
    query = select(SubscriberRow).order_by(SubscriberRow.id)
    with store.session() as session:
        for s in session.scalars(query):
            if s.email.endswith("@erased.invalid"):
                continue
            row = [s.email, s.name or "", ";".join(s.topics or []), s.status]
            yield [*row, s.created_at.isoformat()]
