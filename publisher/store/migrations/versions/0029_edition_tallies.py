"""Edition tallies: an edition's ledger rows per status, counted when its send finishes,
for the staff pages (issue 20's benchmark); editions sent before this migration are
counted here once.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

# the statement publisher.store.ledger runs at a send's end, for every finished edition
BACKFILL = """
INSERT INTO edition_tallies (edition_id, status, count)
SELECT d.edition_id, d.status, count(*) FROM deliveries d
JOIN editions e ON e.id = d.edition_id
WHERE e.status NOT IN ('composed', 'sending') AND e.campaign NOT LIKE '~%'
GROUP BY d.edition_id, d.status
"""


def upgrade() -> None:
    op.create_table(
        "edition_tallies",
        sa.Column(
            "edition_id",
            sa.Integer,
            sa.ForeignKey("editions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("edition_tallies")
