"""Read-only queries of the staff dashboard over editions, the delivery ledger and webhook
events (kept here, apart from the delivery code, so a change there is a local change here),
plus the source health record `collect` writes after each source. The people page's queries
over subscribers are in people_queries.py. Everything returned is a dataclass or plain
values; the wording is the edges' own (publisher.support.screen)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import distinct, func, select, tuple_
from sqlalchemy import literal as sql_literal
from sqlalchemy import text as sql_text

from publisher.store import Store, tallies
from publisher.store.dialect import epoch_seconds
from publisher.store.models import (
    DeliveryRow,
    EditionRow,
    PublishStateRow,
    SourceRunRow,
    SubscriberRow,
    UTCDateTime,
    WebhookEventRow,
)

__all__ = [
    "ACCEPTED",
    "REFUSED",
    "EditionLine",
    "SourceRun",
    "accepted_per_hour",
    "accepted_times",
    "activity_span",
    "campaign_editions",
    "clicks_per_link",
    "edition_line",
    "event_times",
    "events_per_hour",
    "feeds_built_at",
    "ledger_counts",
    "recipients",
    "recipients_per_event",
    "recipients_per_group",
    "recipients_with_any",
    "record_source_run",
    "source_runs",
]

ACCEPTED = ("sent", "uncertain")  # the provider took them (or may have): the rates' base
REFUSED = ("failed", "bounced")
_WHO = func.coalesce(WebhookEventRow.email, WebhookEventRow.sg_event_id)  # one recipient


@dataclass(frozen=True)
class EditionLine:
    id: int
    campaign: str
    number: int
    subject: str
    preheader: str
    status: str
    composed_at: datetime
    sent_at: datetime | None
    counts: dict[str, int] = field(default_factory=dict)  # ledger status -> rows

    @property
    def accepted(self) -> int:
        return sum(self.counts.get(s, 0) for s in ACCEPTED)

    @property
    def failed(self) -> int:
        """Refused for good: failed, or bounced at once by the provider."""
        return sum(self.counts.get(s, 0) for s in REFUSED)

    @property
    def uncertain(self) -> int:
        return self.counts.get("uncertain", 0)


def ledger_counts(store: Store, edition_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Ledger rows per status of each edition (its tally when its send has finished)."""
    return tallies.edition_counts(store, edition_ids)


def _line(row: EditionRow, counts: dict[str, int]) -> EditionLine:
    return EditionLine(
        row.id, row.campaign, row.number, row.subject, row.preheader or "", row.status,
        row.composed_at, row.sent_at, counts,
    )  # fmt: skip


def campaign_editions(
    store: Store, campaign: str, *, limit: int = 10, before: int | None = None
) -> tuple[list[EditionLine], bool]:
    """A page of a campaign's editions, newest first (numbered below `before` when given),
    each with its ledger counts, and whether older editions follow: the ledger is counted
    for this page's editions only (keyset on the edition number, indexed)."""
    query = select(EditionRow).where(EditionRow.campaign == campaign)
    if before is not None:
        query = query.where(EditionRow.number < before)
    query = query.order_by(EditionRow.number.desc()).limit(limit + 1)
    with store.session() as session:
        rows = list(session.scalars(query))
    rows, older = rows[:limit], len(rows) > limit
    counts = ledger_counts(store, [r.id for r in rows])
    return [_line(r, counts[r.id]) for r in rows], older


def edition_line(store: Store, edition_id: int) -> tuple[EditionLine, str] | None:
    """An edition with its ledger counts, and its archived HTML."""
    with store.session() as session:
        row = session.get(EditionRow, edition_id)
        if row is None:
            return None
        html = row.html
    return _line(row, ledger_counts(store, [edition_id])[edition_id]), html


