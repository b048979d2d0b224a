"""A broadcast's claim is a lease (a send process killed mid-send is taken over): `owner`
(host:pid of the process sending it) and `lease_until` (epoch seconds), renewed by the
sender's heartbeat, cleared when the send ends. Broadcasts claimed before this have both
NULL: they keep the operator's `publisher broadcast send --resume`.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("owner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("owner")
