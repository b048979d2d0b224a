"""The staff's subscriber search at a million subscribers (issue 20's benchmark): "address
or name contains" is a LIKE '%...%' that no b-tree can serve, so it read every row (~800 ms
on PostgreSQL, ~200 ms on SQLite). Trigram indexes serve it instead.

PostgreSQL: pg_trgm's GIN indexes on the address and the name serve LIKE and ILIKE with a
leading wildcard, chosen by the planner.

The extension is created here when the migrating role may (PostgreSQL 13+ trusts pg_trgm:
a role with CREATE on the database may, superuser or not). When it may not, or the server
lacks the extension, the migration goes on without the indexes and the search still works,
by reading every row (docs/operators.md says how to add them later).

SQLite: an FTS5 table with the trigram tokenizer over the address and the name
(`subscribers_search`, its content read from `subscribers` itself), kept by triggers on
every write path like migration 0022's tallies; publisher.store.dashboard asks it for the
candidate rows (a phrase of three characters or more) and checks each with the same LIKE.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

INDEXES = {"ix_subscribers_email_trgm": "email", "ix_subscribers_name_trgm": "name"}


def _trigrams_available(bind: sa.engine.Connection) -> bool:
    """Whether pg_trgm is (or could now be) installed in this database. The attempt runs in
    a savepoint: a refusal must not abort the migration's own transaction."""
    found = "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"
    if bind.execute(sa.text(found)).first() is not None:
        return True
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:  # no rights, or the contrib package is not installed
        reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
        log.warning("pg_trgm not available (%s): subscriber search reads every row", reason)
        return False
    return True


_SQLITE_ROW = (
    "INSERT INTO subscribers_search (rowid, email, name) VALUES (NEW.id, NEW.email, NEW.name)"
)
_SQLITE_GONE = (
    "INSERT INTO subscribers_search (subscribers_search, rowid, email, name) "
    "VALUES ('delete', OLD.id, OLD.email, OLD.name)"
)
_SQLITE_TRIGGERS = {
    "insert": ("AFTER INSERT", [_SQLITE_ROW]),
    "update": ("AFTER UPDATE OF email, name", [_SQLITE_GONE, _SQLITE_ROW]),
    "delete": ("AFTER DELETE", [_SQLITE_GONE]),
}


def _sqlite() -> None:
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.execute(
                sa.text(
                    "CREATE VIRTUAL TABLE subscribers_search USING fts5(email, name, "
                    "content='subscribers', content_rowid='id', tokenize='trigram')"
                )
            )
    except sa.exc.OperationalError as exc:  # an SQLite built without FTS5 (or before 3.34)
        log.warning("no FTS5 trigram table (%s): subscriber search reads every row", exc.orig)
        return
    op.execute("INSERT INTO subscribers_search (subscribers_search) VALUES ('rebuild')")
    for name, (when, statements) in _SQLITE_TRIGGERS.items():
        body = "; ".join(statements)
        op.execute(
            f"CREATE TRIGGER subscribers_search_{name} {when} ON subscribers "
            f"FOR EACH ROW BEGIN {body}; END"
        )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _sqlite()
        return
    if not _trigrams_available(bind):
        return
    for name, column in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON subscribers USING gin ({column} gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS subscribers_search_{name}")
        op.execute("DROP TABLE IF EXISTS subscribers_search")
        return
    for name in INDEXES:  # the extension stays: other databases' objects may use it
        op.execute(f"DROP INDEX IF EXISTS {name}")
