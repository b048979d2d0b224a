"""Subscriber status changes and their history in the store: the transactions through
which the web, the webhook and the CLI change who receives what. Every change writes a
history row (when, how, from where). Which change a request means (unsubscribe, confirm,
erase...) is publisher.subscribers.consent.

Statuses: `pending` (signed up, not confirmed), `active`, `unsubscribed`, `bounced`,
`complained`; a pause (`subscriber_pauses`) holds an active subscriber back until a date.
What is on record about a person is read through publisher.store.subscriber_record.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Table, bindparam, delete, insert, text, update
from sqlalchemy.orm import Session

from publisher.store import Store, dialect, outbox
from publisher.store.models import (
    SubscriberHistoryRow,
    SubscriberPauseRow,
    SubscriberRow,
    UTCDateTime,
    WebhookEventRow,
)
from publisher.store.subscribers import PENDING, Subscriber, new_token, stored_email_hash

__all__ = [
    "CLI",
    "Context",
    "add_active",
    "add_pending",
    "clear_pause",
    "erase_personal_data",
    "pause",
    "record_history",
    "renew_pending",
    "set_subscriber_status",
    "unsubscribe_token",
    "update_preferences",
]


@dataclass(frozen=True)
class Context:
    """Where a change came from: recorded with it."""

    via: str  # web, one-click, webhook, cli
    ip: str | None = None
    user_agent: str | None = None
    form: str | None = None
    consent_text: str | None = None


CLI = Context(via="cli")


def _history_row(
    subscriber_id: int,
    action: str,
    ctx: Context,
    now: datetime,
    status: str | None,
    detail: str | None = None,
) -> dict[str, Any]:
    return dict(
        subscriber_id=subscriber_id,
        at=now,
        action=action,
        via=ctx.via,
        status=status,
        ip=ctx.ip,
        user_agent=(ctx.user_agent or "")[:500] or None,
        form=ctx.form,
        consent_text=ctx.consent_text,
        detail=detail,
    )


def _record(
    session: Session,
    subscriber_id: int,
    action: str,
    ctx: Context,
    now: datetime,
    status: str | None,
    detail: str | None = None,
) -> None:
    session.add(
        SubscriberHistoryRow(**_history_row(subscriber_id, action, ctx, now, status, detail))
    )


def set_subscriber_status(
    store: Store,
    subscriber_id: int,
    status: str,
    *,
    action: str,
    ctx: Context,
    now: datetime,
    only_from: Sequence[str] | None = None,
    rotate: bool = False,
) -> bool:
    """Change a status (idempotent: the same status again changes nothing and records
    nothing). `only_from`: change only from these statuses. `rotate`: the subscriber gets a
    new token with the change (the old one becomes `retired_token`), so links in earlier
    emails (and forwarded copies) stop working. True if it changed. One transaction in
    SQLAlchemy Core: one-click unsubscribes and webhook batches run it a lot."""
    table = cast(Table, SubscriberRow.__table__)
    query = update(table).where(table.c.id == subscriber_id, table.c.status != status)
    if only_from is not None:
        query = query.where(table.c.status.in_(list(only_from)))
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if rotate:
        values |= {"retired_token": table.c.token, "token": new_token()}
    with store.engine.begin() as connection:
        returned = connection.execute(query.values(**values).returning(table.c.email)).first()
        changed = returned is not None
        if returned is not None:
            connection.execute(
                insert(SubscriberHistoryRow),
                [_history_row(subscriber_id, action, ctx, now, status)],
            )
            # in the same transaction: reported if and only if it happened
            outbox.subscriber_event(
                connection, subscriber_id, status, now, email=returned[0], via=ctx.via
            )
    # A pause row may outlive an unsubscribe: only active subscribers are ever held back or
    # shown as paused, and activating clears it.
    return changed


# The one-click path as plain text statements: compiled once, no expression building per
# request (SQLAlchemy's statement overhead was most of an unsubscribe's cost).
_BY_TOKEN = text(
    "SELECT id, email, name, topics, status, token FROM subscribers WHERE token = :token"
).columns(topics=JSON)
_BY_RETIRED = text(
    "SELECT id, email, name, topics, status FROM subscribers WHERE retired_token = :token"
).columns(topics=JSON)
_UNSUBSCRIBE = text(
    "UPDATE subscribers SET status = 'unsubscribed', updated_at = :now, "
    "retired_token = token, token = :new WHERE id = :id AND status IN ('active', 'pending')"
).bindparams(bindparam("now", type_=UTCDateTime()))
_HISTORY = text(
    "INSERT INTO subscriber_history (subscriber_id, at, action, via, status, ip, user_agent) "
    "VALUES (:id, :now, 'unsubscribe', :via, 'unsubscribed', :ip, :user_agent)"
).bindparams(bindparam("now", type_=UTCDateTime()))


def unsubscribe_token(
    store: Store, token: str, *, ctx: Context, now: datetime
) -> Subscriber | None:
    """The one-click path: look the token up and unsubscribe in one transaction, rotating
    the token. Returns the subscriber with their new token, or None for an unknown token. A
    token retired by an earlier unsubscribe answers again (RFC 8058 wants the repeat to work)
    but changes nothing and comes back with an empty token: it opens nothing else."""
    with store.engine.begin() as connection:
        row = connection.execute(_BY_TOKEN, {"token": token}).first()
        if row is None:
            old = connection.execute(_BY_RETIRED, {"token": token}).first()
            if old is None or old.status in ("active", PENDING):
                return None  # a retired token never unsubscribes someone who came back
            return Subscriber(old.id, old.email, old.name, tuple(old.topics or ()), old.status, "")
        if row.email.endswith("@erased.invalid"):
            return None
        current = row.token
        if row.status in ("active", PENDING):
            current = new_token()
            values = {"now": now, "id": row.id, "new": current}
            if dialect.rowcount(connection.execute(_UNSUBSCRIBE, values)):
                agent = (ctx.user_agent or "")[:500] or None
                values = {"id": row.id, "now": now, "via": ctx.via, "ip": ctx.ip}
                connection.execute(_HISTORY, values | {"user_agent": agent})
                outbox.subscriber_event(
                    connection, row.id, "unsubscribed", now, email=row.email, via=ctx.via
                )
            else:
                current = row.token
    status = "unsubscribed" if current != row.token else row.status
    return Subscriber(row.id, row.email, row.name, tuple(row.topics or ()), status, current)


def clear_pause(store: Store, subscriber_id: int) -> None:
    """Drop a subscriber's pause, without a history row (activating does this)."""
    with store.session() as session:
        session.execute(
            delete(SubscriberPauseRow).where(SubscriberPauseRow.subscriber_id == subscriber_id)
        )


