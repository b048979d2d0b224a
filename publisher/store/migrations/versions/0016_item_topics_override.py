"""Staff correct an item's topics (issue 20, the items page): the override every later
stage reads instead of the source's topics, kept across collects (the source's own topics
stay in `topics`, updated by each collect); who set it and when. Indexes for the items
page: newest first by (published, id) for its keyset pages, and the editions an item was in.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("topics_override", sa.JSON(none_as_null=True), nullable=True))
        batch.add_column(sa.Column("topics_override_by", sa.String(320), nullable=True))
        batch.add_column(sa.Column("topics_override_at", UTCDateTime(), nullable=True))
    op.create_index("ix_items_published_id", "items", ["published", "id"])
    op.create_index("ix_edition_items_item_id", "edition_items", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_edition_items_item_id", table_name="edition_items")
    op.drop_index("ix_items_published_id", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("topics_override_at")
        batch.drop_column("topics_override_by")
        batch.drop_column("topics_override")
