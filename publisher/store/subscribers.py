"""Subscribers: import (upsert) from CSV/JSON, stream in chunks, statuses and tokens.

Statuses: `active`, `unsubscribed`, `bounced`, `complained`. Only `active` subscribers are
ever sent anything. An import never re-activates someone who unsubscribed, bounced or
complained: only the person (through the preferences page) or staff editing the store can.

Topics: a subscriber with an empty topic list follows every campaign; otherwise they follow
campaigns without an `audience` and campaigns whose audience shares a topic with them.
"""

from __future__ import annotations

import csv
import json
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, insert, select, update

from publisher.errors import PublisherError
from publisher.store import Store
from publisher.store.models import SubscriberRow

STATUSES = ("active", "unsubscribed", "bounced", "complained")
# Deliberately plain ASCII addresses: internationalised addresses need SMTPUTF8 end to end.
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$"
)
CHUNK = 1000


class SubscriberFileError(PublisherError):
    """The subscribers file cannot be read at all (rows with problems are only skipped)."""


@dataclass(frozen=True)
class SubscriberInput:
    email: str
    name: str | None = None
    topics: tuple[str, ...] = ()
    status: str | None = None  # None: keep the stored status (new subscribers: active)


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str | None
    topics: tuple[str, ...]
    status: str
    token: str


@dataclass
class ImportReport:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_inactive: int = 0  # rows that asked for `active` but the person had opted out
    problems: list[str] = field(default_factory=list)


def new_token() -> str:
    """Unguessable, URL-safe: it is the only credential of the unsubscribe link."""
    return secrets.token_urlsafe(24)


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def follows(subscriber_topics: Sequence[str], audience: Sequence[str]) -> bool:
    """A campaign without audience reaches everyone; no topic list means 'everything'."""
    if not audience or not subscriber_topics:
        return True
    return not set(audience).isdisjoint(subscriber_topics)


# --- reading files ------------------------------------------------------------------------


