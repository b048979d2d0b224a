"""What SendGrid's events mean: stored once each (by `sg_event_id`), then acted on.

`bounce` (type `bounce`, a hard bounce; `blocked` is not the address's fault) and `dropped`
for an invalid address make the subscriber `bounced`; `spamreport` makes it `complained`
(kept apart from bounces); `unsubscribe` / `group_unsubscribe` make it `unsubscribed`.
Bounces and complaints also put the address on the suppression list. `delivered`, `open`
and `click` are counted per edition (the `edition_id` we put in `custom_args`). Storing and
applying them is publisher.store.events.

Each event is validated on its own (`WebhookEvent`): one that cannot be stored as it is (an
address we refuse, a timestamp or `edition_id` out of range, a NUL character) is skipped with
the reason, and the rest of the batch is stored and applied together. One odd event must
never fail a batch: SendGrid would retry it for 24 hours and then drop the unsubscribes and
complaints beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from publisher.store import Store
from publisher.store.dashboard import (
    accepted_per_hour,
    activity_span,
    events_per_hour,
    recipients_per_group,
)
from publisher.store.events import StatusMove, record
from publisher.store.subscribers import normalise_email

__all__ = [
    "ENGAGEMENT",
    "INVALID_DROP",
    "MAX_BUCKETS",
    "OUTCOMES",
    "TIMELINE_NAMES",
    "EventReport",
    "WebhookEvent",
    "engagement",
    "event_row",
    "outcome_of",
    "read_event",
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


# the webhook_events column is a 32-bit INTEGER on PostgreSQL; our edition ids are far below
MAX_EDITION_ID = 2**31 - 1
# SendGrid's timestamps are Unix seconds of events that happened: later than 2200 is garbage
LATEST_TIMESTAMP = datetime(2200, 1, 1, tzinfo=UTC).timestamp()


@dataclass
class EventReport:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0  # events that could not be read: each has its problem
    status_changes: int = 0
    problems: list[str] = field(default_factory=list)


class WebhookEvent(BaseModel):
    """One SendGrid event as it is stored. Unknown keys are allowed and ignored: SendGrid
    sends many more fields (ip, useragent, category...) and adds new ones without notice,
    and our own custom_args come back as top-level keys too."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, allow_inf_nan=False, coerce_numbers_to_str=True
    )

    sg_event_id: str = Field(min_length=1)
    event: str = Field(min_length=1)
    email: str | None = None
    timestamp: Annotated[float, Field(gt=0, lt=LATEST_TIMESTAMP, strict=True)] | None = None
    edition_id: Annotated[int, Field(ge=1, le=MAX_EDITION_ID)] | None = None
    url: str | None = None
    type: str | None = None
    reason: str | None = None
    response: str | None = None

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: object) -> object:
        # Neither database stores a NUL character, nor a lone surrogate (JSON allows
        # "\ud800"): one such string would fail the whole batch's transaction.
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError("contains a NUL character")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("is not valid Unicode text") from None
        return value

    @field_validator("email", mode="after")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        # The message of normalise_email names the address: say why without it (logged).
        if not value:
            return None
        try:
            return normalise_email(value)
        except ValueError:
            raise ValueError("is not an address we can store") from None


def read_event(event: object) -> WebhookEvent:
    """One event validated on its own; ValueError says why it cannot be stored (naming
    fields, never their values: the log must not carry addresses)."""
    if not isinstance(event, dict):
        raise ValueError(f"not an object but {type(event).__name__}")
    try:
        return WebhookEvent.model_validate(event)
    except ValidationError as exc:
        reasons = [_reason(error) for error in exc.errors()]
        raise ValueError("; ".join(reasons[:5])) from None


def _reason(error: Any) -> str:
    """A pydantic error as 'field message' (its input value left out)."""
    where = ".".join(map(str, error["loc"])) or "event"
    return f"{where} {str(error['msg']).removeprefix('Value error, ')}"


def outcome_of(event: WebhookEvent) -> str | None:
    kind = event.event
    if kind == "bounce":
        return "bounced" if (event.type or "bounce") == "bounce" else None
    if kind == "dropped":
        reason = (event.reason or "").lower()
        return "bounced" if any(word in reason for word in INVALID_DROP) else None
    if kind == "spamreport":
        return "complained"
    if kind in ("unsubscribe", "group_unsubscribe"):
        return "unsubscribed"
    return None


def event_row(event: WebhookEvent, now: datetime) -> dict[str, Any]:
    """The webhook_events row of a validated event (plus `_outcome`)."""
    stamp = event.timestamp
    detail = event.reason or event.type or event.response
    return dict(
        sg_event_id=event.sg_event_id[:100],
        event=event.event[:40],
        email=event.email,
        edition_id=event.edition_id,
        url=event.url if event.event == "click" and event.url else None,
        detail=detail[:500] if detail else None,
        occurred_at=datetime.fromtimestamp(stamp, UTC) if stamp is not None else None,
        received_at=now,
        _outcome=outcome_of(event),
    )


