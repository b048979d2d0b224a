"""Initial schema: items, source state, editions, subscribers, delivery ledger, campaign state.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.String(512), primary_key=True),
        sa.Column("source", sa.String(200), nullable=False, index=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text, nullable=False),
        sa.Column("author", sa.Text),
        sa.Column("published", UTCDateTime(), nullable=False, index=True),
        sa.Column("updated", UTCDateTime()),
        sa.Column("kind", sa.String(40), nullable=False, index=True),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("image", sa.Text),
        sa.Column("image_alt", sa.Text),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_changed", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "source_state",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("checked_at", UTCDateTime()),
    )
    op.create_table(
        "editions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign", sa.String(200), nullable=False, index=True),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("slot", UTCDateTime()),
        sa.Column("composed_at", UTCDateTime(), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("preheader", sa.Text, nullable=False, server_default=""),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="composed"),
        sa.Column("sent_at", UTCDateTime()),
        sa.UniqueConstraint("campaign", "number", name="uq_editions_campaign_number"),
        sa.UniqueConstraint("campaign", "slot", name="uq_editions_campaign_slot"),
    )
    op.create_table(
        "edition_items",
        sa.Column(
            "edition_id",
            sa.Integer,
            sa.ForeignKey("editions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("item_id", sa.String(512), primary_key=True),
        sa.Column("section", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.Text),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active", index=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "edition_id",
            sa.Integer,
            sa.ForeignKey("editions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("batch", sa.Integer, index=True),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending", index=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("edition_id", "subscriber_id", name="uq_deliveries_edition_subscriber"),
    )
    op.create_table(
        "campaign_state",
        sa.Column("campaign", sa.String(200), primary_key=True),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("watched_since", UTCDateTime()),
    )
    op.create_table(
        "schedule_slots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign", sa.String(200), nullable=False, index=True),
        sa.Column("slot", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("edition_id", sa.Integer),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("campaign", "slot", name="uq_schedule_slots_campaign_slot"),
    )


def downgrade() -> None:
    for table in (
        "schedule_slots",
        "campaign_state",
        "deliveries",
        "subscribers",
        "edition_items",
        "editions",
        "source_state",
        "items",
    ):
        op.drop_table(table)
