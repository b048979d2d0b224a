"""What SendGrid's events mean: stored once each (by `sg_event_id`), then acted on.

`bounce` (type `bounce`, a hard bounce; `blocked` is not the address's fault) and `dropped`
for an invalid address make the subscriber `bounced`; `spamreport` makes it `complained`
(kept apart from bounces); `unsubscribe` / `group_unsubscribe` make it `unsubscribed`.
Bounces and complaints also put the address on the suppression list. `delivered`, `open`
and `click` are counted per edition (the `edition_id` we put in `custom_args`). Storing and
applying them is publisher.store.events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from publisher.store import Store
from publisher.store.events import StatusMove, apply_outcomes, insert_new
from publisher.store.subscribers import normalise_email

__all__ = ["INVALID_DROP", "OUTCOMES", "EventReport", "event_row", "outcome_of", "record_events"]

# which statuses an event may move a subscriber from: a complaint outranks everything, a
# bounce never hides a complaint or an unsubscribe
OUTCOMES: dict[str, StatusMove] = {
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


def event_row(event: dict[str, Any], now: datetime) -> dict[str, Any]:
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
        row = event_row(event, now)
        if row["sg_event_id"] in rows:
            report.duplicates += 1
            continue
        rows[row["sg_event_id"]] = row | {"_outcome": outcome_of(event)}
    fresh = insert_new(store, rows)
    report.stored = len(fresh)
    report.duplicates += len(rows) - len(fresh)
    acting = [row for row in fresh if row["_outcome"] and row["email"]]
    if acting:
        report.status_changes = apply_outcomes(store, acting, OUTCOMES, now=now)
    return report