def record_events(store: Store, events: Sequence[Any], *, now: datetime) -> EventReport:
    """Store new events (duplicates ignored) and apply their outcomes, in one transaction.
    An event that cannot be read is reported (`problems`, with why) and skipped; the rest
    of the batch goes on."""
    report = EventReport(received=len(events))
    rows: dict[str, dict[str, Any]] = {}
    for index, raw in enumerate(events):
        try:
            event = read_event(raw)
        except ValueError as exc:
            event_id = raw.get("sg_event_id") if isinstance(raw, dict) else None
            named = f" ({str(event_id)[:100]!r})" if isinstance(event_id, str | int) else ""
            report.problems.append(f"event {index}{named}: {exc}; skipped")
            report.skipped += 1
            continue
        row = event_row(event, now)
        if row["sg_event_id"] in rows:
            report.duplicates += 1
            continue
        rows[row["sg_event_id"]] = row
    recorded = record(store, rows, OUTCOMES, now=now)
    report.stored = len(recorded.stored)
    report.duplicates += len(rows) - len(recorded.stored)
    report.status_changes = recorded.status_changes
    return report


def engagement(store: Store, edition_id: int) -> dict[str, int]:
    """Unique recipients per outcome (ENGAGEMENT) from the webhook events of an edition."""
    return recipients_per_group(store, edition_id, ENGAGEMENT)


def _hour(moment: datetime, zone: tzinfo) -> datetime:
    """The start of the hour of `zone` that `moment` falls in (a zone half an hour off UTC
    has its hours start at :30 UTC)."""
    local = moment.astimezone(zone)
    return (local - timedelta(minutes=local.minute, seconds=local.second,
                              microseconds=local.microsecond)).astimezone(UTC)  # fmt: skip


def timeline(
    store: Store, edition_id: int, zone: tzinfo = UTC
) -> tuple[list[datetime], dict[str, list[int]]]:
    """Per hour of `zone` (from the first to the last, at most MAX_BUCKETS hours; later ones
    go into the last hour; each hour as its start in `zone`): recipients accepted (ledger,
    by the time their row was last written) and the events of each outcome (by when
    SendGrid says they happened). Counted per hour in SQL, not row by row here."""
    names = {e: TIMELINE_NAMES.get(n, n) for n, group in ENGAGEMENT.items() for e in group}
    counted = _counted_per_hour(store, edition_id, list(names), zone)
    if counted is None:
        return [], {}
    first, accepted, events = counted
    last = max([*accepted, *(h for per_hour in events.values() for h in per_hour)])
    count = min(last + 1, MAX_BUCKETS)
    hours = [(first + timedelta(hours=i)).astimezone(zone) for i in range(count)]
    series = {"accepted": [0] * count} | {name: [0] * count for name in names.values()}
    for hour, n in accepted.items():
        series["accepted"][min(max(hour, 0), count - 1)] += n
    for event, per_hour in events.items():
        for hour, n in per_hour.items():
            series[names[event]][min(max(hour, 0), count - 1)] += n
    return hours, series


# an instant on an hour of every zone whose hours have kept their minutes since then
_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


def _counted_per_hour(
    store: Store, edition_id: int, events: list[str], zone: tzinfo
) -> tuple[datetime, dict[int, int], dict[str, dict[int, int]]] | None:
    """(the first hour of `zone` with activity, accepted per hour since it, events per hour
    since it), or None when there is none. Counted since an hour of `zone` in 2000, so the
    first and last hours come with the counts (no query for the span first); a zone whose
    hours moved off that grid since (an offset change of under an hour) is counted again
    from the span's first hour, read first."""
    origin = _hour(_ORIGIN, zone)
    accepted = accepted_per_hour(store, edition_id, origin)
    counted = events_per_hour(store, edition_id, events, origin)
    found = [*accepted, *(h for per_hour in counted.values() for h in per_hour)]
    if not found:
        return None
    ends = [origin + timedelta(hours=h) for h in (min(found), max(found))]
    if any(_hour(end, zone) != end for end in ends):  # off the grid: the exact way
        span = activity_span(store, edition_id, events)
        if span is None:  # pragma: no cover - rows were just counted
            return None
        origin = _hour(span[0], zone)
        accepted = accepted_per_hour(store, edition_id, origin)
        counted = events_per_hour(store, edition_id, events, origin)
        found = [0]
    shift = min(found)
    first = origin + timedelta(hours=shift)
    return (
        first,
        {h - shift: n for h, n in accepted.items()},
        {e: {h - shift: n for h, n in per_hour.items()} for e, per_hour in counted.items()},
    )
