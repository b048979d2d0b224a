"""`GET /api/v1/events` pages subscriber history in commit-safe order: each history row
keeps the id of the transaction that inserted it (`txid`).

On PostgreSQL a row's id is taken at INSERT, not at commit: a long transaction (a SendGrid
batch, `record_events`) can commit a lower id after a short one (a one-click unsubscribe)
committed a higher id, and a client paging by id would have moved past the lower id for
good. `txid` defaults to the inserting transaction's id (`pg_current_xact_id()`), the API
pages by (txid, id) and hands out only rows of transactions below the oldest one still
running (publisher.store.api_pages), so the order is fixed before anyone reads it. The
rows already there get 0: they come first, by id, so a cursor of the id-only kind still
continues where it was. The index on (txid, id) serves that page.

SQLite has one writer at a time: ids commit in order, the column stays 0 and no index is
made (the page goes by id).

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

INDEX = "ix_subscriber_history_txid_id"


def upgrade() -> None:
    with op.batch_alter_table("subscriber_history") as batch:
        batch.add_column(sa.Column("txid", sa.BigInteger, nullable=False, server_default="0"))
    if op.get_bind().dialect.name != "postgresql":
        return
    # after the backfill with 0: only rows inserted from now on take their transaction's id
    op.alter_column(
        "subscriber_history",
        "txid",
        server_default=sa.text("pg_current_xact_id()::text::bigint"),
    )
    op.create_index(INDEX, "subscriber_history", ["txid", "id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(INDEX, table_name="subscriber_history")
    with op.batch_alter_table("subscriber_history") as batch:
        batch.drop_column("txid")
