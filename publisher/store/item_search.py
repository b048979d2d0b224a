"""The items page's queries (issue 20): every stored item from every source, searched and
filtered, newest first, a page at a time by keyset (a page never counts or skips over the
rows before it), each with the editions it was in.

Text matches title, summary or URL ignoring case (ILIKE on PostgreSQL, LIKE on SQLite: both
fold ASCII letters; PostgreSQL folds others as its locale does). A topic filter matches the
topics every stage sees (staff's override when there is one), read from the stored JSON as
text: topics are slugs, so the quoted JSON string of one matches exactly that element.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, Text, and_, cast, exists, func, or_, select
from sqlalchemy.orm import defer

from publisher.items import Item
from publisher.store import Store
from publisher.store.items import row_to_item
from publisher.store.models import EditionItemRow, EditionRow, ItemRow
from publisher.support.slug import slugify

__all__ = [
    "Cursor",
    "EditionRef",
    "ItemEntry",
    "ItemPage",
    "ItemQuery",
    "edition_choices",
    "item_entry",
    "item_sources",
    "search_items",
]

PAGE_SIZE = 50


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the next page starts after this item (newest first)."""

    published: datetime
    id: str


@dataclass(frozen=True)
class ItemQuery:
    text: str = ""
    source: str | None = None
    topic: str | None = None  # through the one slug function
    kind: str | None = None
    published_from: datetime | None = None  # inclusive
    published_to: datetime | None = None  # exclusive
    status: Literal["live", "retired"] | None = None  # None: both
    # an edition's id; "any": in at least one edition; "none": in no edition; None: all
    edition: int | Literal["any", "none"] | None = None
    after: Cursor | None = None
    limit: int = PAGE_SIZE


@dataclass(frozen=True)
class EditionRef:
    id: int
    campaign: str
    number: int


@dataclass(frozen=True)
class ItemEntry:
    """One stored item as staff see it: `item` as every later stage reads it (its topics
    are the override when staff set one), the source's own topics, and its history."""

    item: Item
    source_topics: tuple[str, ...]
    overridden: bool
    override_by: str | None
    override_at: datetime | None
    retired_at: datetime | None
    retired_reason: str | None
    editions: tuple[EditionRef, ...]


@dataclass(frozen=True)
class ItemPage:
    entries: list[ItemEntry]  # their items' bodies left empty (item_entry has them)
    next: Cursor | None  # None: this was the last page


def search_items(store: Store, query: ItemQuery) -> ItemPage:
    """A page of the items matching `query`, newest first (published, then id, both
    descending), starting after `query.after`; one row more is read to know whether
    another page follows."""
    # a page lists no bodies: a long post's body is never read for it
    statement = _filtered(select(ItemRow).options(defer(ItemRow.body_html, raiseload=True)), query)
    if query.after is not None:
        p, i = query.after.published, query.after.id
        statement = statement.where(
            or_(ItemRow.published < p, and_(ItemRow.published == p, ItemRow.id < i))
        )
    statement = statement.order_by(ItemRow.published.desc(), ItemRow.id.desc())
    statement = statement.limit(query.limit + 1)
    with store.session() as session:
        rows = list(session.scalars(statement))
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        editions = _editions_of(session, [row.id for row in rows])
        entries = [_entry(row, editions.get(row.id, ()), body=False) for row in rows]
    last = entries[-1].item if more and entries else None
    return ItemPage(entries, Cursor(last.published, last.id) if last else None)


def _filtered(statement: Select[Any], query: ItemQuery) -> Select[Any]:
    text = query.text.strip()
    if text:
        pattern = "%" + _like_escape(text) + "%"
        statement = statement.where(
            or_(*(column.ilike(pattern, escape="\\") for column in _TEXT_COLUMNS))
        )
    if query.source:
        statement = statement.where(ItemRow.source == query.source)
    if query.kind:
        statement = statement.where(ItemRow.kind == query.kind)
    topic = slugify(query.topic) if query.topic else ""
    if topic:
        chosen = func.coalesce(cast(ItemRow.topics_override, Text), cast(ItemRow.topics, Text))
        # the JSON string of the slug, as the store wrote it (json.dumps: ASCII escapes)
        statement = statement.where(chosen.like(f"%{_like_escape(json.dumps(topic))}%", "\\"))
    if query.published_from is not None:
        statement = statement.where(ItemRow.published >= query.published_from)
    if query.published_to is not None:
        statement = statement.where(ItemRow.published < query.published_to)
    if query.status == "live":
        statement = statement.where(ItemRow.retired_at.is_(None))
    elif query.status == "retired":
        statement = statement.where(ItemRow.retired_at.is_not(None))
    return _in_editions(statement, query.edition)


_TEXT_COLUMNS = (ItemRow.title, ItemRow.summary, ItemRow.url)


def _in_editions(statement: Select[Any], edition: int | str | None) -> Select[Any]:
    if edition is None:
        return statement
    placed = exists().where(EditionItemRow.item_id == ItemRow.id)
    if isinstance(edition, int):
        return statement.where(placed.where(EditionItemRow.edition_id == edition))
    return statement.where(placed if edition == "any" else ~placed)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _editions_of(session: Any, item_ids: list[str]) -> dict[str, tuple[EditionRef, ...]]:
    """The editions each of these items was in, by campaign and number."""
    if not item_ids:
        return {}
    rows = session.execute(
        select(EditionItemRow.item_id, EditionRow.id, EditionRow.campaign, EditionRow.number)
        .join(EditionRow, EditionRow.id == EditionItemRow.edition_id)
        .where(EditionItemRow.item_id.in_(item_ids))
        .order_by(EditionRow.campaign, EditionRow.number)
    )
    found: dict[str, list[EditionRef]] = {}
    for item_id, edition_id, campaign, number in rows:
        found.setdefault(item_id, []).append(EditionRef(edition_id, campaign, number))
    return {item_id: tuple(refs) for item_id, refs in found.items()}


def _entry(row: ItemRow, editions: tuple[EditionRef, ...], *, body: bool = True) -> ItemEntry:
    return ItemEntry(
        item=row_to_item(row, body=body),
        source_topics=tuple(row.topics or ()),
        overridden=row.topics_override is not None,
        override_by=row.topics_override_by,
        override_at=row.topics_override_at,
        retired_at=row.retired_at,
        retired_reason=row.retired_reason,
        editions=editions,
    )


def item_entry(store: Store, item_id: str) -> ItemEntry | None:
    """One item with its source's topics, retirement and editions; None when not stored."""
    with store.session() as session:
        row = session.get(ItemRow, item_id)
        if row is None:
            return None
        return _entry(row, _editions_of(session, [row.id]).get(row.id, ()))


def item_sources(store: Store) -> list[str]:
    """The sources that have stored items, by name (the items page's source filter)."""
    with store.session() as session:
        return sorted(session.scalars(select(ItemRow.source).distinct()))


def edition_choices(store: Store) -> list[EditionRef]:
    """Every edition by campaign, newest first (the page's edition filter): three short
    columns, none of the ledger."""
    query = select(EditionRow.id, EditionRow.campaign, EditionRow.number).order_by(
        EditionRow.campaign, EditionRow.number.desc()
    )
    with store.session() as session:
        return [EditionRef(*row) for row in session.execute(query)]
