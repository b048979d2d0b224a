"""The heartbeats of running daemons and workers, so the dashboard can tell whether anything
will send (issue 21: a scheduler you can see).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_heartbeats",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("started", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False, index=True),
        sa.UniqueConstraint("host", "pid", "started"),
    )


def downgrade() -> None:
    op.drop_table("process_heartbeats")
