"""Read-only queries of the staff dashboard over editions, the delivery ledger, webhook
events and subscribers (kept here, apart from the delivery code, so a change there is a
local change here), plus the source health record `collect` writes after each source.
Everything returned is a dataclass or plain values; the wording is the edges' own
(publisher.support.screen)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import distinct, func, or_, select

from publisher.store import Store
from publisher.store.models import (
    DeliveryRow,
    EditionRow,
    PublishStateRow,
    SourceRunRow,
    SubscriberRow,
    WebhookEventRow,
)
from publisher.store.subscribers import Subscriber

__all__ = [
    "ACCEPTED",
    "ENGAGEMENT",
    "MAX_BUCKETS",
    "REFUSED",
    "TIMELINE_NAMES",
    "EditionLine",
    "SourceRun",
    "campaign_editions",
    "clicks_per_link",
    "edition_line",
    "engagement",
    "export_rows",
    "feeds_built_at",
    "growth",
    "ledger_counts",
    "recipients",
    "record_source_run",
    "search_subscribers",
    "source_runs",
    "subscriber_counts",
    "timeline",
]

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
ACCEPTED = ("sent", "uncertain")  # the provider took them (or may have): the rates' base
REFUSED = ("failed", "bounced")
MAX_BUCKETS = 72


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
    out: dict[int, dict[str, int]] = {i: {} for i in edition_ids}
    if not edition_ids:
        return out
    query = (
        select(DeliveryRow.edition_id, DeliveryRow.status, func.count())
        .where(DeliveryRow.edition_id.in_(list(edition_ids)))
        .group_by(DeliveryRow.edition_id, DeliveryRow.status)
    )
    with store.session() as session:
        for edition_id, status, count in session.execute(query):
            out[edition_id][status] = count
    return out


def _line(row: EditionRow, counts: dict[str, int]) -> EditionLine:
    return EditionLine(
        row.id, row.campaign, row.number, row.subject, row.preheader or "", row.status,
        row.composed_at, row.sent_at, counts,
    )  # fmt: skip


def campaign_editions(store: Store, campaign: str, *, limit: int = 50) -> list[EditionLine]:
    """A campaign's editions, newest first, each with its ledger counts."""
    query = (
        select(EditionRow)
        .where(EditionRow.campaign == campaign)
        .order_by(EditionRow.number.desc())
        .limit(limit)
    )
    with store.session() as session:
        rows = list(session.scalars(query))
    counts = ledger_counts(store, [r.id for r in rows])
    return [_line(r, counts[r.id]) for r in rows]


def edition_line(store: Store, edition_id: int) -> tuple[EditionLine, str] | None:
    """An edition with its ledger counts, and its archived HTML."""
    with store.session() as session:
        row = session.get(EditionRow, edition_id)
        if row is None:
            return None
        html = row.html
    return _line(row, ledger_counts(store, [edition_id])[edition_id]), html


def recipients(store: Store, edition_id: int, *, limit: int = 1000) -> list[tuple[str, str, str]]:
    """(email, ledger status, reason) of an edition's recipients, by status then address."""
    query = (
        select(SubscriberRow.email, DeliveryRow.status, DeliveryRow.error)
        .join(SubscriberRow, SubscriberRow.id == DeliveryRow.subscriber_id)
        .where(DeliveryRow.edition_id == edition_id)
        .order_by(DeliveryRow.status, SubscriberRow.email)
        .limit(limit)
    )
    with store.session() as session:
        return [(e, s, r or "") for e, s, r in session.execute(query)]


def engagement(store: Store, edition_id: int) -> dict[str, int]:
    """Unique recipients per outcome (ENGAGEMENT) from the webhook events of an edition."""
    who = func.coalesce(WebhookEventRow.email, WebhookEventRow.sg_event_id)
    query = (
        select(WebhookEventRow.event, func.count(distinct(who)))
        .where(WebhookEventRow.edition_id == edition_id)
        .group_by(WebhookEventRow.event)
    )
    with store.session() as session:
        per_event = dict(session.execute(query).all())
        out = {}
        for name, events in ENGAGEMENT.items():
            if len(events) == 1:
                out[name] = per_event.get(events[0], 0)
                continue
            out[name] = (
                session.scalar(
                    select(func.count(distinct(who))).where(
                        WebhookEventRow.edition_id == edition_id, WebhookEventRow.event.in_(events)
                    )
                )
                or 0
            )
    return out


