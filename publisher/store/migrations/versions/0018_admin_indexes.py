"""Indexes the staff dashboard's counts need at a million subscribers (issue 20): new
subscribers by day (created_at), an edition's ledger by status (and when each row was last
written, for the hourly chart) and its webhook events by name (and address, for unique
recipients), each read from the index alone.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_subscribers_created_at", "subscribers", ["created_at"])
    op.create_index(
        "ix_deliveries_edition_status", "deliveries", ["edition_id", "status", "updated_at"]
    )
    op.create_index(
        "ix_webhook_events_edition_event", "webhook_events", ["edition_id", "event", "email"]
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_events_edition_event", "webhook_events")
    op.drop_index("ix_deliveries_edition_status", "deliveries")
    op.drop_index("ix_subscribers_created_at", "subscribers")
