"""SendGrid events: stored once each (by `sg_event_id`), then acted on.

`bounce` (type `bounce`, a hard bounce; `blocked` is not the address's fault) and `dropped`
for an invalid address make the subscriber `bounced`; `spamreport` makes it `complained`
(kept apart from bounces); `unsubscribe` / `group_unsubscribe` make it `unsubscribed`.
Bounces and complaints also put the address on the suppression list. `delivered`, `open`
and `click` are counted per edition (the `edition_id` we put in `custom_args`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, update

from publisher.store import Store
from publisher.store.models import (
    SubscriberHistoryRow,
    SubscriberRow,
    SuppressionRow,
    WebhookEventRow,
)
from publisher.store.subscribers import normalise_email
from publisher.store.suppression import email_hash, table_of

# which statuses an event may move a subscriber from: a complaint outranks everything, a
# bounce never hides a complaint or an unsubscribe
OUTCOMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bounced": ("bounced", ("active", "pending")),
    "complained": ("complained", ("active", "pending", "unsubscribed", "bounced")),
    "unsubscribed": ("unsubscribed", ("active", "pending")),
}
INVALID_DROP = ("invalid", "bounced address", "unsubscribed address", "spam reporting address")


@dataclass
class EventReport:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    status_changes: int = 0
    problems: list[str] = field(default_factory=list)


def outcome_of(event: dict[str, Any]) -> str | None:
    kind = event.get("event")
    if kind == "bounce":
        return "bounced" if str(event.get("type", "bounce")) == "bounce" else None
    if kind == "dropped":
        reason = str(event.get("reason", "")).lower()
        return "bounced" if any(word in reason for word in INVALID_DROP) else None
    if kind == "spamreport":
        return "complained"
    if kind in ("unsubscribe", "group_unsubscribe"):
        return "unsubscribed"
    return None


def _row(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    edition = event.get("edition_id")
    try:
        edition_id = int(edition) if edition is not None else None
    except (TypeError, ValueError):
        edition_id = None
    stamp = event.get("timestamp")
    occurred = (
        datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, int | float) and stamp > 0 else None
    )
    detail = event.get("reason") or event.get("type") or event.get("response")
    return dict(
        sg_event_id=str(event["sg_event_id"])[:100],
        event=str(event.get("event", ""))[:40],
        email=normalise_email(str(event["email"]))[:320] if event.get("email") else None,
        edition_id=edition_id,
        url=str(event["url"]) if event.get("event") == "click" and event.get("url") else None,
        detail=str(detail)[:500] if detail else None,
        occurred_at=occurred,
        received_at=now,
    )


def record_events(store: Store, events: Sequence[Any], *, now: datetime) -> EventReport:
    """Store new events (duplicates ignored), then apply their outcomes. A malformed event is
    reported and skipped; the rest of the batch goes on."""
    report = EventReport(received=len(events))
    rows: dict[str, dict[str, Any]] = {}
    for index, event in enumerate(events):
        if not isinstance(event, dict) or not event.get("sg_event_id") or not event.get("event"):
            report.problems.append(f"event {index}: no sg_event_id or event; skipped")
            continue
        row = _row(event, now)
        if row["sg_event_id"] in rows:
            report.duplicates += 1
            continue
        rows[row["sg_event_id"]] = row | {"_outcome": outcome_of(event)}
    fresh = _insert_new(store, rows)
    report.stored = len(fresh)
    report.duplicates += len(rows) - len(fresh)
    acting = [row for row in fresh if row["_outcome"] and row["email"]]
    if acting:
        report.status_changes = _apply(store, acting, now)
    return report


def _insert_new(store: Store, rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    table = table_of(WebhookEventRow)
    with store.engine.begin() as connection:
        known: set[str] = set()
        ids = list(rows)
        for start in range(0, len(ids), 500):
            known.update(
                connection.execute(
                    select(table.c.sg_event_id).where(
                        table.c.sg_event_id.in_(ids[start : start + 500])
                    )
                ).scalars()
            )
        fresh = [row for key, row in rows.items() if key not in known]
        if fresh:
            connection.execute(
                insert(table), [{k: v for k, v in r.items() if k != "_outcome"} for r in fresh]
            )
    return fresh


def _apply(store: Store, rows: list[dict[str, Any]], now: datetime) -> int:
    """Suppress bounced and complained addresses and change the subscribers' statuses for a
    whole batch in one transaction (a batch of 1,000 bounces must still be answered fast)."""
    subscribers, history = table_of(SubscriberRow), table_of(SubscriberHistoryRow)
    suppressions = table_of(SuppressionRow)
    changed = 0
    with store.engine.begin() as connection:
        _suppress_all(connection, suppressions, rows, now)
        emails = sorted({row["email"] for row in rows})
        current: dict[str, tuple[int, str]] = {}
        for start in range(0, len(emails), 500):
            query = select(subscribers.c.email, subscribers.c.id, subscribers.c.status).where(
                subscribers.c.email.in_(emails[start : start + 500])
            )
            current.update({r[0]: (r[1], r[2]) for r in connection.execute(query)})
        changes = _changes(rows, current, now)
        for change in changes:
            connection.execute(
                update(subscribers)
                .where(subscribers.c.id == change["subscriber_id"])
                .values(status=change["status"], updated_at=now)
            )
        if changes:
            connection.execute(insert(history), changes)
        changed = len(changes)
    return changed


def _changes(
    rows: list[dict[str, Any]], current: dict[str, tuple[int, str]], now: datetime
) -> list[dict[str, Any]]:
    """History rows of the status changes, in event order: a later event of the batch sees
    the result of an earlier one."""
    changes: list[dict[str, Any]] = []
    for row in rows:
        if row["email"] not in current:
            continue
        subscriber_id, status = current[row["email"]]
        new, allowed = OUTCOMES[row["_outcome"]]
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
