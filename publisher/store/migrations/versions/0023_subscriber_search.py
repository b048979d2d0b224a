"""The staff's subscriber search at a million subscribers on PostgreSQL (issue 20's
benchmark): "address or name contains" is a LIKE '%...%' that no b-tree can serve, so it
read every row (~800 ms). pg_trgm's GIN indexes on the address and the name serve LIKE and
ILIKE with a leading wildcard.

The extension is created here when the migrating role may (PostgreSQL 13+ trusts pg_trgm:
a role with CREATE on the database may, superuser or not). When it may not, or the server
lacks the extension, the migration goes on without the indexes and the search still works,
by reading every row (docs/operators.md says how to add them later). SQLite's LIKE over the
table is fast enough at this size and needs nothing here.

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


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not _trigrams_available(bind):
        return
    for name, column in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON subscribers USING gin ({column} gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:  # the extension stays: other databases' objects may use it
        op.execute(f"DROP INDEX IF EXISTS {name}")
