"""Each subscriber's address hashed as the suppression list keeps it (issue 22's review:
with one suppression, every send, audience count and broadcast page hashed every active
subscriber's address in Python: 20 s at 1,000,000 people). `subscribers.email_hash` holds
`store.subscribers.stored_email_hash(email)`, indexed, so the suppressed subscribers are
looked up from the (few) suppressions.

The backfill reads the rows by id in batches (bounded memory) and hashes them with the
same function the writers use (one hashing rule); on PostgreSQL a table rewrite fills it
first (see _PG_FILL) and the batches only check it. Then the column is required:
PostgreSQL's SET NOT NULL (one scan, no rewrite); SQLite cannot add NOT NULL to a column
without rebuilding the table (1,000,000 rows copied, and the triggers of 0022, 0023 and
0030 dropped with it), so there two triggers refuse a row without a hash instead.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from publisher.store.subscribers import stored_email_hash

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

BATCH = 20_000

_READ = sa.text(
    "SELECT id, email, email_hash FROM subscribers WHERE id > :after ORDER BY id LIMIT :n"
)
_WRITE = sa.text("UPDATE subscribers SET email_hash = :h WHERE id = :id")
# PostgreSQL's first fill, one rewrite of the table (its indexes rebuilt once): the SHA-256
# of the address as stored, which is stored_email_hash's answer for every address stored
# normalised (what every writer stores); _backfill then checks every row against
# stored_email_hash itself and mends the others. (An UPDATE of 1,000,000 rows instead
# wrote a new version of each and an entry in every index: 243 s against 58 s.)
_PG_FILL = (
    "ALTER TABLE subscribers ALTER COLUMN email_hash TYPE VARCHAR(64) "
    "USING encode(sha256(convert_to(email, 'UTF8')), 'hex')"
)
# SQLite's stand-in for NOT NULL (no table rebuild): what the PostgreSQL column refuses
_SQLITE_REQUIRED = {
    "insert": "BEFORE INSERT",
    "update": "BEFORE UPDATE OF email, email_hash",
}


def _backfill(bind: Any) -> None:
    """Every row's email_hash made stored_email_hash(email), read by id in batches."""
    after = 0
    while True:
        rows = bind.execute(_READ, {"after": after, "n": BATCH}).all()
        if not rows:
            return
        wrong = [
            {"h": digest, "id": row.id}
            for row in rows
            if (digest := stored_email_hash(row.email)) != row.email_hash
        ]
        if wrong:
            bind.execute(_WRITE, wrong)
        after = rows[-1].id


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    # (PostgreSQL: ADD COLUMN holds the table's exclusive lock until commit, so no write
    # lands between the fill and NOT NULL; SQLite's writer lock does the same.)
    op.add_column("subscribers", sa.Column("email_hash", sa.String(64), nullable=True))
    if not sqlite:
        op.execute(_PG_FILL)
    _backfill(bind)
    op.create_index("ix_subscribers_email_hash", "subscribers", ["email_hash"])
    if not sqlite:
        op.alter_column("subscribers", "email_hash", nullable=False)
        # the rewrite left the new column without statistics (autovacuum counts no change):
        # the planner then guessed a lookup of a few thousand hashes matched every row and
        # scanned the table (316 ms at 1,000,000 rows) instead of the index
        op.execute("ANALYZE subscribers")
        return
    for name, when in _SQLITE_REQUIRED.items():
        op.execute(
            f"CREATE TRIGGER subscribers_email_hash_{name} {when} ON subscribers "
            "FOR EACH ROW WHEN NEW.email_hash IS NULL "
            "BEGIN SELECT RAISE(ABORT, 'NOT NULL constraint failed: subscribers.email_hash'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _SQLITE_REQUIRED:
            op.execute(f"DROP TRIGGER IF EXISTS subscribers_email_hash_{name}")
    op.drop_index("ix_subscribers_email_hash", table_name="subscribers")
    # SQLite >= 3.35 drops a column in place (no triggers name it)
    op.drop_column("subscribers", "email_hash")
