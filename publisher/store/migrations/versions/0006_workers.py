"""Send work items: an edition's batches as rows that workers claim under a lease, the
planning cursor they share, and slot leases for daemons on several hosts (issue 12).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from publisher.store import dialect
from publisher.store.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_work",
        sa.Column(
            "edition_id",
            sa.Integer,
            sa.ForeignKey("editions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("claims", sa.Integer, nullable=False),
        sa.Column("first_id", sa.Integer, nullable=False),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_send_work_open", "send_work", ["status", "edition_id", "number"])
    # where the claimers of an edition's send are in its audience (publisher.store.plan)
    op.create_table(
        "send_plans",
        sa.Column(
            "edition_id",
            sa.Integer,
            sa.ForeignKey("editions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("after_id", sa.Integer, nullable=False),
        sa.Column("next_number", sa.Integer, nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    # a daemon's claim on a slot lapses unless it renews it (epoch seconds)
    with op.batch_alter_table("schedule_slots") as batch:
        batch.add_column(sa.Column("lease_until", sa.Float, nullable=True))
    # a batch's ledger rows are read and updated by (edition, batch); every query of the
    # ledger names its edition, so the single-column indexes only cost: each status change
    # of every row updated them (and kept PostgreSQL from updating rows in place, HOT)
    op.create_index("ix_deliveries_edition_batch", "deliveries", ["edition_id", "batch"])
    op.drop_index("ix_deliveries_status", "deliveries")
    op.drop_index("ix_deliveries_batch", "deliveries")
    dialect.leave_room_for_updates(op.get_bind(), "deliveries")
    # the ledger's rows are written by INSERT ... SELECT from subscribers (the subscriber
    # exists) for the edition being sent (editions are never deleted)
    dialect.drop_foreign_keys(op.get_bind(), "deliveries")


def downgrade() -> None:
    dialect.restore_foreign_keys(
        op,
        "deliveries",
        [("edition_id", "editions", "CASCADE"), ("subscriber_id", "subscribers", None)],
    )
    op.create_index("ix_deliveries_batch", "deliveries", ["batch"])
    op.create_index("ix_deliveries_status", "deliveries", ["status"])
    op.drop_index("ix_deliveries_edition_batch", "deliveries")
    with op.batch_alter_table("schedule_slots") as batch:
        batch.drop_column("lease_until")
    op.drop_table("send_plans")
    op.drop_index("ix_send_work_open", "send_work")
    op.drop_table("send_work")
