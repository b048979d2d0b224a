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
from datetime import UTC, datetime, timedelta
from typing import Any

from publisher.store import Store
from publisher.store.dashboard import (
    accepted_times,
    event_times,
    recipients_per_event,
    recipients_with_any,
)
from publisher.store.events import StatusMove, apply_outcomes, insert_new
from publisher.store.subscribers import normalise_email

__all__ = [
    "ENGAGEMENT",
    "INVALID_DROP",
    "MAX_BUCKETS",
    "OUTCOMES",
    "TIMELINE_NAMES",
    "EventReport",
    "engagement",
    "event_row",
    "outcome_of",
    "record_events",
    "timeline",
]

# which statuses an event may move a subscriber from: a complaint outranks everything, a
# bounce never hides a complaint or an unsubscribe
OUTCOMES: dict[str, StatusMove] = {
    "bounced": ("bounced", ("active", "pending")),
    "complained": ("complained", ("active", "pending", "unsubscribed", "bounced")),
    "unsubscribed": ("unsubscribed", ("active", "pending")),
}
# which webhook events count as what, per recipient (unique: one address counts once)
ENGAGEMENT: dict[str, tuple[str, ...]] = {
    "delivered": ("delivered",),
    "bounced": ("bounce", "dropped"),
    "complained": ("spamreport",),
    "unsubscribed": ("unsubscribe", "group_unsubscribe"),
    "unique opens": ("open",),
    "unique clicks": ("click",),
}
# over time, every open and click counts (not only a recipient's first)
TIMELINE_NAMES = {"unique opens": "opens", "unique clicks": "clicks"}
MAX_BUCKETS = 72
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


def engagement(store: Store, edition_id: int) -> dict[str, int]:
    """Unique recipients per outcome (ENGAGEMENT) from the webhook events of an edition."""
    per_event = recipients_per_event(store, edition_id)
    out = {}
    for name, events in ENGAGEMENT.items():
        if len(events) == 1:
            out[name] = per_event.get(events[0], 0)
        else:
            out[name] = recipients_with_any(store, edition_id, events)
    return out


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def timeline(store: Store, edition_id: int) -> tuple[list[datetime], dict[str, list[int]]]:
    """Per hour (UTC, from the first to the last, at most MAX_BUCKETS hours; later ones go
    into the last hour): recipients accepted (ledger, by the time their row was last
    written) and the events of each outcome (by when SendGrid says they happened)."""
    stamps: dict[str, list[datetime]] = {"accepted": accepted_times(store, edition_id)}
    names = {e: TIMELINE_NAMES.get(n, n) for n, group in ENGAGEMENT.items() for e in group}
    for name in names.values():
        stamps[name] = []
    for event, at in event_times(store, edition_id):
        if event in names:
            stamps[names[event]].append(at)
    everything = [_hour(t) for times in stamps.values() for t in times]
    if not everything:
        return [], {}
    first = min(everything)
    span = min(int((max(everything) - first).total_seconds() // 3600) + 1, MAX_BUCKETS)
    hours = [first + timedelta(hours=i) for i in range(span)]
    series = {}
    for name, times in stamps.items():
        counts = [0] * span
        for t in times:
            counts[min(int((_hour(t) - first).total_seconds() // 3600), span - 1)] += 1
        series[name] = counts
    return hours, series
