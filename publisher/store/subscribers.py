"""Subscribers: import (upsert) rows read by publisher.subscribers.files, stream in chunks,
statuses and tokens.

Statuses: `active`, `unsubscribed`, `bounced`, `complained`. Only `active` subscribers are
ever sent anything. An import never re-activates someone who unsubscribed, bounced or
complained: only the person (through the preferences page) or staff editing the store can.

Topics: a subscriber with an empty topic list follows every campaign; otherwise they follow
campaigns without an `audience` and campaigns whose audience shares a topic with them. How
many a send would reach is counted in audience_counts.py.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from publisher.store import Store, dialect
from publisher.store.addresses import quick_reading
from publisher.store.models import SubscriberRow, SuppressionRow
from publisher.support.slug import legacy_slug, slugify

__all__ = [
    "CHUNK",
    "PENDING",
    "STATUSES",
    "ImportReport",
    "Subscriber",
    "SubscriberInput",
    "count_by_status",
    "email_hash",
    "find_subscriber",
    "follows",
    "import_subscribers",
    "iter_audience",
    "iter_subscribers",
    "new_token",
    "normalise_email",
    "set_status",
    "stored_email_hash",
    "subscriber_at",
    "topic_slug",
]

STATUSES = ("active", "unsubscribed", "bounced", "complained")
CHUNK = 1000


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
    ref: str | None = None  # opaque: what confirmation links name (never the id)


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
    return _digest(normalise_email(email))


def _digest(address: str) -> str:
    """email_hash of an address normalise_email gave already."""
    return hashlib.sha256(address.encode("utf-8")).hexdigest()


def stored_email_hash(address: str) -> str:
    """email_hash of an address as stored, without a validator call for one already
    normalised: every writer stores normalise_email's output (sign-up and confirmation,
    the subscriber file and staged imports, the roster), so a send checking each follower
    against the suppression list hashes the address as it is. A row that does not look
    normalised (upper case, spaces, non-ASCII: written before that rule, or directly) is
    normalised first; one normalise_email refuses is hashed as it is (it matches nothing)."""
    if address.isascii() and address == address.strip().lower():
        return _digest(address)
    try:
        return email_hash(address)
    except ValueError:
        return _digest(address)


def new_token() -> str:
    """Unguessable, URL-safe: it is the only credential of the unsubscribe link."""
    return secrets.token_urlsafe(24)


@lru_cache(maxsize=4096)  # pure; the API's create asks for one address several times
def normalise_email(raw: str) -> str:
    """The address as stored and compared: email-validator's reading (syntax only, no
    DNS), lower-cased. Internationalised addresses (a non-ASCII local part) are refused:
    they need SMTPUTF8 end to end and not every backend has it; a non-ASCII domain is kept
    in its ASCII (IDNA) form, which every backend can send to. ValueError says why."""
    quick = quick_reading(raw.strip())  # the same reading, its domain's remembered
    if quick is not None:
        return quick.lower()
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
    kept them as written. A topic stored as an earlier version slugged it (combining marks
    as separators: 'आरथ-क-नय-य') still follows its audience, so nobody loses a choice; where
    that old slug merged two words (दिन, दान), it follows both."""
    if not audience or not subscriber_topics:
        return True
    chosen = {topic_slug(t) for t in subscriber_topics}
    return any(a in chosen or legacy_slug(a) in chosen for a in audience)


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
        existing, suppressed = _known(session, chunk)
        new_rows = []
        for row in chunk:
            old = existing.get(row.email)
            if old is None and row.email in suppressed:
                report.suppressed += 1  # an import never re-adds someone who was erased
            elif old is None:
                new_rows.append(_new_row(row, now))
            else:
                _update(session, old, row, now, report)
        if new_rows:
            session.execute(insert(SubscriberRow), new_rows)
            report.inserted += len(new_rows)


def _known(session: Session, chunk: list[SubscriberInput]) -> tuple[dict[str, Any], set[str]]:
    """The chunk's stored subscribers by address, and which of its new addresses are on the
    suppression list."""
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
    # rows carry normalised addresses (the lookup above relies on it too): hashing them as
    # they are spares a second email-validator pass, most of a large import's time
    hashes = {_digest(c.email): c.email for c in chunk if c.email not in existing}
    suppressed = {
        hashes[digest]
        for digest in session.scalars(
            select(SuppressionRow.email_hash).where(SuppressionRow.email_hash.in_(hashes))
        )
    }
    return existing, suppressed


def _new_row(row: SubscriberInput, now: datetime) -> dict[str, Any]:
    return dict(
        email=row.email,
        email_hash=stored_email_hash(row.email),
        name=row.name,
        topics=list(row.topics),
        status=row.status or "active",
        token=new_token(),
        created_at=now,
        updated_at=now,
    )


def _update(
    session: Session, old: Any, row: SubscriberInput, now: datetime, report: ImportReport
) -> None:
    """A row over a stored subscriber: a status other than `active` is taken, `active` never
    re-activates anyone (only counted); a row that changes nothing is not written."""
    status = old.status
    if row.status and row.status != "active":
        status = row.status
    elif row.status == "active" and old.status != "active":
        report.kept_inactive += 1
    if (old.name, list(old.topics or []), old.status) == (row.name, list(row.topics), status):
        report.unchanged += 1
        return
    session.execute(
        update(SubscriberRow)
        .where(SubscriberRow.id == old.id)
        .values(name=row.name, topics=list(row.topics), status=status, updated_at=now)
    )
    report.updated += 1


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
        return dialect.rowcount(result) > 0


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
    topics, ref = tuple(row.topics or ()), getattr(row, "ref", None)
    return Subscriber(row.id, row.email, row.name, topics, row.status, row.token, ref)


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


def count_by_status(store: Store) -> dict[str, int]:
    with store.session() as session:
        rows = session.execute(
            select(SubscriberRow.status, func.count()).group_by(SubscriberRow.status)
        ).all()
    return {status: count for status, count in rows}


# --- the subscriber web (issue 11): lookups; status changes: store/consent.py -----------

PENDING = "pending"  # signed up, confirmation not yet clicked: receives nothing


def find_subscriber(
    store: Store,
    *,
    token: str | None = None,
    email: str | None = None,
    id: int | None = None,
    ref: str | None = None,
) -> Subscriber | None:
    """One subscriber by token, address (normalised here), id or opaque reference; None if
    unknown. (Core, not the ORM: the unsubscribe endpoint calls it for every request.)"""
    table = SubscriberRow.__table__
    query = select(table.c.id, table.c.email, table.c.name, table.c.topics, table.c.status)
    query = query.add_columns(table.c.token, table.c.ref)
    if token is not None:
        query = query.where(table.c.token == token)
    elif ref is not None:
        query = query.where(table.c.ref == ref)
    elif email is not None:
        query = query.where(table.c.email == normalise_email(email))
    elif id is not None:
        query = query.where(table.c.id == id)
    else:
        return None
    with store.engine.connect() as connection:
        row = connection.execute(query.limit(1)).first()
    return None if row is None else _to_subscriber(row)


# built once: building a statement costs more than running it (the API's creates)
_AT = select(*_COLUMNS, SubscriberRow.ref).where(SubscriberRow.email == bindparam("email")).limit(1)


def subscriber_at(store: Store, email: str) -> Subscriber | None:
    """The subscriber stored under exactly this address (not validated or normalised: a
    test send's address need not be one a subscriber could have)."""
    with store.engine.connect() as connection:  # Core: the API's creates call it a lot
        row = connection.execute(_AT, {"email": email}).first()
    return None if row is None else _to_subscriber(row)
