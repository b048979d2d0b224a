"""Content: retired items and other content-side state (issue 9).

Items remember where they came from (`origin`) and can be retired (`retired_at`,
`retired_reason`); the feed builder's state moves out of the published feeds/ folder into
`publish_state`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("origin", sa.Text))
    op.add_column("items", sa.Column("retired_at", UTCDateTime()))
    op.add_column("items", sa.Column("retired_reason", sa.Text))
    op.create_index("ix_items_retired_at", "items", ["retired_at"])
    op.create_table(
        "publish_state",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("publish_state")
    with op.batch_alter_table("items") as batch:
        batch.drop_index("ix_items_retired_at")
        batch.drop_column("retired_reason")
        batch.drop_column("retired_at")
        batch.drop_column("origin")
