"""Uploaded images kept in the store (issue 20): the bounded original and the email size,
as bytes (BLOB on SQLite, bytea on PostgreSQL), so every host has them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(60), nullable=False),
        sa.Column("media_type", sa.String(40), nullable=False),
        sa.Column("extension", sa.String(8), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("email_width", sa.Integer, nullable=False),
        sa.Column("email_height", sa.Integer, nullable=False),
        sa.Column("email_size", sa.Integer, nullable=False),
        sa.Column("alt", sa.Text, nullable=False),
        sa.Column("uploaded_by", sa.String(320), nullable=False),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("email_data", sa.LargeBinary, nullable=False),
        sqlite_autoincrement=True,  # ids never reused: file names are cached for a year
    )
    op.create_index("ix_media_uploaded_at", "media", ["uploaded_at"])


def downgrade() -> None:
    op.drop_index("ix_media_uploaded_at", table_name="media")
    op.drop_table("media")
