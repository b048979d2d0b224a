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
from typing import Any, cast

from sqlalchemy import Table, func, insert, select

from publisher.store import Store
from publisher.store.consent import Context, set_subscriber_status
from publisher.store.models import SubscriberRow, WebhookEventRow
from publisher.store.subscribers import normalise_email
from publisher.store.suppression import suppress

WEBHOOK = Context(via="webhook")
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
    for row in fresh:
        if row["_outcome"] and row["email"]:
            report.status_changes += _apply(store, row["email"], row["_outcome"], row, now)
    return report


def _insert_new(store: Store, rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    table = cast(Table, WebhookEventRow.__table__)
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


def _apply(store: Store, email: str, outcome: str, row: dict[str, Any], now: datetime) -> int:
    status, allowed = OUTCOMES[outcome]
    if outcome in ("bounced", "complained"):
        suppress(store, email, reason=outcome, source="sendgrid", now=now)
    with store.session() as session:
        subscriber_id = session.scalar(select(SubscriberRow.id).where(SubscriberRow.email == email))
    if subscriber_id is None:
        return 0
    detail = f"sendgrid {row['event']}" + (f": {row['detail']}" if row["detail"] else "")
    ctx = Context(via="webhook", form=detail[:200])
    changed = set_subscriber_status(
        store, subscriber_id, status, action=row["event"], ctx=ctx, now=now, only_from=allowed
    )
    return int(changed)


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
