"""Each subscriber's address hashed as the suppression list keeps it (issue 22's review:
with one suppression, every send, audience count and broadcast page hashed every active
subscriber's address in Python: 20 s at 1,000,000 people). `subscribers.email_hash` holds
`store.subscribers.stored_email_hash(email)`, indexed, so a suppression is matched by a
join driven from the (few) suppressions.

The backfill reads the rows by id in batches (bounded memory) and hashes them with the same
function the writers use (one hashing rule); a batch is one statement. Then the column is
required: PostgreSQL's SET NOT NULL (one scan, no rewrite); SQLite cannot add NOT NULL to a
column without rebuilding the table (1,000,000 rows copied, and the triggers of 0022, 0023
and 0030 dropped with it), so there two triggers refuse a row without a hash instead.

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

_READ = sa.text("SELECT id, email FROM subscribers WHERE id > :after ORDER BY id LIMIT :n")
_SQLITE_WRITE = sa.text("UPDATE subscribers SET email_hash = :h WHERE id = :id")
# one statement a batch: PostgreSQL's statement-level triggers run once for it, not per row
_PG_WRITE = sa.text(
    "UPDATE subscribers SET email_hash = v.h "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:hashes AS text[])) AS v(id, h) "
    "WHERE subscribers.id = v.id"
)
_PG_UPDATE_TRIGGERS = ("subscriber_tallies_update", "subscriber_lists_update")
# SQLite's stand-in for NOT NULL (no table rebuild): what the PostgreSQL column refuses
_SQLITE_REQUIRED = {
    "insert": "BEFORE INSERT",
    "update": "BEFORE UPDATE OF email, email_hash",
}


def _backfill(bind: Any, sqlite: bool) -> None:
    after = 0
    while True:
        rows = bind.execute(_READ, {"after": after, "n": BATCH}).all()
        if not rows:
            return
        hashes = [stored_email_hash(email) for _, email in rows]
        if sqlite:
            bind.execute(
                _SQLITE_WRITE, [{"h": h, "id": row.id} for row, h in zip(rows, hashes, strict=True)]
            )
        else:
            bind.execute(_PG_WRITE, {"ids": [row.id for row in rows], "hashes": hashes})
        after = rows[-1].id


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    op.add_column("subscribers", sa.Column("email_hash", sa.String(64), nullable=True))
    # (PostgreSQL: ADD COLUMN holds the table's exclusive lock until commit, so no write
    # lands between the backfill and NOT NULL.) The hash moves no count: the update
    # triggers of 0022 and 0030 would only find nothing to change, batch after batch.
    for name in () if sqlite else _PG_UPDATE_TRIGGERS:
        op.execute(f"ALTER TABLE subscribers DISABLE TRIGGER {name}")
    _backfill(bind, sqlite)
    for name in () if sqlite else _PG_UPDATE_TRIGGERS:
        op.execute(f"ALTER TABLE subscribers ENABLE TRIGGER {name}")
    op.create_index("ix_subscribers_email_hash", "subscribers", ["email_hash"])
    if not sqlite:
        op.alter_column("subscribers", "email_hash", nullable=False)
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
