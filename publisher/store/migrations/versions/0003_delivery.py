"""Delivery: batches, outcomes and bounces (issue 10).

`delivery_batches`: one row per batch request of an edition (its provider batch id and
delivery time in exactly-once mode, what became of it); `subscribers.status_reason`: why a
subscriber stopped receiving (the server's text of a bounce).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_batches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "edition_id",
            sa.Integer,
            sa.ForeignKey("editions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("provider_id", sa.String(200)),
        sa.Column("send_at", UTCDateTime()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("cancel_cleared", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("detail", sa.Text),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("edition_id", "number", name="uq_delivery_batches_edition_number"),
    )
    op.create_index("ix_delivery_batches_status", "delivery_batches", ["status"])
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("status_reason", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("status_reason")
    op.drop_index("ix_delivery_batches_status", "delivery_batches")
    op.drop_table("delivery_batches")
