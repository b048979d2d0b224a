"""Staff steering a digest's next slot from its campaign page (issue 21): skip it once, or
move it once to another time (the cadence stays in schedules.yaml). One row per
(campaign, slot): the slot keeps its identity (its edition is still unique per slot), only
when it runs changes.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slot_overrides",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("slot", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("moved_to", UTCDateTime(), nullable=True),
        sa.Column("by", sa.String(320), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("campaign", "slot", name="uq_slot_overrides_campaign_slot"),
    )


def downgrade() -> None:
    op.drop_table("slot_overrides")