def _split_topics(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    parts = value if isinstance(value, list) else re.split(r"[;|,]", str(value))
    return tuple(sorted({str(p).strip() for p in parts if str(p).strip()}))


def _parse_row(data: dict, where: str) -> SubscriberInput:
    email = normalise_email(str(data.get("email") or ""))
    if not EMAIL_RE.match(email):
        raise ValueError(f"{where}: invalid email address {email!r}")
    status = (str(data.get("status") or "").strip().lower()) or None
    if status is not None and status not in STATUSES:
        raise ValueError(f"{where}: unknown status {status!r} (allowed: {', '.join(STATUSES)})")
    name = str(data.get("name") or "").strip() or None
    return SubscriberInput(email, name, _split_topics(data.get("topics")), status)


def read_subscriber_file(path: Path) -> tuple[list[SubscriberInput], list[str]]:
    """Rows of a CSV (header: email,name,topics[,status]) or JSON list; problems per row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriberFileError(f"{path}: cannot read subscribers: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SubscriberFileError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        records = data.get("subscribers", []) if isinstance(data, dict) else data
        numbered = [(f"{path}: entry {i + 1}", r) for i, r in enumerate(records)]
    else:
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "email" not in reader.fieldnames:
            raise SubscriberFileError(f"{path}:1: the CSV header needs an 'email' column")
        numbered = [(f"{path}:{reader.line_num}", r) for r in reader]
    rows, problems, seen = [], [], set()
    for where, record in numbered:
        try:
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected an object with 'email'")
            row = _parse_row(record, where)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if row.email in seen:
            problems.append(f"{where}: duplicate address {row.email} (first one kept)")
            continue
        seen.add(row.email)
        rows.append(row)
    return rows, problems


# --- writing ------------------------------------------------------------------------------


def import_subscribers(
    store: Store, rows: Iterable[SubscriberInput], *, now: datetime
) -> ImportReport:
    """Upsert by email in chunks of 1,000 (one transaction per chunk)."""
    report = ImportReport()
    chunk: list[SubscriberInput] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            _import_chunk(store, chunk, now, report)
            chunk = []
    if chunk:
        _import_chunk(store, chunk, now, report)
    return report


def _import_chunk(
    store: Store, chunk: list[SubscriberInput], now: datetime, report: ImportReport
) -> None:
    with store.session() as session:
        existing = {
            r.email: r
            for r in session.execute(
                select(
                    SubscriberRow.id,
                    SubscriberRow.email,
                    SubscriberRow.name,
                    SubscriberRow.topics,
                    SubscriberRow.status,
                ).where(SubscriberRow.email.in_([c.email for c in chunk]))
            )
        }
        new_rows = []
        for row in chunk:
            old = existing.get(row.email)
            if old is None:
                new_rows.append(
                    dict(
                        email=row.email,
                        name=row.name,
                        topics=list(row.topics),
                        status=row.status or "active",
                        token=new_token(),
                        created_at=now,
                        updated_at=now,
                    )
                )
                continue
            status = old.status
            if row.status and row.status != "active":
                status = row.status
            elif row.status == "active" and old.status != "active":
                report.kept_inactive += 1
            changes = dict(name=row.name, topics=list(row.topics), status=status)
            if (old.name, list(old.topics or []), old.status) == (
                row.name,
                list(row.topics),
                status,
            ):
                report.unchanged += 1
                continue
            session.execute(
                update(SubscriberRow)
                .where(SubscriberRow.id == old.id)
                .values(**changes, updated_at=now)
            )
            report.updated += 1
        if new_rows:
            session.execute(insert(SubscriberRow), new_rows)
            report.inserted += len(new_rows)


def set_status(store: Store, *, token: str, status: str, now: datetime) -> bool:
    """Change one subscriber's status by token (unsubscribe link, bounce/complaint webhook)."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    with store.session() as session:
        result = session.execute(
            update(SubscriberRow)
            .where(SubscriberRow.token == token)
            .values(status=status, updated_at=now)
        )
        return result.rowcount > 0


# --- reading ------------------------------------------------------------------------------


def _to_subscriber(row) -> Subscriber:  # type: ignore[no-untyped-def]
    return Subscriber(row.id, row.email, row.name, tuple(row.topics or ()), row.status, row.token)


def iter_subscribers(
    store: Store, *, status: str | None = None, after_id: int = 0, chunk: int = CHUNK
) -> Iterator[Subscriber]:
    """Every subscriber by id, fetched in chunks (keyset pagination, never the whole list)."""
    columns = (
        SubscriberRow.id,
        SubscriberRow.email,
        SubscriberRow.name,
        SubscriberRow.topics,
        SubscriberRow.status,
        SubscriberRow.token,
    )
    while True:
        query = select(*columns).where(SubscriberRow.id > after_id)
        if status:
            query = query.where(SubscriberRow.status == status)
        with store.session() as session:
            rows = session.execute(query.order_by(SubscriberRow.id).limit(chunk)).all()
        if not rows:
            return
        for row in rows:
            yield _to_subscriber(row)
        after_id = rows[-1].id


def iter_audience(
    store: Store, audience: Sequence[str], *, after_id: int = 0, chunk: int = CHUNK
) -> Iterator[Subscriber]:
    """Active subscribers who follow a campaign with this audience, in id order."""
    for subscriber in iter_subscribers(store, status="active", after_id=after_id, chunk=chunk):
        if follows(subscriber.topics, audience):
            yield subscriber


def count_audience(store: Store, audience: Sequence[str]) -> int:
    if not audience:
        with store.session() as session:
            query = select(func.count()).where(SubscriberRow.status == "active")
            return session.scalar(query) or 0
    return sum(1 for _ in iter_audience(store, audience, chunk=5000))


def count_by_status(store: Store) -> dict[str, int]:
    with store.session() as session:
        rows = session.execute(
            select(SubscriberRow.status, func.count()).group_by(SubscriberRow.status)
        ).all()
    return {status: count for status, count in rows}


# --- the subscriber web (issue 11): lookups; status changes live in store/consent.py -------

PENDING = "pending"  # signed up, confirmation not yet clicked: receives nothing


def find_subscriber(
    store: Store, *, token: str | None = None, email: str | None = None, id: int | None = None
) -> Subscriber | None:
    """One subscriber by token, address (normalised here) or id; None if unknown.
    (Core, not the ORM: the unsubscribe endpoint calls it for every request.)"""
    table = SubscriberRow.__table__
    query = select(table.c.id, table.c.email, table.c.name, table.c.topics, table.c.status)
    query = query.add_columns(table.c.token)
    if token is not None:
        query = query.where(table.c.token == token)
    elif email is not None:
        query = query.where(table.c.email == normalise_email(email))
    elif id is not None:
        query = query.where(table.c.id == id)
    else:
        return None
    with store.engine.connect() as connection:
        row = connection.execute(query.limit(1)).first()
    return None if row is None else _to_subscriber(row)