def clicks_per_link(store: Store, edition_id: int) -> list[tuple[str, int, int]]:
    """(url, clicks, unique clickers), most clicked first."""
    who = func.coalesce(WebhookEventRow.email, WebhookEventRow.sg_event_id)
    query = (
        select(WebhookEventRow.url, func.count(), func.count(distinct(who)))
        .where(WebhookEventRow.edition_id == edition_id, WebhookEventRow.event == "click")
        .where(WebhookEventRow.url.is_not(None))
        .group_by(WebhookEventRow.url)
        .order_by(func.count().desc(), WebhookEventRow.url)
    )
    with store.session() as session:
        return [(str(u), c, d) for u, c, d in session.execute(query)]


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def timeline(store: Store, edition_id: int) -> tuple[list[datetime], dict[str, list[int]]]:
    """Per hour (UTC, from the first to the last, at most MAX_BUCKETS hours; later ones go
    into the last hour): recipients accepted (ledger, by the time their row was last
    written) and the events of each outcome (by when SendGrid says they happened)."""
    stamps: dict[str, list[datetime]] = {"accepted": []}
    with store.session() as session:
        stamps["accepted"] = list(
            session.scalars(
                select(DeliveryRow.updated_at).where(
                    DeliveryRow.edition_id == edition_id, DeliveryRow.status.in_(ACCEPTED)
                )
            )
        )
        events = session.execute(
            select(
                WebhookEventRow.event,
                func.coalesce(WebhookEventRow.occurred_at, WebhookEventRow.received_at),
            ).where(WebhookEventRow.edition_id == edition_id)
        ).all()
    names = {e: TIMELINE_NAMES.get(n, n) for n, group in ENGAGEMENT.items() for e in group}
    for name in names.values():
        stamps[name] = []
    for event, at in events:
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


# --- subscribers ------------------------------------------------------------------------


def subscriber_counts(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    """Subscribers by status, and active subscribers by topic ('(all topics)' when none)."""
    with store.session() as session:
        statuses = dict(
            session.execute(
                select(SubscriberRow.status, func.count()).group_by(SubscriberRow.status)
            ).all()
        )
        topics: Counter[str] = Counter()
        chosen: list[str]
        for chosen in session.scalars(
            select(SubscriberRow.topics).where(SubscriberRow.status == "active")
        ):
            topics.update(chosen or ["(all topics)"])
    return statuses, dict(sorted(topics.items()))


def growth(store: Store, *, now: datetime, days: int = 30) -> list[tuple[datetime, int, int]]:
    """(day, new that day, total by the end of it) for the last `days` days (UTC)."""
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    with store.session() as session:
        before = session.scalar(select(func.count()).where(SubscriberRow.created_at < start)) or 0
        created = list(
            session.scalars(
                select(SubscriberRow.created_at).where(SubscriberRow.created_at >= start)
            )
        )
    per_day = Counter((t - start).days for t in created if t <= now)
    out, total = [], before
    for index in range(days):
        total += per_day.get(index, 0)
        out.append((start + timedelta(days=index), per_day.get(index, 0), total))
    return out


def search_subscribers(store: Store, text: str, *, limit: int = 50) -> list[Subscriber]:
    """Subscribers whose address or name contains `text` (erased ones never), by address."""
    pattern = "%" + text.strip().lower().replace("\\", "").replace("%", "").replace("_", "") + "%"
    query = (
        select(SubscriberRow)
        .where(or_(SubscriberRow.email.like(pattern), SubscriberRow.name.like(pattern)))
        .where(SubscriberRow.email.not_like("%@erased.invalid"))
        .order_by(SubscriberRow.email)
        .limit(limit)
    )
    with store.session() as session:
        return [_subscriber(row) for row in session.scalars(query)]


def _subscriber(row: SubscriberRow) -> Subscriber:
    return Subscriber(row.id, row.email, row.name, tuple(row.topics or ()), row.status, row.token)


def export_rows(store: Store) -> Iterator[list[str]]:
    """The subscriber CSV's cells (header first) as stored; erased rows left out. The
    caller writing a file makes them spreadsheet-safe (publisher.support.screen)."""
    yield ["email", "name", "topics", "status", "created_at"]
    query = select(SubscriberRow).order_by(SubscriberRow.id)
    with store.session() as session:
        for s in session.scalars(query):
            if s.email.endswith("@erased.invalid"):
                continue
            row = [s.email, s.name or "", ";".join(s.topics or []), s.status]
            yield [*row, s.created_at.isoformat()]


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
