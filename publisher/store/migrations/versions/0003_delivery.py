"""Delivery: batches, outcomes and bounces (issue 10).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
