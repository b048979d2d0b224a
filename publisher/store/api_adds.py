"""Many new active subscribers in one go: the API's group commit hands a whole batch of
creates by import keys to `add_active_many`, which answers each as `add_person` then
`add_active` would one at a time (in the order given), with a handful of statements for the
batch instead of several per person: one look-up of the addresses already stored, one of
the suppressed ones, one multi-row INSERT per table. Row triggers (the tallies, the list
counts) fire for each row of a multi-row INSERT as for a single one.

On SQLite the batch's statements go straight through the DBAPI cursor (plain SQL built
once from the Table objects of store/models/, plain tuples, sqlite3's `executemany`
looping in C): SQLAlchemy's per-statement and per-value work was most of the group-commit
writer's CPU. Each value is converted as its column's type converts it (the type's own
bind processor; the batch's one time once). PostgreSQL keeps SQLAlchemy Core."""

from __future__ import annotations

import base64
import functools
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Table, bindparam, insert, select

from publisher.store import Store, outbox
from publisher.store.consent import Context
from publisher.store.models import SubscriberHistoryRow, SubscriberRow, SuppressionRow
from publisher.store.subscribers import PENDING, Subscriber, stored_email_hash

__all__ = ["Added", "NewActive", "add_active_many"]


@dataclass(frozen=True)
class NewActive:
    """One person to add active at once; `address` as normalise_email gives it."""

    address: str
    name: str | None
    topics: Sequence[str]
    ctx: Context
    action: str = "added"


@dataclass(frozen=True)
class Added:
    """What became of one NewActive: the person made, or why not: `existing` is the status
    of the subscriber already stored under the address (an earlier one of the same batch
    included), `suppressed` the suppression's reason (bounced, complained, erased)."""

    subscriber: Subscriber | None = None
    existing: str | None = None
    suppressed: str | None = None


_SUBSCRIBERS = cast(Table, SubscriberRow.__table__)
_SUPPRESSIONS = cast(Table, SuppressionRow.__table__)
_HISTORY = cast(Table, SubscriberHistoryRow.__table__)
# the columns each batch writes, in the order of the rows' tuples
_PEOPLE = ("email", "email_hash", "name", "topics", "status", "token", "created_at",
           "updated_at", "ref", "retired_token", "status_reason")  # fmt: skip
_EVENTS = ("subscriber_id", "at", "action", "via", "status", "ip", "user_agent", "form",
           "consent_text", "detail")  # fmt: skip
# built once: the API's batches run them all the time
_STORED = select(_SUBSCRIBERS.c.email, _SUBSCRIBERS.c.status).where(
    _SUBSCRIBERS.c.email.in_(bindparam("emails", expanding=True))
)
_SUPPRESSED = select(_SUPPRESSIONS.c.email_hash, _SUPPRESSIONS.c.reason).where(
    _SUPPRESSIONS.c.email_hash.in_(bindparam("hashes", expanding=True))
)
_ADD = insert(_SUBSCRIBERS).returning(_SUBSCRIBERS.c.id, _SUBSCRIBERS.c.email)
_ADD_HISTORY = insert(_HISTORY)
_Row = tuple[Any, ...]


