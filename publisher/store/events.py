"""Webhook events in the store: each stored once (by `sg_event_id`) and their outcomes
applied, in one transaction per batch, and counted per edition. What an event means (which
outcome, which status moves are allowed) is publisher.subscribers.events; the rows given
here are that module's (dicts of webhook_events columns, plus `_outcome`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, update

from publisher.store import Store, outbox
from publisher.store.models import (
    SubscriberHistoryRow,
    SubscriberRow,
    SuppressionRow,
    WebhookEventRow,
)
from publisher.store.suppression import email_hash, table_of

__all__ = [
    "Recorded",
    "StatusMove",
    "count_stored",
    "edition_clicks",
    "edition_counts",
    "record",
]

# an outcome -> (the status it gives, the statuses it may move a subscriber from)
StatusMove = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class Recorded:
    """What `record` did: the rows not stored before (in order) and the status changes."""

    stored: list[dict[str, Any]]
    status_changes: int


def record(
    store: Store, rows: dict[str, dict[str, Any]], moves: dict[str, StatusMove], *, now: datetime
) -> Recorded:
    """Store the rows (by sg_event_id) not stored before, then suppress bounced and
    complained addresses and change the subscribers' statuses (by `moves`, per `_outcome`)
    for those with an outcome and an email, all in one transaction. Together, because a
    failure between the two would leave the events stored and SendGrid's retry would find
    them duplicates: their outcomes never applied. A batch of 1,000 bounces must still be
    answered fast, hence one transaction, not one per event."""
    if not rows:
        return Recorded([], 0)
    with store.engine.begin() as connection:
        fresh = _insert_new(connection, rows)
        acting = [row for row in fresh if row["_outcome"] and row["email"]]
        changed = _apply_outcomes(connection, acting, moves, now) if acting else 0
    return Recorded(fresh, changed)


def _insert_new(connection: Connection, rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    table = table_of(WebhookEventRow)
    known: set[str] = set()
    ids = list(rows)
    for start in range(0, len(ids), 500):
        known.update(
            connection.execute(
                select(table.c.sg_event_id).where(table.c.sg_event_id.in_(ids[start : start + 500]))
            ).scalars()
        )
    fresh = [row for key, row in rows.items() if key not in known]
    if fresh:
        connection.execute(
            insert(table), [{k: v for k, v in r.items() if k != "_outcome"} for r in fresh]
        )
    return fresh


def _apply_outcomes(
    connection: Connection,
    rows: list[dict[str, Any]],
    moves: dict[str, StatusMove],
    now: datetime,
) -> int:
    subscribers, history = table_of(SubscriberRow), table_of(SubscriberHistoryRow)
    _suppress_all(connection, table_of(SuppressionRow), rows, now)
    emails = sorted({row["email"] for row in rows})
    current: dict[str, tuple[int, str]] = {}
    for start in range(0, len(emails), 500):
        query = select(subscribers.c.email, subscribers.c.id, subscribers.c.status).where(
            subscribers.c.email.in_(emails[start : start + 500])
        )
        current.update({r[0]: (r[1], r[2]) for r in connection.execute(query)})
    changes = _changes(rows, current, moves, now)
    for change in changes:
        connection.execute(
            update(subscribers)
            .where(subscribers.c.id == change["subscriber_id"])
            .values(status=change["status"], updated_at=now)
        )
    if changes:
        connection.execute(insert(history), changes)
    address = {subscriber_id: email for email, (subscriber_id, _) in current.items()}
    for change in changes:  # in event order, in this same transaction
        outbox.subscriber_event(
            connection,
            change["subscriber_id"],
            change["status"],
            now,
            email=address.get(change["subscriber_id"]),
            via="webhook",
        )
    return len(changes)


def _changes(
    rows: list[dict[str, Any]],
    current: dict[str, tuple[int, str]],
    moves: dict[str, StatusMove],
    now: datetime,
) -> list[dict[str, Any]]:
    """History rows of the status changes, in event order: a later event of the batch sees
    the result of an earlier one."""
    changes: list[dict[str, Any]] = []
    for row in rows:
        if row["email"] not in current:
            continue
        subscriber_id, status = current[row["email"]]
        new, allowed = moves[row["_outcome"]]
        if status == new or status not in allowed:
            continue
        current[row["email"]] = (subscriber_id, new)
        detail = f"sendgrid {row['event']}" + (f": {row['detail']}" if row["detail"] else "")
        changes.append(
            dict(
                subscriber_id=subscriber_id,
                at=now,
                action=row["event"],
                via="webhook",
                status=new,
                form=detail[:200],
            )
        )
    return changes


def _suppress_all(
    connection: Connection, table: Table, rows: list[dict[str, Any]], now: datetime
) -> None:
    wanted: dict[str, str] = {}
    for row in rows:
        if row["_outcome"] in ("bounced", "complained"):
            digest = email_hash(row["email"])
            if wanted.get(digest) != "complained":  # a complaint outranks a bounce
                wanted[digest] = row["_outcome"]
    if not wanted:
        return
    digests = list(wanted)
    existing: dict[str, str] = {}
    for start in range(0, len(digests), 500):
        query = select(table.c.email_hash, table.c.reason).where(
            table.c.email_hash.in_(digests[start : start + 500])
        )
        existing.update({r[0]: r[1] for r in connection.execute(query)})
    new = [
        dict(email_hash=d, reason=reason, source="sendgrid", created_at=now)
        for d, reason in wanted.items()
        if d not in existing
    ]
    if new:
        connection.execute(insert(table), new)
    for digest, reason in wanted.items():
        if reason == "complained" and existing.get(digest) == "bounced":
            connection.execute(
                update(table).where(table.c.email_hash == digest).values(reason="complained")
            )


def edition_counts(store: Store, edition_id: int) -> dict[str, int]:
    """delivered / open / click / bounce ... events per edition."""
    with store.session() as session:
        rows = session.execute(
            select(WebhookEventRow.event, func.count())
            .where(WebhookEventRow.edition_id == edition_id)
            .group_by(WebhookEventRow.event)
        ).all()
    return {event: count for event, count in rows}


def edition_clicks(store: Store, edition_id: int) -> dict[str, int]:
    """Clicks per URL of an edition."""
    with store.session() as session:
        rows = session.execute(
            select(WebhookEventRow.url, func.count())
            .where(WebhookEventRow.edition_id == edition_id, WebhookEventRow.event == "click")
            .group_by(WebhookEventRow.url)
        ).all()
    return {url: count for url, count in rows if url}


def count_stored(store: Store) -> int:
    """Webhook events stored, of every edition (a benchmark checks nothing was lost)."""
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(WebhookEventRow)) or 0
