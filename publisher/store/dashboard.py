"""Read-only queries of the staff dashboard over editions, the delivery ledger, webhook
events and subscribers (kept here, apart from the delivery code, so a change there is a
local change here), plus the source health record `collect` writes after each source.
Everything returned is a dataclass or plain values; the wording is the edges' own
(publisher.support.screen)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from itertools import pairwise as pairs
from typing import Any

from sqlalchemy import column, distinct, func, or_, select, tuple_
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
    SubscriberTallyRow,
    UTCDateTime,
    WebhookEventRow,
)
from publisher.store.subscribers import Subscriber

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
    "export_rows",
    "feeds_built_at",
    "growth",
    "ledger_counts",
    "recipients",
    "recipients_per_event",
    "recipients_per_group",
    "recipients_with_any",
    "record_source_run",
    "search_subscribers",
    "source_runs",
    "subscriber_counts",
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


# --- subscribers ------------------------------------------------------------------------


def subscriber_counts(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    """Subscribers by status, and active subscribers by topic ('(all topics)' when none):
    read from the tallies the database's own triggers keep exact (migration 0022), a few
    dozen rows whatever the number of subscribers."""
    query = select(
        SubscriberTallyRow.status, SubscriberTallyRow.kind, SubscriberTallyRow.topic,
        SubscriberTallyRow.n,
    ).where(SubscriberTallyRow.n != 0)  # fmt: skip
    statuses: dict[str, int] = {}
    topics: dict[str, int] = {}
    with store.session() as session:
        for status, kind, topic, n in session.execute(query):
            if kind == "all":
                statuses[str(status)] = int(n)
            elif status == "active":
                topics["(all topics)" if kind == "none" else str(topic)] = int(n)
    return statuses, dict(sorted(topics.items()))


def _day_starts(now: datetime, days: int, zone: tzinfo) -> list[datetime]:
    """The UTC instants the last `days` days of `zone`'s calendar begin at, and the end of
    today: local midnights, so a day with a clock change has 23 or 25 hours."""
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    return [
        datetime.combine(first + timedelta(days=i), time(), zone).astimezone(UTC)
        for i in range(days + 1)
    ]


def growth(
    store: Store, *, now: datetime, days: int = 30, zone: tzinfo = UTC
) -> list[tuple[datetime, int, int]]:
    """(day, new that day, total by the end of it) for the last `days` days of `zone`'s
    calendar (the day as its local midnight). One statement of indexed range counts over
    the window's days; the total before it is the triggers' tally of every subscriber
    less those created since the window began (never a count over the whole table)."""
    starts = _day_starts(now, days, zone)
    created = SubscriberRow.created_at

    def count(*where: Any) -> Any:
        return select(func.count()).where(*where).scalar_subquery()

    per_day = [count(created >= a, created < b, created <= now) for a, b in pairs(starts)]
    everyone = select(func.coalesce(func.sum(SubscriberTallyRow.n), 0)).where(
        SubscriberTallyRow.kind == "all"
    )
    with store.session() as session:
        since: Any = session.execute(select(count(created >= starts[0]), *per_day)).one()
        total = int(session.scalar(everyone) or 0) - int(since[0])
    out = []
    for index in range(days):
        total += int(since[index + 1])
        out.append((starts[index].astimezone(zone), int(since[index + 1]), total))
    return out


def search_subscribers(store: Store, text: str, *, limit: int = 50) -> list[Subscriber]:
    """Subscribers whose address or name contains `text`, whatever its case (erased ones
    never), by address. Served by migration 0023's trigram indexes: on PostgreSQL the
    planner picks pg_trgm's (addresses are stored in lower case; a name is matched with
    ILIKE, as SQLite's LIKE ignores case); on SQLite the FTS5 table names the candidate rows
    (for three characters or more), each checked by the same LIKE. Without them it reads
    every row."""
    wanted = text.strip().lower().replace("\\", "").replace("%", "").replace("_", "")
    pattern = f"%{wanted}%"
    query = (
        select(SubscriberRow)
        .where(or_(SubscriberRow.email.like(pattern), SubscriberRow.name.ilike(pattern)))
        .where(SubscriberRow.email.not_like("%@erased.invalid"))
        .order_by(SubscriberRow.email)
        .limit(limit)
    )
    with store.session() as session:
        if len(wanted) >= 3 and _sqlite_trigrams(session):
            query = query.where(SubscriberRow.id.in_(_trigram_candidates(wanted)))
        return [_subscriber(row) for row in session.scalars(query)]


def _sqlite_trigrams(session: Any) -> bool:
    """Whether this is SQLite with migration 0023's FTS5 table (an SQLite built without
    FTS5 migrates without it)."""
    if session.get_bind().dialect.name != "sqlite":
        return False
    found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'subscribers_search'"
    return session.scalar(sql_text(found)) is not None


def _trigram_candidates(wanted: str) -> Any:
    """The ids whose address or name holds `wanted` as a phrase of trigrams (case folded):
    every row the LIKE matches, maybe a few more (the LIKE decides)."""
    phrase = '"' + wanted.replace('"', '""') + '"'
    statement = "SELECT rowid FROM subscribers_search WHERE subscribers_search MATCH :phrase"
    return sql_text(statement).bindparams(phrase=phrase).columns(column("rowid"))


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
