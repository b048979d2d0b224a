"""Subscriber tables: people, their history and pauses, suppressed addresses, SendGrid's
events, the counts kept by triggers, pending imports."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, FetchedValue, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from publisher.store.models.base import Base, UTCDateTime


def _email_hash_of_row(context: Any) -> str:
    """The default of subscribers.email_hash: every insert, ORM or Core, one row or many,
    gets the hash of the address it writes (an update changing the address sets it too:
    store.subscribers.address_values)."""
    from publisher.store.subscribers import stored_email_hash  # it imports this module

    return stored_email_hash(context.get_current_parameters()["email"])


class SubscriberRow(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(Text, nullable=True)
    topics: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # e.g. a bounce
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # opaque, for confirmation links (never the sequential id); set on insert
    ref: Mapped[str | None] = mapped_column(
        String(32), nullable=True, unique=True, default=lambda: secrets.token_urlsafe(12)
    )
    # the token before the last rotation: it still answers a repeated one-click unsubscribe
    retired_token: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # the address hashed as suppressions keep it (migration 0031): set on every insert
    email_hash: Mapped[str] = mapped_column(String(64), default=_email_hash_of_row, index=True)


class SubscriberHistoryRow(Base):
    """What happened to a subscriber and how: sign-up (the consent record: when, IP, user
    agent, form, the consent text shown), confirmation, unsubscribe, preference changes,
    webhook outcomes, staff changes. Erasure deletes these rows with the person's data."""

    __tablename__ = "subscriber_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(40))
    via: Mapped[str] = mapped_column(String(40))
    status: Mapped[str | None] = mapped_column(String(20), nullable=True)  # status afterwards
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(Text, nullable=True)
    form: Mapped[str | None] = mapped_column(String(200), nullable=True)
    consent_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the inserting transaction's id, set by the database (migration 0033): PostgreSQL's
    # pg_current_xact_id(), so GET /api/v1/events can page in an order fixed at commit;
    # 0 on SQLite (one writer: ids commit in order) and on rows older than the column.
    # Never given by an insert; its PostgreSQL index (txid, id) is the migration's only.
    txid: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())


class SubscriberPauseRow(Base):
    """A pause chosen in the preference centre: nothing is sent before `until`."""

    __tablename__ = "subscriber_pauses"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    until: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class SuppressionRow(Base):
    """An address that must never be mailed, kept only as the SHA-256 of the normalised
    address (erasure keeps nothing else): bounced, complained, erased."""

    __tablename__ = "suppressions"

    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookEventRow(Base):
    """One SendGrid event, stored once (sg_event_id is unique: SendGrid retries)."""

    __tablename__ = "webhook_events"

    sg_event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event: Mapped[str] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True, index=True)
    edition_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


# the dashboard's counts at scale (issue 20, migration 0018)
Index("ix_subscribers_created_at", SubscriberRow.created_at)


# the dashboard's counts at scale (issue 20, migration 0018)
Index(
    "ix_webhook_events_edition_event",
    WebhookEventRow.edition_id,
    WebhookEventRow.event,
    WebhookEventRow.email,
)


class SubscriberTallyRow(Base):
    """Subscribers per status (kind 'all', topic ''), per status and topic (kind 'topic'),
    and per status with no topic (kind 'none'): written ONLY by the triggers of migration
    0022 on `subscribers`, read by people_queries.subscriber_counts."""

    __tablename__ = "subscriber_tallies"

    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    topic: Mapped[str] = mapped_column(Text, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class SubscriberListRow(Base):
    """Subscribers per status and per `topics` value as text (CAST(topics AS TEXT)): written
    ONLY by the triggers of migration 0030 on `subscribers`, read by
    audience_counts.count_reachable. The key `digest` is md5 of the text on PostgreSQL (a
    btree entry's size limit), the text itself on SQLite."""

    __tablename__ = "subscriber_lists"

    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    digest: Mapped[str] = mapped_column(Text, primary_key=True)
    topics: Mapped[str] = mapped_column(Text)
    n: Mapped[int] = mapped_column(BigInteger)


class PendingImportRow(Base):
    """A CSV of people uploaded in /admin, read and checked but not yet written (issue 20):
    the preview's totals, owned by one staff member, expiring; confirming writes its rows
    once (`confirmed_at` claims it)."""

    __tablename__ = "pending_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text)  # where consent came from, for every row
    totals: Mapped[dict] = mapped_column(JSON, default=dict)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class PendingImportLineRow(Base):
    """One row of a pending import as the preview showed it: what confirming will do."""

    __tablename__ = "pending_import_lines"

    import_id: Mapped[int] = mapped_column(
        ForeignKey("pending_imports.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(Text)  # as written when it is not an address
    name: Mapped[str | None] = mapped_column(Text, nullable=True)
    topics: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))  # add, update, unchanged, skip
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