@functools.lru_cache(maxsize=32)  # these, and the SQL below, are built once a process
def _quoted(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> tuple[str, str]:
    """The table's name and its columns' list, quoted as the dialect quotes them."""
    quote = dialect.identifier_preparer.quote
    return quote(table.name), ", ".join(quote(table.c[name].name) for name in columns)


@functools.lru_cache(maxsize=32)
def _bound(dialect: Dialect, table: Table, column: str) -> Callable[[Any], Any]:
    """What the column's type makes of a value bound to it (TypeDecorators included)."""
    process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else (lambda value: value)


def _cursor(connection: Connection) -> sqlite3.Cursor | None:
    """The DBAPI cursor of the connection's transaction on SQLite; None elsewhere."""
    if connection.dialect.name != "sqlite":
        return None
    return cast(sqlite3.Cursor, connection.connection.cursor())


def _chunks(cursor: sqlite3.Cursor, items: list[Any], each: int) -> list[list[Any]]:
    """`items` cut so that no statement binds more variables than SQLite allows."""
    limit = cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    size = max(1, limit // each)
    return [items[at : at + size] for at in range(0, len(items), size)]


@functools.lru_cache(maxsize=512)
def _select_sql(dialect: Dialect, table: Table, key: str, value: str, count: int) -> str:
    """SELECT key, value FROM table WHERE key IN (`count` qmark placeholders)."""
    name, listed = _quoted(dialect, table, (key, value))
    quoted_key = _quoted(dialect, table, (key,))[1]
    marks = ", ".join("?" * count)
    return f"SELECT {listed} FROM {name} WHERE {quoted_key} IN ({marks})"


@functools.lru_cache(maxsize=512)
def _insert_sql(dialect: Dialect, table: Table, columns: tuple[str, ...], rows: int) -> str:
    """INSERT of `rows` rows of `columns` (sqlite3's qmark placeholders)."""
    name, listed = _quoted(dialect, table, columns)
    group = "(" + ", ".join("?" * len(columns)) + ")"
    return f"INSERT INTO {name} ({listed}) VALUES " + ", ".join([group] * rows)


def _read(
    cursor: sqlite3.Cursor,
    dialect: Dialect,
    table: Table,
    columns: tuple[str, str],
    keys: list[str],
) -> dict[str, str]:
    """{first column: second} of the rows whose first column is one of `keys` (strings)."""
    found: dict[str, str] = {}
    for chunk in _chunks(cursor, keys, 1):
        found.update(cursor.execute(_select_sql(dialect, table, *columns, len(chunk)), chunk))
    return found


def _found(
    connection: Connection, addresses: list[str], hashes: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The statuses of the addresses stored, and the reasons of the hashes suppressed."""
    cursor = _cursor(connection)
    if cursor is None:
        stored = connection.execute(_STORED, {"emails": addresses})
        suppressed = connection.execute(_SUPPRESSED, {"hashes": hashes})
        return {r[0]: r[1] for r in stored}, {r[0]: r[1] for r in suppressed}
    dialect = connection.dialect
    return (
        _read(cursor, dialect, _SUBSCRIBERS, ("email", "status"), addresses),
        _read(cursor, dialect, _SUPPRESSIONS, ("email_hash", "reason"), hashes),
    )


def _history(subscriber_id: int, action: str, ctx: Context, at: Any, status: str) -> _Row:
    return (subscriber_id, at, action, ctx.via, status, ctx.ip,
            (ctx.user_agent or "")[:500] or None, ctx.form, ctx.consent_text, None)  # fmt: skip


def _sorted_out(
    requests: Sequence[NewActive],
    hashes: dict[str, str],
    stored: dict[str, str],
    suppressed: dict[str, str],
) -> tuple[list[Added | None], list[int]]:
    """Each request's refusal (None: to add) and the indexes of those to add, in order: an
    address stored, or added by an earlier request of the batch, is refused as `active`."""
    outcomes: list[Added | None] = []
    adding: list[int] = []
    for index, request in enumerate(requests):
        status = stored.get(request.address)
        reason = suppressed.get(hashes[request.address])
        if status is not None:
            outcomes.append(Added(existing=status))
        elif reason is not None:
            outcomes.append(Added(suppressed=reason))
        else:
            outcomes.append(None)
            adding.append(index)
            stored[request.address] = "active"
    return outcomes, adding


def add_active_many(store: Store, requests: Sequence[NewActive], *, now: datetime) -> list[Added]:
    """One Added per request, in order, all in one transaction: a new address becomes an
    active subscriber with the sign-up and the activation in their history and the status
    event in the webhook outbox (what add_active writes); an address already stored, or
    suppressed, is refused and nothing is written for it."""
    if not requests:
        return []
    hashes = {r.address: stored_email_hash(r.address) for r in requests}
    with store.engine.begin() as connection:
        stored, suppressed = _found(connection, sorted(hashes), sorted(set(hashes.values())))
        outcomes, adding = _sorted_out(requests, hashes, stored, suppressed)
        if adding:
            made = _insert(connection, [requests[i] for i in adding], hashes, now)
            for index, person in zip(adding, made, strict=True):
                outcomes[index] = Added(subscriber=person)
    return [outcome or Added() for outcome in outcomes]


def _insert(
    connection: Connection, requests: list[NewActive], hashes: dict[str, str], now: datetime
) -> list[Subscriber]:
    """The people (new addresses, distinct), their history and their webhook events."""
    cursor = _cursor(connection)
    dialect = connection.dialect
    convert = cursor is not None  # values as the column types make them, for the cursor
    at = _bound(dialect, _SUBSCRIBERS, "created_at")(now) if convert else now
    topics = [sorted(set(request.topics)) for request in requests]
    as_json = _bound(dialect, _SUBSCRIBERS, "topics") if convert else (lambda value: value)
    tokens, refs = _tokens(len(requests), 24), _tokens(len(requests), 12)
    rows = [
        (r.address, hashes[r.address], r.name, as_json(t), "active", token, at, at, ref, None,
         None)
        for r, t, token, ref in zip(requests, topics, tokens, refs, strict=True)
    ]  # fmt: skip
    ids = _add(connection, cursor, rows)
    history: list[_Row] = []
    events: list[tuple[int, str | None, str]] = []
    made = []
    when = _bound(dialect, _HISTORY, "at")(now) if convert else now
    for request, row, listed in zip(requests, rows, topics, strict=True):
        ident = ids[request.address]
        history.append(_history(ident, "signup", request.ctx, when, PENDING))
        history.append(_history(ident, request.action, request.ctx, when, "active"))
        events.append((ident, request.address, request.ctx.via))
        made.append(Subscriber(ident, request.address, request.name, tuple(listed), "active",
                               row[5], row[8]))  # fmt: skip
    if cursor is None:
        connection.execute(_ADD_HISTORY, [dict(zip(_EVENTS, row, strict=True)) for row in history])
    else:
        cursor.executemany(_insert_sql(dialect, _HISTORY, _EVENTS, 1), history)
    outbox.subscriber_events(connection, events, "active", now)
    return made


def _add(connection: Connection, cursor: sqlite3.Cursor | None, rows: list[_Row]) -> dict[str, int]:
    """Insert the people's rows: {address: id}. On SQLite, one INSERT ... RETURNING of many
    VALUES through the cursor (sqlite3's executemany gives no RETURNING rows)."""
    if cursor is None:
        people = [dict(zip(_PEOPLE, row, strict=True)) for row in rows]
        return {r[1]: int(r[0]) for r in connection.execute(_ADD, people)}
    _, returned = _quoted(connection.dialect, _SUBSCRIBERS, ("id", "email"))
    ids: dict[str, int] = {}
    for chunk in _chunks(cursor, rows, len(_PEOPLE)):
        insert_sql = _insert_sql(connection.dialect, _SUBSCRIBERS, _PEOPLE, len(chunk))
        sql = f"{insert_sql} RETURNING {returned}"
        flat = [value for row in chunk for value in row]
        ids.update((found, int(number)) for number, found in cursor.execute(sql, flat))
    return ids


def _tokens(count: int, size: int) -> list[str]:
    """`count` tokens as secrets.token_urlsafe(size) makes them (os.urandom, URL-safe
    base64 without padding), from one read of the system's randomness. A size that is a
    multiple of 3 (24, 12) encodes to whole base64 groups: the lot is encoded at once and
    cut, each piece what encoding its own bytes gives."""
    raw = os.urandom(count * size)
    if size % 3 == 0:
        text = base64.urlsafe_b64encode(raw).decode("ascii")
        width = size // 3 * 4
        return [text[at : at + width] for at in range(0, count * width, width)]
    return [
        base64.urlsafe_b64encode(raw[at : at + size]).rstrip(b"=").decode("ascii")
        for at in range(0, count * size, size)
    ]
