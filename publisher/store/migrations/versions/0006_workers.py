"""Send work items: an edition's batches as rows that workers claim under a lease (issue 12).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

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
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_send_work_open", "send_work", ["status", "edition_id", "number"])
    # a batch's ledger rows are read and updated by (edition, batch)
    op.create_index("ix_deliveries_edition_batch", "deliveries", ["edition_id", "batch"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_edition_batch", "deliveries")
    op.drop_index("ix_send_work_open", "send_work")
    op.drop_table("send_work")