def add_pending(
    store: Store,
    address: str,
    *,
    name: str | None,
    topics: Sequence[str],
    ctx: Context,
    now: datetime,
) -> Subscriber:
    """A new subscriber, `pending` until they confirm, with the sign-up in their history.
    `address` as normalise_email gives it."""
    with store.session() as session:
        row = SubscriberRow(
            email=address,
            email_hash=stored_email_hash(address),
            name=name,
            topics=sorted(set(topics)),
            status=PENDING,
            token=new_token(),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        _record(session, row.id, "signup", ctx, now, PENDING)
        return _subscriber(row)


# built once: the API's creates run them a lot (no expression building per call)
_SUBSCRIBERS = cast(Table, SubscriberRow.__table__)
_ADD = insert(_SUBSCRIBERS).returning(_SUBSCRIBERS.c.id)
_ADD_HISTORY = insert(cast(Table, SubscriberHistoryRow.__table__))


def add_active(
    store: Store,
    address: str,
    *,
    name: str | None,
    topics: Sequence[str],
    ctx: Context,
    now: datetime,
    action: str = "added",
) -> Subscriber:
    """A new subscriber active at once, as add_pending then activating with `action` would
    leave them (the sign-up and the activation in their history, the status event in the
    webhook outbox), in one transaction of plain statements: the API's bulk path runs it.
    `address` as normalise_email gives it; IntegrityError if it is already stored."""
    kept, token, ref = sorted(set(topics)), new_token(), secrets.token_urlsafe(12)
    values: dict[str, Any] = {
        "email": address,
        "email_hash": stored_email_hash(address),
        "name": name,
        "topics": kept,
        "status": "active",
        "token": token,
        "created_at": now,
        "updated_at": now,
        "ref": ref,
        "retired_token": None,
        "status_reason": None,
    }
    history = [
        _history_row(0, "signup", ctx, now, PENDING),
        _history_row(0, action, ctx, now, "active"),
    ]
    with store.engine.begin() as connection:
        subscriber_id = int(connection.execute(_ADD, values).scalar_one())
        for row in history:
            row["subscriber_id"] = subscriber_id
        connection.execute(_ADD_HISTORY, history)
        outbox.subscriber_event(
            connection, subscriber_id, "active", now, email=address, via=ctx.via
        )
    return Subscriber(subscriber_id, address, name, tuple(kept), "active", token, ref)


def renew_pending(
    store: Store,
    subscriber_id: int,
    *,
    name: str | None,
    topics: Sequence[str],
    ctx: Context,
    now: datetime,
) -> Subscriber | None:
    """A `pending` subscriber signs up again: the newest request's topics (and name, if
    given) replace the older one's, recorded as a sign-up (neither is confirmed yet). None,
    and nothing changed, if they are no longer `pending`."""
    with store.session() as session:
        row = session.get(SubscriberRow, subscriber_id)
        if row is None or row.status != PENDING:
            return None
        row.updated_at = now
        row.name, row.topics = name or row.name, sorted(set(topics))
        _record(session, row.id, "signup", ctx, now, PENDING, "again while pending")
        return _subscriber(row)


def record_history(
    store: Store,
    subscriber_id: int,
    action: str,
    *,
    ctx: Context,
    now: datetime,
    status: str | None,
    detail: str | None = None,
) -> None:
    """A history row only (a request that changed nothing is recorded too)."""
    with store.session() as session:
        _record(session, subscriber_id, action, ctx, now, status, detail)


def _subscriber(row: SubscriberRow) -> Subscriber:
    topics = tuple(row.topics or ())
    return Subscriber(row.id, row.email, row.name, topics, row.status, row.token, row.ref)


def update_preferences(
    store: Store,
    subscriber_id: int,
    *,
    name: str | None,
    topics: Sequence[str],
    ctx: Context,
    now: datetime,
) -> None:
    with store.session() as session:
        session.execute(
            update(SubscriberRow)
            .where(SubscriberRow.id == subscriber_id)
            .values(name=name, topics=sorted(set(topics)), updated_at=now)
        )
        detail = f"topics: {', '.join(sorted(set(topics))) or '(all)'}"
        _record(session, subscriber_id, "preferences", ctx, now, None, detail)


def pause(
    store: Store, subscriber_id: int, until: datetime | None, *, ctx: Context, now: datetime
) -> None:
    """Hold an active subscriber back until a date (None: resume now)."""
    with store.session() as session:
        session.execute(
            delete(SubscriberPauseRow).where(SubscriberPauseRow.subscriber_id == subscriber_id)
        )
        if until is not None:
            session.add(SubscriberPauseRow(subscriber_id=subscriber_id, until=until))
        detail = f"until {until.date().isoformat()}" if until else "resumed"
        _record(session, subscriber_id, "pause", ctx, now, None, detail)


def erase_personal_data(store: Store, subscriber: Subscriber, *, now: datetime) -> None:
    """One transaction: the person's events, history and pause go, and the row is
    anonymised (kept only because the delivery ledger points at it)."""
    placeholder = f"erased-{subscriber.id}-{secrets.token_hex(4)}@erased.invalid"
    with store.session() as session:
        session.execute(delete(WebhookEventRow).where(WebhookEventRow.email == subscriber.email))
        session.execute(
            delete(SubscriberHistoryRow).where(SubscriberHistoryRow.subscriber_id == subscriber.id)
        )
        session.execute(
            delete(SubscriberPauseRow).where(SubscriberPauseRow.subscriber_id == subscriber.id)
        )
        session.execute(
            update(SubscriberRow)
            .where(SubscriberRow.id == subscriber.id)
            .values(
                email=placeholder,
                email_hash=stored_email_hash(placeholder),  # the erased address's no more
                name=None,
                topics=[],
                status="unsubscribed",
                token=new_token(),
                retired_token=None,
                ref=secrets.token_urlsafe(12),
                updated_at=now,
            )
        )
        # the address is gone: the event names the person by id only
        data = {"subscriber": {"id": subscriber.id, "email": None, "status": "erased"}}
        outbox.enqueue(
            session, "subscriber.erased", data, now, ordering_key=f"subscriber:{subscriber.id}"
        )
