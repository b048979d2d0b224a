"""Content tables: collected items, source memory and health, publish state, posts
written in /admin with their revisions, uploaded images."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from publisher.store.models.base import Base, UTCDateTime


class ItemRow(Base):
    __tablename__ = "items"

    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    source: Mapped[str] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str | None] = mapped_column(Text, nullable=True)
    published: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # the calendar day of an item dated without a time (Item.day); None otherwise
    day: Mapped[date | None] = mapped_column(Date, nullable=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    topics: Mapped[list] = mapped_column(JSON, default=list)
    image: Mapped[str | None] = mapped_column(Text, nullable=True)
    image_alt: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_changed: Mapped[datetime] = mapped_column(UTCDateTime())
    # Where the item came from inside its source (a Markdown file's path relative to the
    # folder): when that file is gone, the item is retired at the next collect.
    origin: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A retired item never appears in an edition or a feed again (and is never revived).
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    retired_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Staff's correction of the topics (the items page, issue 20): what every later stage
    # reads instead of `topics` (the source's own, still updated by each collect), kept
    # across collects; None: the source's topics apply. Who set it and when.
    topics_override: Mapped[list | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    topics_override_by: Mapped[str | None] = mapped_column(String(320), nullable=True)
    topics_override_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_items_published_id", "published", "id"),)


class PublishStateRow(Base):
    """What a publisher (the feed builder) remembers between builds: kept here, never in a
    folder that gets published, and never read back as a path."""

    __tablename__ = "publish_state"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SourceStateRow(Base):
    """Per-source memory between runs: conditional-GET validators, disabled flag, the last
    refused fetch (not repeated for a while: sources.fetch)."""

    __tablename__ = "source_state"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    etag: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_modified: Mapped[str | None] = mapped_column(Text, nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refused_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    refused_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SourceRunRow(Base):
    """The outcome of a source's last collect (the dashboard's source health): when it last
    ran, last ran cleanly, since when it fails, and its problems of the last run."""

    __tablename__ = "source_runs"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    problems: Mapped[list] = mapped_column(JSON, default=list)


class PostRow(Base):
    """A post written in /admin (issue 20): the built-in `newsroom` source turns the
    published ones into items. `version` grows with every save (optimistic locking)."""

    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(40))
    topics: Mapped[list] = mapped_column(JSON, default=list)
    date: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    author: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[str | None] = mapped_column(Text, nullable=True)
    image_alt: Mapped[str | None] = mapped_column(Text, nullable=True)
    external_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PostRevisionRow(Base):
    """Every save of a post: who, when, and the full values it saved (JSON)."""

    __tablename__ = "post_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    saved_by: Mapped[str] = mapped_column(String(320))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text, default="")
    values: Mapped[dict] = mapped_column(JSON)


class MediaRow(Base):
    """An uploaded image (issue 20), kept in the store so every host of a several-host setup
    has it: the bounded original and the email size, both re-encoded (no metadata). The
    same upload twice (its sha256) is one image. The bytes are loaded only when asked for."""

    __tablename__ = "media"
    # an id is never reused (SQLite reuses the highest one otherwise): a file name is cached
    # for a year, and must never name another image after a delete
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)  # of the upload as sent
    name: Mapped[str] = mapped_column(String(200))  # the uploaded file's name
    slug: Mapped[str] = mapped_column(String(60))
    media_type: Mapped[str] = mapped_column(String(40))
    extension: Mapped[str] = mapped_column(String(8))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    email_width: Mapped[int] = mapped_column(Integer)
    email_height: Mapped[int] = mapped_column(Integer)
    email_size: Mapped[int] = mapped_column(Integer)
    alt: Mapped[str] = mapped_column(Text)  # the default alt text
    uploaded_by: Mapped[str] = mapped_column(String(320))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    email_data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
