"""Sign-up that cannot be abused (issue 19): rate-limit counters kept in the store (shared
by every `publisher serve` process, pruned as their windows end), an opaque reference per
subscriber for confirmation links, and the token a subscriber had before the last rotation.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("window_start", sa.Integer, nullable=False),
        sa.Column("expires", sa.Integer, nullable=False, index=True),
        sa.Column("hits", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("ref", sa.String(32), nullable=True))
        batch.add_column(sa.Column("retired_token", sa.String(64), nullable=True))
        batch.create_index("ix_subscribers_ref", ["ref"], unique=True)
        batch.create_index("ix_subscribers_retired_token", ["retired_token"])
    # existing subscribers get their reference now (new ones get it when they are written)
    subscribers = sa.table("subscribers", sa.column("id", sa.Integer), sa.column("ref"))
    connection = op.get_bind()
    ids: list[int] = list(connection.execute(sa.select(subscribers.c.id)).scalars())
    update = (
        subscribers.update()
        .where(subscribers.c.id == sa.bindparam("sid"))
        .values(ref=sa.bindparam("new_ref"))
    )
    for start in range(0, len(ids), 1000):
        rows = [{"sid": i, "new_ref": secrets.token_urlsafe(12)} for i in ids[start : start + 1000]]
        connection.execute(update, rows)


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_index("ix_subscribers_retired_token")
        batch.drop_index("ix_subscribers_ref")
        batch.drop_column("retired_token")
        batch.drop_column("ref")
    op.drop_table("rate_limits")
