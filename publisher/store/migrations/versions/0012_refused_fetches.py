"""A source remembers its last refused fetch (a decompression bomb, a redirect to a private
address), so it is not fetched again on every collect (issue 19).

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from publisher.store.models import UTCDateTime

revision = "0012"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_state") as batch:
        batch.add_column(sa.Column("refused_key", sa.Text, nullable=True))
        batch.add_column(sa.Column("refused_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("refused_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_state") as batch:
        batch.drop_column("refused_at")
        batch.drop_column("refused_reason")
        batch.drop_column("refused_key")
