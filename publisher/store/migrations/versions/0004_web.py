"""Subscriber web: consent, events, suppression (issue 11).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriber_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("via", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20)),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.Text),
        sa.Column("form", sa.String(200)),
        sa.Column("consent_text", sa.Text),
        sa.Column("detail", sa.Text),
    )
    op.create_table(
        "subscriber_pauses",
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("until", UTCDateTime(), nullable=False, index=True),
    )
    op.create_table(
        "suppressions",
        sa.Column("email_hash", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "webhook_events",
        sa.Column("sg_event_id", sa.String(100), primary_key=True),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("email", sa.String(320), index=True),
        sa.Column("edition_id", sa.Integer, index=True),
        sa.Column("url", sa.Text),
        sa.Column("detail", sa.Text),
        sa.Column("occurred_at", UTCDateTime()),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("webhook_events", "suppressions", "subscriber_pauses", "subscriber_history"):
        op.drop_table(table)
