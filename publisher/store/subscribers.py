"""Subscribers: import (upsert) from CSV/JSON, stream in chunks, statuses and tokens.

Statuses: `active`, `unsubscribed`, `bounced`, `complained`. Only `active` subscribers are
ever sent anything. An import never re-activates someone who unsubscribed, bounced or
complained: only the person (through the preferences page) or staff editing the store can.

Topics: a subscriber with an empty topic list follows every campaign; otherwise they follow
campaigns without an `audience` and campaigns whose audience shares a topic with them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import CursorResult, func, insert, select, update

from publisher.config.models import control_characters
from publisher.errors import PublisherError
from publisher.store import Store
from publisher.store.models import SubscriberRow, SuppressionRow
from publisher.support.slug import slugify

STATUSES = ("active", "unsubscribed", "bounced", "complained")
CHUNK = 1000
MAX_NAME = 200  # characters; a display name, not a paragraph
MAX_FILE = 200 * 1024 * 1024  # bytes: a subscriber file bigger than this is a mistake


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
    suppressed: int = 0  # new rows for an address that was erased or must never be mailed
    problems: list[str] = field(default_factory=list)


def email_hash(email: str) -> str:
    """What a suppression entry keeps of an address (see store/suppression.py)."""
    return hashlib.sha256(normalise_email(email).encode("utf-8")).hexdigest()


def new_token() -> str:
    """Unguessable, URL-safe: it is the only credential of the unsubscribe link."""
    return secrets.token_urlsafe(24)


def normalise_email(raw: str) -> str:
    """The address as stored and compared: email-validator's reading (syntax only, no
    DNS), lower-cased. Internationalised addresses (a non-ASCII local part) are refused:
    they need SMTPUTF8 end to end and not every backend has it; a non-ASCII domain is kept
    in its ASCII (IDNA) form, which every backend can send to. ValueError says why."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"invalid email address {raw.strip()!r}: {exc}") from None
    return (result.ascii_email or result.normalized).lower()


@lru_cache(maxsize=4096)
def topic_slug(topic: str) -> str:
    """Subscriber topics are slugs like item topics and audiences ('Workers Rights' ->
    'workers-rights'); cached, since the same few topics recur for every subscriber."""
    return slugify(topic)


def follows(subscriber_topics: Sequence[str], audience: Sequence[str]) -> bool:
    """A campaign without audience reaches everyone; no topic list means 'everything'.
    Audiences are slugs (config); stored topics are slugged again in case an older import
    kept them as written."""
    if not audience or not subscriber_topics:
        return True
    return not set(audience).isdisjoint(topic_slug(t) for t in subscriber_topics)


# --- reading files ------------------------------------------------------------------------


def _text(value: object, what: str) -> str:
    """A text cell; JSON may hold anything there (a number is accepted, a list is not)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"'{what}' must be text, got {type(value).__name__}")
    return str(value)


def _split_topics(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        parts = [_text(p, "topics") for p in value]
    else:
        parts = re.split(r"[;|,]", _text(value, "topics"))
    return tuple(sorted({slug for p in parts if (slug := topic_slug(p))}))


def _clean_name(value: object) -> str | None:
    """A display name goes into the To header: a control character (CR/LF would start a
    header of its own) makes the row a problem, reported and skipped, never cleaned up."""
    name = _text(value, "name").strip()
    bad = control_characters(name)
    if bad:
        raise ValueError(f"name contains control characters ({', '.join(bad)})")
    if len(name) > MAX_NAME:
        raise ValueError(f"name is longer than {MAX_NAME} characters")
    return name or None


def _parse_row(data: dict[str, Any], where: str) -> SubscriberInput:
    try:
        email = normalise_email(_text(data.get("email"), "email"))
        status = _text(data.get("status"), "status").strip().lower() or None
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r} (allowed: {', '.join(STATUSES)})")
        return SubscriberInput(
            email, _clean_name(data.get("name")), _split_topics(data.get("topics")), status
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _json_records(path: Path, text: str) -> list[tuple[str, object]]:
    """A JSON list of objects, or {"subscribers": [...]}; any other shape is an error."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubscriberFileError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise SubscriberFileError(f"{path}: invalid JSON: nested too deeply") from None
    records = data.get("subscribers") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise SubscriberFileError(
            f'{path}: expected a list of subscribers or {{"subscribers": [...]}}, '
            f"got {type(records).__name__ if records is not None else 'null'}"
        )
    return [(f"{path}: entry {i + 1}", r) for i, r in enumerate(records)]


def _csv_records(path: Path, text: str) -> list[tuple[str, object]]:
    """Rows with the line each starts on. Records are split on line breaks only as CSV
    does (a quoted name may hold one: the row is then reported, not glued together)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fieldnames = reader.fieldnames
        if not fieldnames or "email" not in fieldnames:
            raise SubscriberFileError(f"{path}:1: the CSV header needs an 'email' column")
        records: list[tuple[str, object]] = []
        start = reader.line_num + 1
        for record in reader:
            records.append((f"{path}:{start}", record))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise SubscriberFileError(f"{path}:{reader.line_num}: invalid CSV: {exc}") from None
    return records


def read_subscriber_file(path: Path) -> tuple[list[SubscriberInput], list[str]]:
    """Rows of a CSV (header: email,name,topics[,status]) or JSON list; problems per row."""
    try:
        if path.stat().st_size > MAX_FILE:
            raise SubscriberFileError(f"{path}: larger than {MAX_FILE // 2**20} MB")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriberFileError(f"{path}: cannot read subscribers: {exc}") from None
    if path.suffix.lower() == ".json":
        numbered = _json_records(path, text)
    else:
        numbered = _csv_records(path, text)
    rows, problems, seen = [], [], set()
    for where, record in numbered:
        try:
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected an object with 'email'")
            if None in record:  # csv.DictReader puts extra cells under the key None
                raise ValueError(f"{where}: more cells than the header has columns")
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
        hashes = {email_hash(c.email): c.email for c in chunk if c.email not in existing}
        suppressed = {
            hashes[digest]
            for digest in session.scalars(
                select(SuppressionRow.email_hash).where(SuppressionRow.email_hash.in_(hashes))
            )
        }
        new_rows = []
        for row in chunk:
            old = existing.get(row.email)
            if old is None and row.email in suppressed:
                report.suppressed += 1  # an import never re-adds someone who was erased
                continue
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
        assert isinstance(result, CursorResult)  # an UPDATE always gives a cursor result
        return result.rowcount > 0


# --- reading ------------------------------------------------------------------------------


_COLUMNS = (
    SubscriberRow.id,
    SubscriberRow.email,
    SubscriberRow.name,
    SubscriberRow.topics,
    SubscriberRow.status,
    SubscriberRow.token,
)


def _to_subscriber(row: Any) -> Subscriber:
    return Subscriber(row.id, row.email, row.name, tuple(row.topics or ()), row.status, row.token)


def iter_subscribers(
    store: Store, *, status: str | None = None, after_id: int = 0, chunk: int = CHUNK
) -> Iterator[Subscriber]:
    """Every subscriber by id, fetched in chunks (keyset pagination, never the whole list)."""
    while True:
        query = select(*_COLUMNS).where(SubscriberRow.id > after_id)
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


def subscriber_at(store: Store, email: str) -> Subscriber | None:
    """The subscriber stored under exactly this address (not validated or normalised: a
    test send's address need not be one a subscriber could have)."""
    query = select(*_COLUMNS).where(SubscriberRow.email == email).limit(1)
    with store.session() as session:
        row = session.execute(query).first()
    return None if row is None else _to_subscriber(row)
