"""Staff dashboard: staff accounts, audit log, login failures, source health (issue 13).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False, index=True),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("ip", sa.String(64)),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(400), nullable=False, index=True),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "source_runs",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("last_run_at", UTCDateTime(), nullable=False),
        sa.Column("last_ok_at", UTCDateTime()),
        sa.Column("failing_since", UTCDateTime()),
        sa.Column("problems", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("source_runs", "login_failures", "audit_log", "staff"):
        op.drop_table(table)
