"""Approval before a send (issue 21): the send permission owners grant to editors, and the
requests for and decisions on one version of a broadcast or of a campaign's next edition.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_permissions",
        sa.Column(
            "staff_id",
            sa.Integer,
            sa.ForeignKey("staff.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("granted_by", sa.String(320), nullable=False),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_by", sa.String(320), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("decided_by", sa.String(320), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_approvals_subject", "approvals", ["kind", "subject", "id"])
    op.create_index("ix_approvals_status", "approvals", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_approvals_status", "approvals")
    op.drop_index("ix_approvals_subject", "approvals")
    op.drop_table("approvals")
    op.drop_table("send_permissions")
