"""Collected items in the store: upsert by content hash, retire and bring back, staff's
topics (kept across collects), list newest first.
Every function takes the store first and returns Items or plain values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from publisher.errors import PublisherError
from publisher.items import Item
from publisher.store import Store
from publisher.store.models import ItemRow
from publisher.support.slug import slugify

__all__ = [
    "ItemNotFound",
    "UpsertResult",
    "list_items",
    "retire_item",
    "retire_missing",
    "selection_items",
    "set_topics_override",
    "unretire_item",
    "upsert_items",
]


class ItemNotFound(PublisherError):
    """`publisher items retire ID` named an item the store does not have."""


@dataclass
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0  # collected again, but retired: left as it is

    @property
    def written(self) -> int:
        return self.inserted + self.updated


def upsert_items(store: Store, items: Iterable[Item], *, now: datetime) -> UpsertResult:
    """Insert new items, update edited ones (by content hash), leave the rest untouched."""
    result = UpsertResult()
    items = list(items)
    if not items:
        return result
    with store.session() as session:
        ids = [item.id for item in items]
        existing: dict[str, ItemRow] = {}
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            rows = session.scalars(select(ItemRow).where(ItemRow.id.in_(chunk)))
            existing.update({row.id: row for row in rows})
        for item in items:
            digest = item.content_hash
            row = existing.get(item.id)
            if row is None:
                row = ItemRow(id=item.id, first_seen=now)
                _fill_row(row, item, digest, now)
                session.add(row)
                existing[item.id] = row
                result.inserted += 1
            elif row.retired_at is not None:
                result.retired += 1  # retired for good: collecting it again changes nothing
            elif row.content_hash != digest:
                _fill_row(row, item, digest, now)
                result.updated += 1
            else:
                row.origin = item.origin  # a moved file keeps its item
                result.unchanged += 1
    return result


def retire_item(
    store: Store, item_id: str, *, now: datetime, reason: str = "retired by hand"
) -> Item:
    """Retire one item: it never appears in an edition or a feed again."""
    with store.session() as session:
        row = session.get(ItemRow, item_id)
        if row is None:
            raise ItemNotFound(f"no item '{item_id}' in the store; `publisher items` lists ids")
        if row.retired_at is None:
            row.retired_at, row.retired_reason = now, reason
        return row_to_item(row)


def unretire_item(store: Store, item_id: str, *, now: datetime) -> Item:
    """Bring a retired item back (a retired post published again, or staff on the items
    page): it may appear in editions and feeds again, and the next collect updates it like
    any other (a retired item's stored copy is never updated)."""
    with store.session() as session:
        row = session.get(ItemRow, item_id)
        if row is None:
            raise ItemNotFound(f"no item '{item_id}' in the store; `publisher items` lists ids")
        if row.retired_at is not None:
            row.retired_at, row.retired_reason, row.last_changed = None, None, now
        return row_to_item(row)


def retire_missing(store: Store, source: str, present: set[str], *, now: datetime) -> list[str]:
    """Retire the items of `source` whose origin (a file) is no longer among `present`;
    returns their ids. Items without an origin are never retired this way."""
    query = (
        select(ItemRow)
        .where(ItemRow.source == source)
        .where(ItemRow.origin.is_not(None))
        .where(ItemRow.retired_at.is_(None))
    )
    retired = []
    with store.session() as session:
        for row in session.scalars(query):
            if row.origin not in present:
                row.retired_at = now
                row.retired_reason = f"its file {row.origin} was deleted"
                retired.append(row.id)
    return retired


def list_items(
    store: Store,
    *,
    topic: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    source: str | None = None,
) -> list[Item]:
    """Items newest first (never a retired one), optionally filtered; `topic` goes
    through the one slug function, so "Workers Rights" finds `workers-rights`; `source`
    keeps one source's items (the newsroom's, for its pages)."""
    topic = slugify(topic) if topic else None
    query = (
        select(ItemRow)
        .where(ItemRow.retired_at.is_(None))
        .order_by(ItemRow.published.desc(), ItemRow.id)
    )
    if kind:
        query = query.where(ItemRow.kind == kind)
    if since:
        query = query.where(ItemRow.published >= since)
    if source:
        query = query.where(ItemRow.source == source)
    with store.session() as session:
        rows = session.scalars(query)
        out = []
        for row in rows:
            if topic and topic not in effective_topics(row):
                continue
            out.append(row_to_item(row))
            if limit and len(out) >= limit:
                break
        return out


def selection_items(
    store: Store, *, seen_since: datetime
) -> tuple[list[Item], list[tuple[Item, str]]]:
    """What composing a campaign's next edition looks at: the items dated or first seen at
    or after `seen_since` (an older one cannot be new), and apart from them the retired ones
    among those with why they were retired (only reported, never selected)."""
    recent = or_(ItemRow.published >= seen_since, ItemRow.first_seen >= seen_since)
    query = select(ItemRow).where(recent).order_by(ItemRow.published.desc(), ItemRow.id)
    live: list[Item] = []
    retired: list[tuple[Item, str]] = []
    with store.session() as session:
        for row in session.scalars(query):
            if row.retired_at is None:
                live.append(row_to_item(row))
            else:
                retired.append((row_to_item(row), row.retired_reason or "retired"))
    return live, retired


def _fill_row(row: ItemRow, item: Item, digest: str, now: datetime) -> None:
    row.source = item.source
    row.title = item.title
    row.url = item.url
    row.summary = item.summary
    row.body_html = item.body_html
    row.author = item.author
    row.published = item.published
    row.updated = item.updated
    row.day = item.day
    row.kind = item.kind
    row.topics = list(item.topics)
    row.image = item.image
    row.image_alt = item.image_alt
    row.content_hash = digest
    row.last_changed = now
    row.origin = item.origin


def effective_topics(row: ItemRow) -> tuple[str, ...]:
    """The topics every later stage sees: staff's override when there is one (the items
    page), else the source's own."""
    chosen = row.topics if row.topics_override is None else row.topics_override
    return tuple(chosen or ())


def row_to_item(row: ItemRow, *, body: bool = True) -> Item:
    """The one conversion of a stored item (compose, feeds, the archive and the previews all
    read items through it): its topics are the effective ones. `body=False`: the body is
    left empty (a listing that deferred loading it)."""
    return Item(
        id=row.id,
        title=row.title,
        url=row.url,
        published=row.published,
        source=row.source,
        kind=row.kind,
        summary=row.summary,
        body_html=row.body_html if body else "",
        author=row.author,
        updated=row.updated,
        topics=effective_topics(row),
        image=row.image,
        image_alt=row.image_alt,
        day=row.day,
        first_seen=row.first_seen,
        origin=row.origin,
    )


def set_topics_override(
    store: Store, item_id: str, topics: Iterable[str] | None, *, by: str, now: datetime
) -> Item:
    """Staff's topics for an item, kept across collects (each topic through the one slug
    function, empty ones dropped); None goes back to the source's own topics. Returns the
    item as every later stage will see it."""
    chosen = None if topics is None else list(dict.fromkeys(filter(None, map(slugify, topics))))
    with store.session() as session:
        row = session.get(ItemRow, item_id)
        if row is None:
            raise ItemNotFound(f"no item '{item_id}' in the store; `publisher items` lists ids")
        row.topics_override = chosen
        row.topics_override_by = None if chosen is None else by
        row.topics_override_at = None if chosen is None else now
        row.last_changed = now
        return row_to_item(row)
