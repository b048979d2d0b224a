"""The store of `bench.admin`, bulk-loaded: subscribers, items, editions, the delivery ledger
and webhook events at a chosen size, on SQLite (executemany in big transactions, one
connection, synchronous off) or PostgreSQL (COPY). Deterministic: row n is the same in every
build, so runs on the two databases and before/after a change time the same data."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from publisher.store import Store
from publisher.store.subscribers import stored_email_hash

NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # the benchmark's fixed clock
TOPICS = ("labor", "housing", "climate", "transit", "health", "schools", "budget", "arts")
STATUSES = ("active",) * 17 + ("unsubscribed", "unsubscribed", "bounced")
SOURCES = ("posts", "newsroom", "city-hall", "union-feed", "partners", "press-export")
KINDS = ("news", "event", "report", "action")
EVENTS = ("delivered",) * 5 + ("open",) * 3 + ("click", "bounce", "spamreport", "unsubscribe")
CAMPAIGNS = ("weekly", "alerts")
CHUNK = 50_000


@dataclass(frozen=True)
class Sizes:
    subscribers: int = 1_000_000
    items: int = 10_000
    editions: int = 200
    deliveries: int = 5_000_000
    events: int = 2_000_000
    suppressions: int = 2_000  # half of them addresses of active subscribers

    @property
    def key(self) -> str:
        return "-".join(
            str(n)
            for n in (
                self.subscribers, self.items, self.editions, self.deliveries, self.events,
                self.suppressions,
            )
        )  # fmt: skip


def _stamp(moment: datetime, sqlite: bool) -> str:
    """A UTC time as the store keeps it: SQLAlchemy's SQLite text, or timestamptz input."""
    if sqlite:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment.strftime("%Y-%m-%d %H:%M:%S+00")


def _subscribers(sizes: Sizes, sqlite: bool) -> Iterator[tuple[Any, ...]]:
    span = 730 * 24 * 3600  # two years, more of them lately (the square root skews late)
    for i in range(1, sizes.subscribers + 1):
        created = NOW - timedelta(seconds=int(span * (1 - ((i / sizes.subscribers) ** 0.5))))
        topics = [TOPICS[(i * k) % len(TOPICS)] for k in range(1, 1 + i % 4)]
        stamp = _stamp(created, sqlite)
        email = f"person{i}@example.org"
        yield (
            i, email, f"Person {i}" if i % 3 else None,
            json.dumps(sorted(set(topics))), STATUSES[i % len(STATUSES)], f"tok{i:061d}",
            None, stamp, stamp, f"ref{i}", None, stored_email_hash(email),
        )  # fmt: skip


