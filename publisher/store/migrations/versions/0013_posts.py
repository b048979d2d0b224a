"""Posts written in /admin and their revisions (issue 20, the newsroom).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("slug", sa.String(120), nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("date", UTCDateTime(), nullable=False, index=True),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("image", sa.Text),
        sa.Column("image_alt", sa.Text),
        sa.Column("external_url", sa.Text),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(320), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "post_revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "post_id",
            sa.Integer,
            sa.ForeignKey("posts.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("saved_by", sa.String(320), nullable=False),
        sa.Column("saved_at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("values", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("post_revisions")
    op.drop_table("posts")