def recipients(
    store: Store, edition_id: int, *, limit: int = 100, after: tuple[str, int] | None = None
) -> tuple[list[tuple[str, str, str]], tuple[str, int] | None]:
    """A page of (email, ledger status, reason) of an edition's recipients, by status then
    subscriber (keyset: the rows after `after`, read along ix_deliveries_edition_recipient),
    and the key of the next page (None on the last)."""
    query = (
        select(
            SubscriberRow.email, DeliveryRow.status, DeliveryRow.error, DeliveryRow.subscriber_id
        )
        .join(SubscriberRow, SubscriberRow.id == DeliveryRow.subscriber_id)
        .where(DeliveryRow.edition_id == edition_id)
        .order_by(DeliveryRow.status, DeliveryRow.subscriber_id)
        .limit(limit + 1)
    )
    if after is not None:  # a row comparison: an index range on both databases
        query = query.where(tuple_(DeliveryRow.status, DeliveryRow.subscriber_id) > tuple_(*after))
    with store.session() as session:
        rows: list[Any] = list(session.execute(query))
    page = [(str(e), str(s), r or "") for e, s, r, _ in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return page, (str(last[1]), int(last[3])) if last is not None else None


def recipients_per_event(store: Store, edition_id: int) -> dict[str, int]:
    """Unique recipients (one address counts once) per webhook event name of an edition."""
    query = (
        select(WebhookEventRow.event, func.count(distinct(_WHO)))
        .where(WebhookEventRow.edition_id == edition_id)
        .group_by(WebhookEventRow.event)
    )
    with store.session() as session:
        return {str(event): count for event, count in session.execute(query)}


def recipients_with_any(store: Store, edition_id: int, events: Sequence[str]) -> int:
    """Unique recipients of an edition with at least one of these webhook events."""
    query = select(func.count(distinct(_WHO))).where(
        WebhookEventRow.edition_id == edition_id, WebhookEventRow.event.in_(list(events))
    )
    with store.session() as session:
        return session.scalar(query) or 0


def recipients_per_group(
    store: Store, edition_id: int, groups: Mapping[str, Sequence[str]]
) -> dict[str, int]:
    """Unique recipients of an edition with at least one webhook event of each group (name
    -> event names), every group counted in one pass over the edition's events (a query
    per group read them all again)."""
    wanted = sorted({event for events in groups.values() for event in events})
    counts = [
        func.count(distinct(_WHO)).filter(WebhookEventRow.event.in_(list(events)))
        for events in groups.values()
    ]
    query = select(*counts).where(
        WebhookEventRow.edition_id == edition_id, WebhookEventRow.event.in_(wanted)
    )
    with store.session() as session:
        found = session.execute(query).one()
    return {name: int(n or 0) for name, n in zip(groups, found, strict=True)}


def clicks_per_link(store: Store, edition_id: int) -> list[tuple[str, int, int]]:
    """(url, clicks, unique clickers), most clicked first."""
    query = (
        select(WebhookEventRow.url, func.count(), func.count(distinct(_WHO)))
        .where(WebhookEventRow.edition_id == edition_id, WebhookEventRow.event == "click")
        .where(WebhookEventRow.url.is_not(None))
        .group_by(WebhookEventRow.url)
        .order_by(func.count().desc(), WebhookEventRow.url)
    )
    with store.session() as session:
        return [(str(u), c, d) for u, c, d in session.execute(query)]


def accepted_times(store: Store, edition_id: int) -> list[datetime]:
    """When each recipient the provider took (or may have) had its ledger row last written."""
    query = select(DeliveryRow.updated_at).where(
        DeliveryRow.edition_id == edition_id, DeliveryRow.status.in_(ACCEPTED)
    )
    with store.session() as session:
        return list(session.scalars(query))


def event_times(store: Store, edition_id: int) -> list[tuple[str, datetime]]:
    """(event, when SendGrid says it happened, else when it arrived) of an edition."""
    query = select(
        WebhookEventRow.event,
        func.coalesce(WebhookEventRow.occurred_at, WebhookEventRow.received_at),
    ).where(WebhookEventRow.edition_id == edition_id)
    with store.session() as session:
        return [(str(event), at) for event, at in session.execute(query)]


_EVENT_AT = func.coalesce(WebhookEventRow.occurred_at, WebhookEventRow.received_at)


def activity_span(
    store: Store, edition_id: int, events: Sequence[str]
) -> tuple[datetime, datetime] | None:
    """The first and last time of an edition's accepted ledger rows (when last written) and
    of its webhook events named in `events` (when SendGrid says they happened); None when
    there are none."""
    accepted = select(func.min(DeliveryRow.updated_at), func.max(DeliveryRow.updated_at)).where(
        DeliveryRow.edition_id == edition_id, DeliveryRow.status.in_(ACCEPTED)
    )
    happened = select(func.min(_EVENT_AT), func.max(_EVENT_AT)).where(
        WebhookEventRow.edition_id == edition_id, WebhookEventRow.event.in_(list(events))
    )
    with store.session() as session:
        found = [*session.execute(accepted).one(), *session.execute(happened).one()]
    times = [_aware(t) for t in found if t is not None]
    return (min(times), max(times)) if times else None


def _aware(moment: datetime | str) -> datetime:
    """min()/max() of a time column come back as text on SQLite (the function's result has
    no column type): read them as the UTC times they are."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _hours_since(store: Store, moment: Any, start: datetime) -> tuple[Any, Callable[[Any], int]]:
    """A SQL bucket of `moment` per whole hour since `start`, and how to read a bucket as
    that hour's number. PostgreSQL bins the times with date_bin (timestamp arithmetic:
    EXTRACT(epoch) gives a numeric, about twice as slow over an edition's 25,000 rows);
    SQLite divides whole seconds. Both exact (never negative here)."""
    if store.engine.dialect.name == "postgresql":
        origin = sql_literal(start.astimezone(UTC), UTCDateTime())
        bucket = func.date_bin(sql_text("interval '1 hour'"), moment, origin)

        def read(binned: datetime) -> int:
            return int((binned - start).total_seconds() // 3600)

        return bucket, read
    seconds = epoch_seconds(store.engine, moment) - int(start.timestamp())
    return seconds // 3600, int


def accepted_per_hour(store: Store, edition_id: int, start: datetime) -> dict[int, int]:
    """Accepted ledger rows of an edition per whole hour since `start` (by when each row was
    last written), counted in SQL."""
    bucket, read = _hours_since(store, DeliveryRow.updated_at, start)
    query = (
        select(bucket, func.count())
        .where(DeliveryRow.edition_id == edition_id, DeliveryRow.status.in_(ACCEPTED))
        .group_by(bucket)
    )
    with store.session() as session:
        rows: list[Any] = list(session.execute(query))
    return {read(h): int(n) for h, n in rows}


def events_per_hour(
    store: Store, edition_id: int, events: Sequence[str], start: datetime
) -> dict[str, dict[int, int]]:
    """An edition's webhook events named in `events`, per event and whole hour since `start`
    (by when SendGrid says they happened, else when they arrived), counted in SQL."""
    bucket, read = _hours_since(store, _EVENT_AT, start)
    query = (
        select(WebhookEventRow.event, bucket, func.count())
        .where(WebhookEventRow.edition_id == edition_id, WebhookEventRow.event.in_(list(events)))
        .group_by(WebhookEventRow.event, bucket)
    )
    out: dict[str, dict[int, int]] = {}
    with store.session() as session:
        rows: list[Any] = list(session.execute(query))
    for event, h, n in rows:
        out.setdefault(str(event), {})[read(h)] = int(n)
    return out


# --- source health ----------------------------------------------------------------------


def record_source_run(
    store: Store, name: str, problems: list[str], *, failed: bool, now: datetime
) -> None:
    """After a source's collect: its problems, and whether it failed (nothing could be read:
    since when it has been failing is kept until it reads again)."""
    with store.session() as session:
        row = session.get(SourceRunRow, name) or SourceRunRow(name=name)
        row.last_run_at = now
        if failed:
            row.failing_since = row.failing_since or now
        else:
            row.last_ok_at, row.failing_since = now, None
        row.problems = problems[:20]
        session.add(row)


@dataclass(frozen=True)
class SourceRun:
    """A source's health as `collect` last recorded it."""

    name: str
    last_run_at: datetime
    last_ok_at: datetime | None
    failing_since: datetime | None
    problems: tuple[str, ...]


def source_runs(store: Store) -> dict[str, SourceRun]:
    with store.session() as session:
        return {
            r.name: SourceRun(
                r.name, r.last_run_at, r.last_ok_at, r.failing_since, tuple(r.problems or ())
            )
            for r in session.scalars(select(SourceRunRow))
        }


def feeds_built_at(store: Store) -> datetime | None:
    """When the feed builder last changed its state (a build that wrote something)."""
    with store.session() as session:
        row = session.get(PublishStateRow, "feeds")
        return row.updated_at if row else None