def _items(sizes: Sizes, sqlite: bool) -> Iterator[tuple[Any, ...]]:
    for i in range(sizes.items):
        published = _stamp(NOW - timedelta(hours=3 * i), sqlite)
        topics = json.dumps([TOPICS[i % len(TOPICS)], TOPICS[(i // 3) % len(TOPICS)]])
        body = f"<p>The story of item {i}, told at some length.</p>" * 4
        yield (
            f"item-{i}", SOURCES[i % len(SOURCES)], f"Item number {i} about {TOPICS[i % 8]}",
            f"https://www.example.org/items/{i}", f"Summary of item {i}.", body, None,
            published, None, None, KINDS[i % len(KINDS)], topics, None, None, f"{i:064x}",
            published, published, None, None, None,
        )  # fmt: skip


def _edition_time(n: int, sizes: Sizes) -> datetime:
    return NOW - timedelta(days=sizes.editions - n + 1)


def _editions(sizes: Sizes, sqlite: bool) -> Iterator[tuple[Any, ...]]:
    for n in range(1, sizes.editions + 1):
        at = _edition_time(n, sizes)
        campaign, number = CAMPAIGNS[n % 2], (n + 1) // 2
        html = f"<html><body><h1>Edition {n}</h1>{'<p>Story.</p>' * 50}</body></html>"
        yield (
            n, campaign, number, _stamp(at, sqlite), _stamp(at, sqlite),
            f"{campaign} #{number}", "News of the week", html, "Edition text", "sent",
            _stamp(at + timedelta(hours=1), sqlite),
        )  # fmt: skip


def _deliveries(sizes: Sizes, sqlite: bool) -> Iterator[tuple[Any, ...]]:
    per = max(1, min(sizes.subscribers, sizes.deliveries // sizes.editions))
    row = 0
    for edition in range(1, sizes.editions + 1):
        at = _edition_time(edition, sizes)
        for k in range(per):
            row += 1
            subscriber = (edition * 7919 + k) % sizes.subscribers + 1
            status = "failed" if k % 97 == 0 else "uncertain" if k % 499 == 0 else "sent"
            stamp = _stamp(at + timedelta(seconds=k % 7200), sqlite)
            yield (row, edition, subscriber, k // 1000, status, 1, None, stamp)


def _events(sizes: Sizes, sqlite: bool) -> Iterator[tuple[Any, ...]]:
    per = max(1, sizes.events // sizes.editions)
    row = 0
    for edition in range(1, sizes.editions + 1):
        at = _edition_time(edition, sizes)
        for k in range(per):
            row += 1
            event = EVENTS[k % len(EVENTS)]
            email = f"person{(edition * 7919 + k // 2) % sizes.subscribers + 1}@example.org"
            url = f"https://www.example.org/story/{k % 9}" if event == "click" else None
            occurred = _stamp(at + timedelta(seconds=(k * 13) % 172_800), sqlite)
            yield (f"ev{row}", event, email, edition, url, None, occurred, occurred)


def _suppressions(sizes: Sizes, sqlite: bool) -> Iterator[tuple[Any, ...]]:
    """Hashed addresses on the suppression list: every other one an active subscriber's
    (spread over the ids; person n is active when n % 20 < 17), the rest nobody's."""
    stamp = _stamp(NOW - timedelta(days=30), sqlite)
    step = max(20, sizes.subscribers // max(1, sizes.suppressions) * 2 // 20 * 20)
    for k in range(sizes.suppressions):
        if k % 2:
            address = f"gone{k}@example.net"
        else:
            address = f"person{(k // 2 * step) % sizes.subscribers + 1}@example.org"
        yield (stored_email_hash(address), "bounced", "bench", stamp)


TABLES: dict[str, tuple[str, ...]] = {
    "subscribers": (
        "id", "email", "name", "topics", "status", "token", "status_reason", "created_at",
        "updated_at", "ref", "retired_token", "email_hash",
    ),
    "items": (
        "id", "source", "title", "url", "summary", "body_html", "author", "published",
        "updated", "day", "kind", "topics", "image", "image_alt", "content_hash", "first_seen",
        "last_changed", "origin", "retired_at", "retired_reason",
    ),
    "editions": (
        "id", "campaign", "number", "slot", "composed_at", "subject", "preheader", "html",
        "text", "status", "sent_at",
    ),
    "deliveries": (
        "id", "edition_id", "subscriber_id", "batch", "status", "attempts", "error", "updated_at",
    ),
    "webhook_events": (
        "sg_event_id", "event", "email", "edition_id", "url", "detail", "occurred_at",
        "received_at",
    ),
    "suppressions": ("email_hash", "reason", "source", "created_at"),
}  # fmt: skip
ROWS = {
    "subscribers": _subscribers,
    "items": _items,
    "editions": _editions,
    "deliveries": _deliveries,
    "webhook_events": _events,
    "suppressions": _suppressions,
}


def _chunks(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _load_table(cursor: Any, sqlite: bool, table: str, columns: Sequence[str], rows: Any) -> None:
    names = ", ".join(columns)
    if sqlite:
        marks = ", ".join("?" * len(columns))
        for chunk in _chunks(rows):
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", chunk)
        return
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


# migration 0029's backfill: what each finished send writes (publisher.store.tallies)
TALLIES = """
INSERT INTO edition_tallies (edition_id, status, count)
SELECT d.edition_id, d.status, count(*) FROM deliveries d
JOIN editions e ON e.id = d.edition_id
WHERE e.status NOT IN ('composed', 'sending') AND e.campaign NOT LIKE '~%'
GROUP BY d.edition_id, d.status
"""


def load(store: Store, sizes: Sizes) -> None:
    """Every table of the benchmark, in one transaction per table."""
    sqlite = store.engine.dialect.name == "sqlite"
    connection = store.engine.raw_connection()
    try:
        cursor = connection.cursor()
        if sqlite:
            cursor.execute("PRAGMA synchronous = OFF")
        for table, columns in TABLES.items():
            _load_table(cursor, sqlite, table, columns, ROWS[table](sizes, sqlite))
            connection.commit()
        # the editions were sent before migration 0029's tallies: count them as it does
        cursor.execute(TALLIES)
        connection.commit()
        if not sqlite:  # ids were given: move the sequences past them
            for table in ("subscribers", "editions", "deliveries"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            connection.commit()
        if sqlite:
            cursor.execute("ANALYZE")
            connection.commit()
        else:  # as autovacuum leaves a table after a bulk insert: without the visibility
            # map an index-only scan (the ledger counts) reads the table row by row
            driver: Any = connection.driver_connection  # psycopg: VACUUM outside a transaction
            driver.autocommit = True
            cursor.execute("VACUUM (ANALYZE)")
            driver.autocommit = False
    finally:
        connection.close()
