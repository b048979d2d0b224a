"""SQLAlchemy 2 models. The schema is created and upgraded only by Alembic migrations
(publisher/store/migrations); these classes must stay in step with them."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC and always returns them aware (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; times must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


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


class DeliveryRow(Base):
    """The delivery ledger: one row per (edition, subscriber), written in batches."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id", name="uq_deliveries_edition_subscriber"),
        Index("ix_deliveries_edition_batch", "edition_id", "batch"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"))
    batch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeliveryBatchRow(Base):
    """One batch request of an edition: in exactly-once mode its provider batch id and
    delivery time (recorded before the request is written), and what became of it:
    'requested' (outcome unknown until answered), 'accepted', 'cancelled' (its recipients
    were sent again under a new batch), 'uncertain' (too late to cancel), 'refused'."""

    __tablename__ = "delivery_batches"
    __table_args__ = (
        UniqueConstraint("edition_id", "number", name="uq_delivery_batches_edition_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    provider_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    # the provider's cancellation was deleted after send_at (it frees one of its 10 slots)
    cancel_cleared: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SendWorkRow(Base):
    """One batch of an edition's send as a work item (publisher.store.work): `open` until
    its outcome is recorded, then `done`; a worker holds it under a lease (`holder`,
    `lease_until` in epoch seconds), renewed by its heartbeat and by every ledger write."""

    __tablename__ = "send_work"
    __table_args__ = (Index("ix_send_work_open", "status", "edition_id", "number"),)

    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(10))
    holder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    claims: Mapped[int] = mapped_column(Integer, default=0)
    # the subscriber ids the batch was cut from (its rows are written after the cut)
    first_id: Mapped[int] = mapped_column(Integer)
    last_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SendPlanRow(Base):
    """How far the claimers of an edition's send have read its audience (subscriber ids up
    to `after_id` are in batches), the number the next batch gets, and whether the audience
    is exhausted for this round (publisher.store.plan)."""

    __tablename__ = "send_plans"

    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    )
    after_id: Mapped[int] = mapped_column(Integer)
    next_number: Mapped[int] = mapped_column(Integer)
    complete: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CampaignStateRow(Base):
    """Staff-controlled state of a campaign that outlives a process (pause/resume)."""

    __tablename__ = "campaign_state"

    campaign: Mapped[str] = mapped_column(String(200), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When a daemon first scheduled this campaign: catch-up never reaches further back.
    watched_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ScheduleSlotRow(Base):
    """What happened to one scheduled slot of a campaign: claimed by a daemon ('running'),
    'sent', 'skipped' (nothing new), 'paused', 'missed' (downtime beyond grace), 'coalesced'
    (an older missed slot folded into a newer one) or 'failed'. One row per (campaign, slot)."""

    __tablename__ = "schedule_slots"
    __table_args__ = (UniqueConstraint("campaign", "slot", name="uq_schedule_slots_campaign_slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign: Mapped[str] = mapped_column(String(200), index=True)
    slot: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    edition_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # a running claim lapses at this time (epoch seconds) unless its daemon renews it
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)


# --- subscriber web (issue 11) ------------------------------------------------------------


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


# --- staff dashboard (issue 13) -----------------------------------------------------------


class StaffRow(Base):
    """A staff account of the dashboard: role owner, editor or viewer; argon2 hash only."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the TOTP second factor (issue 19): the base32 secret and the last time step used
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AuditRow(Base):
    """One staff action (login, failed login, pause, resume, test send, export, staff
    changes): who, when, from where, on what."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # repeated failures from one address are one row counting them (issue 19)
    repeats: Mapped[int] = mapped_column(Integer, default=1)


class LoginFailureRow(Base):
    """A failed log-in, keyed 'account:<email>' and 'ip:<address>' (the lock-out counts
    them; kept in the store so a restart does not reset it)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class StaffSessionRow(Base):
    """A signed-in staff session (issue 19): the cookie holds a random token, this row its
    SHA-256; log-out, a password change or an owner deletes the row and the cookie is dead."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)


class StaffLinkRow(Base):
    """A single-use emailed link (issue 19): an invitation (email, role) or a password reset
    (staff_id); only the SHA-256 of the link's token is kept."""

    __tablename__ = "staff_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RecoveryCodeRow(Base):
    """A single-use recovery code of a staff member's second factor (SHA-256 only)."""

    __tablename__ = "staff_recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PasskeyRow(Base):
    """A staff member's passkey (WebAuthn credential, issue 19): its id, COSE public key and
    signature counter; the private key never leaves the authenticator."""

    __tablename__ = "staff_passkeys"

    id: Mapped[str] = mapped_column(String(400), primary_key=True)  # base64url credential id
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(Text)  # base64url COSE key
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StaffSettingRow(Base):
    """An owner's setting of the dashboard (issue 19), e.g. require_second_factor."""

    __tablename__ = "staff_settings"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class SourceRunRow(Base):
    """The outcome of a source's last collect (the dashboard's source health): when it last
    ran, last ran cleanly, since when it fails, and its problems of the last run."""

    __tablename__ = "source_runs"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    problems: Mapped[list] = mapped_column(JSON, default=list)


class RateLimitRow(Base):
    """A fixed-window counter of the sign-up limits (per mailbox, IP, network, and the
    global ceiling), shared by every web process; a row goes once its window has ended."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer)
    expires: Mapped[int] = mapped_column(Integer, index=True)
    hits: Mapped[int] = mapped_column(Integer)


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


class ProcessHeartbeatRow(Base):
    """A running `publisher run` daemon or `publisher worker` as it last said it was alive
    (issue 21): renewed every 30 s, deleted on a clean stop; a killed one's row stays
    behind until it is a day old."""

    __tablename__ = "process_heartbeats"
    __table_args__ = (UniqueConstraint("host", "pid", "started"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))  # daemon, worker
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(40))
    started: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


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


# --- the dashboard's counts at scale (issue 20, migration 0018) ---------------------------
Index("ix_subscribers_created_at", SubscriberRow.created_at)
Index(
    "ix_webhook_events_edition_event",
    WebhookEventRow.edition_id,
    WebhookEventRow.event,
    WebhookEventRow.email,
)
# --- numbers from every backend (issue 21) --------------------------------------------------


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


# --- subscriber counts kept by the database (issue 20, /admin at 1,000,000) -----------------


class SubscriberTallyRow(Base):
    """Subscribers per status (kind 'all', topic ''), per status and topic (kind 'topic'),
    and per status with no topic (kind 'none'): written ONLY by the triggers of migration
    0022 on `subscribers`, read by dashboard.subscriber_counts."""

    __tablename__ = "subscriber_tallies"

    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    topic: Mapped[str] = mapped_column(Text, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


# an edition's ledger by status then subscriber (the recipients list's keyset), and when each
# row was last written (the hourly chart, from the index alone); replaces 0018's
# ix_deliveries_edition_status, so the ledger's writes keep the same number of indexes
Index(
    "ix_deliveries_edition_recipient",
    DeliveryRow.edition_id,
    DeliveryRow.status,
    DeliveryRow.subscriber_id,
    DeliveryRow.updated_at,
)


# --- broadcasts: one-off emails, action alerts (issue 21) -----------------------------------


class BroadcastRow(Base):
    """A broadcast written in /admin (publisher/store/broadcasts.py). `version` grows with
    every change (compare-and-set); once sending, its content lives in the edition
    `edition_id` (campaign key "~broadcast", number = this id)."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str] = mapped_column(String(60))
    topics: Mapped[list] = mapped_column(JSON, default=list)
    exclude: Mapped[list] = mapped_column(JSON, default=list)
    body: Mapped[str] = mapped_column(Text, default="")
    items: Mapped[list] = mapped_column(JSON, default=list)
    cta_label: Mapped[str | None] = mapped_column(Text, nullable=True)
    cta_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(Integer)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    edition_id: Mapped[int | None] = mapped_column(
        ForeignKey("editions.id", ondelete="SET NULL"), nullable=True
    )
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # while sending: the process sending it (host:pid) and when its claim lapses (epoch
    # seconds) unless renewed (publisher/store/broadcast_leases.py, migration 0032)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)


# --- approval before a send (issue 21, migration 0026) --------------------------------------


class SendPermissionRow(Base):
    """An editor an owner allowed to send (owners always may): publisher/store/approvals.py."""

    __tablename__ = "send_permissions"

    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    granted_by: Mapped[str] = mapped_column(String(320))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApprovalRow(Base):
    """A request for, or a decision on, one version of a send: a broadcast (subject: its id)
    or a campaign's next edition (subject: the campaign, version: its selection's
    fingerprint). Status waiting, approved, refused or voided (an edit came after it)."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[str] = mapped_column(String(320), default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(320), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")


Index("ix_approvals_subject", ApprovalRow.kind, ApprovalRow.subject, ApprovalRow.id)
Index("ix_approvals_status", ApprovalRow.status, ApprovalRow.id)
# --- steering the digest (issue 21): one slot skipped or moved, once ------------------------


class SlotOverrideRow(Base):
    """A staff member's change to ONE slot of a campaign: 'skip' (it never sends) or 'move'
    (it runs at `moved_to` instead of its own time). The slot keeps its identity: its
    schedule_slots record and its edition are still keyed by the original `slot`."""

    __tablename__ = "slot_overrides"
    __table_args__ = (UniqueConstraint("campaign", "slot", name="uq_slot_overrides_campaign_slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign: Mapped[str] = mapped_column(String(200))
    slot: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(8))
    moved_to: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    by: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- outgoing webhooks (issue 22, migration 0028) --------------------------------------------


class WebhookEndpointRow(Base):
    """Where an owner wants events posted, which events, and the secret that signs them."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    events: Mapped[list] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(String(100))  # whsec_<base64>: it must sign, so kept
    secret_unseen: Mapped[bool] = mapped_column(Boolean, default=True)  # shown once, then not
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(320))


class WebhookOutboxRow(Base):
    """An event, written in the transaction of the change it reports."""

    __tablename__ = "webhook_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSON)  # {type, timestamp, data}
    ordering_key: Mapped[str] = mapped_column(String(80))  # e.g. subscriber:12
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookDeliveryRow(Base):
    """One event for one endpoint: pending until delivered, claimed under a lease."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_once"),
        Index("ix_webhook_deliveries_due", "state", "next_at"),
        Index("ix_webhook_deliveries_order", "endpoint_id", "ordering_key", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_outbox.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    ordering_key: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(12))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime())
    holder: Mapped[str | None] = mapped_column(String(120), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebhookAttemptRow(Base):
    """One POST of a delivery and what came back."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[int] = mapped_column(Integer, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    response: Mapped[str | None] = mapped_column(Text, nullable=True)  # truncated
    ok: Mapped[bool] = mapped_column(Boolean)


# --- the JSON API (issue 22): keys and Idempotency-Key answers --------------------------------


class ApiKeyRow(Base):
    """A key of the API: `prefix` names it in the Authorization header (pk_<prefix>_<secret>),
    `secret_hash` is the SHA-256 of the whole token (a high-entropy token: a fast hash is
    enough, and every request checks one). `kind` is 'scoped' or 'signup'."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    scopes: Mapped[str] = mapped_column(Text)  # space-separated
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApiIdempotencyRow(Base):
    """The answer to a POST made with an Idempotency-Key, kept 24 hours per key."""

    __tablename__ = "api_idempotency"

    key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    idem_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


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


class SubscriberListRow(Base):
    """Subscribers per status and per `topics` value as text (CAST(topics AS TEXT)): written
    ONLY by the triggers of migration 0030 on `subscribers`, read by
    subscribers.count_reachable. The key `digest` is md5 of the text on PostgreSQL (a
    btree entry's size limit), the text itself on SQLite."""

    __tablename__ = "subscriber_lists"

    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    digest: Mapped[str] = mapped_column(Text, primary_key=True)
    topics: Mapped[str] = mapped_column(Text)
    n: Mapped[int] = mapped_column(BigInteger)
