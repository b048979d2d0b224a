"""Edition tables: editions and their items, an editor's curation, tallies kept when a
send finishes, what people did through an edition's links and the key signing them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from publisher.store.models.base import Base, UTCDateTime


class EditionRow(Base):
    """An immutable, numbered digest edition. (campaign, slot) is unique so a second daemon,
    a restart or a retry can never create a second edition for one scheduled slot."""

    __tablename__ = "editions"
    __table_args__ = (
        UniqueConstraint("campaign", "number", name="uq_editions_campaign_number"),
        UniqueConstraint("campaign", "slot", name="uq_editions_campaign_slot"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign: Mapped[str] = mapped_column(String(200), index=True)
    number: Mapped[int] = mapped_column(Integer)
    slot: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    composed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="composed")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    curation: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # an editor's choices


class EditionItemRow(Base):
    __tablename__ = "edition_items"

    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    section: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)

    # the items page lists the editions each item was in (issue 20)
    __table_args__ = (Index("ix_edition_items_item_id", "item_id"),)


class CurationRow(Base):
    """An editor's choices for a campaign's next edition (publisher/store/curation.py);
    `revision` counts changes, so composing clears only the choices it was composed with."""

    __tablename__ = "curations"

    campaign: Mapped[str] = mapped_column(String(200), primary_key=True)
    note: Mapped[str] = mapped_column(Text, default="")
    pinned: Mapped[list] = mapped_column(JSON, default=list)
    excluded: Mapped[list] = mapped_column(JSON, default=list)
    item_order: Mapped[list] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    revision: Mapped[int] = mapped_column(Integer, default=1)
    changed_by: Mapped[str] = mapped_column(String(320))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EditionTallyRow(Base):
    """An edition's ledger rows per status, counted when a send of it finishes (so the
    staff pages need not count millions of ledger rows); a send's start (reconcile)
    deletes them: no tally means count the ledger."""

    __tablename__ = "edition_tallies"

    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class PageEventRow(Base):
    """What a person did through an edition's own links (unsubscribe, preferences): once
    per person, edition and kind (publisher/store/numbers.py)."""

    __tablename__ = "page_events"
    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id", "kind", name="uq_page_events_once"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class LinkKeyRow(Base):
    """The store's one key (id 1) signing which edition a subscriber link came from: made
    on first use, so every sending process and every web process read the same."""

    __tablename__ = "link_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
