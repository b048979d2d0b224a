"""Pending imports: a CSV of people uploaded in /admin, held between its preview and its
confirmation (issue 20).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "staff_id", sa.Integer, sa.ForeignKey("staff.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("totals", sa.JSON, nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
    )
    op.create_index("ix_pending_imports_staff_id", "pending_imports", ["staff_id"])
    op.create_index("ix_pending_imports_expires_at", "pending_imports", ["expires_at"])
    op.create_table(
        "pending_import_lines",
        sa.Column(
            "import_id",
            sa.Integer,
            sa.ForeignKey("pending_imports.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("line", sa.Integer, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("pending_import_lines")
    op.drop_index("ix_pending_imports_expires_at", "pending_imports")
    op.drop_index("ix_pending_imports_staff_id", "pending_imports")
    op.drop_table("pending_imports")
