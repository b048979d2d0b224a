"""Subscriber counts kept by the database itself (issue 20: /admin at 1,000,000
subscribers): `subscriber_tallies` holds, per status, the number of subscribers (kind
'all'), of those with each topic (kind 'topic'), and of those with no topic (kind 'none').
Triggers on `subscribers` keep it exact on every write path (sign-up, import, staff,
webhook events, erasure, delete) without touching any of them; it is filled from the
existing rows here. And the edition page's recipients list gets the index its pages
are read along.

Each trigger writes its changes in ONE upsert, grouped and ordered by key, so two
transactions lock the tally rows in the same order (no deadlock between two single-row
writes on PostgreSQL) and an array with a repeated topic never updates a row twice.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_UPSERT = """INSERT INTO subscriber_tallies (status, kind, topic, n)
SELECT status, kind, topic, SUM(d) FROM ({rows}) AS changes
GROUP BY status, kind, topic HAVING SUM(d) <> 0 ORDER BY status, kind, topic
ON CONFLICT (status, kind, topic) DO UPDATE SET n = subscriber_tallies.n + excluded.n"""

# the tally rows of one subscriber (status s, topics t), each weighing d
_SQLITE_ROWS = """SELECT {s} AS status, 'all' AS kind, '' AS topic, {d} AS d
UNION ALL SELECT {s}, 'topic', value, {d} FROM json_each({t})
UNION ALL SELECT {s}, 'none', '', {d} WHERE json_array_length({t}) = 0"""
_SQLITE_ARRAY = "CASE WHEN json_type({v}.topics) = 'array' THEN {v}.topics ELSE '[]' END"

_PG_ARRAY = "CASE WHEN json_typeof({v}::json) = 'array' THEN {v}::json ELSE '[]'::json END"

# name: (when, the row versions it counts (OLD taken away, NEW added), condition)
_SQLITE_TRIGGERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "insert": ("AFTER INSERT", ("NEW",), ""),
    "update": (
        "AFTER UPDATE OF status, topics",
        ("OLD", "NEW"),
        "WHEN OLD.status IS NOT NEW.status OR OLD.topics IS NOT NEW.topics",
    ),
    "delete": ("AFTER DELETE", ("OLD",), ""),
}


def _sqlite_rows(which: tuple[str, ...]) -> str:
    return "\nUNION ALL ".join(
        _SQLITE_ROWS.format(
            s=f"{v}.status", t=_SQLITE_ARRAY.format(v=v), d="-1" if v == "OLD" else "1"
        )
        for v in which
    )


def _sqlite() -> None:
    for name, (when, which, condition) in _SQLITE_TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER subscriber_tallies_{name} {when} ON subscribers FOR EACH ROW "
            f"{condition} BEGIN {_UPSERT.format(rows=_sqlite_rows(which))}; END"
        )


def _pg_rows(table: str, d: str) -> str:
    """The tally rows of every subscriber in a transition table, each weighing d."""
    t = _PG_ARRAY.format(v="r.topics")
    return (
        f"SELECT r.status AS status, 'all' AS kind, '' AS topic, {d} AS d FROM {table} r "
        f"UNION ALL SELECT r.status, 'topic', e.value, {d} FROM {table} r, "
        f"json_array_elements_text({t}) e "
        f"UNION ALL SELECT r.status, 'none', '', {d} FROM {table} r "
        f"WHERE json_array_length({t}) = 0"
    )


# PostgreSQL: statement-level triggers over transition tables, ONE upsert a statement. A
# per-row upsert would rewrite the same tally row once per subscriber, and in one big
# transaction (a COPY, an UPDATE of many rows) each rewrite walks the chain of the row's
# earlier versions: quadratic. (Transition tables allow no column list: every UPDATE fires
# it, and the HAVING of the upsert drops a statement that changed no status or topics.)
_PG_TRIGGERS = {
    "insert": ("INSERT", "NEW TABLE AS new_rows", [("new_rows", "1")]),
    "update": (
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        [("old_rows", "-1"), ("new_rows", "1")],
    ),
    "delete": ("DELETE", "OLD TABLE AS old_rows", [("old_rows", "-1")]),
}


def _postgresql() -> None:
    for name, (event, referencing, tables) in _PG_TRIGGERS.items():
        rows = " UNION ALL ".join(_pg_rows(table, d) for table, d in tables)
        op.execute(
            f"CREATE FUNCTION subscriber_tallies_{name}() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$ BEGIN {_UPSERT.format(rows=rows)}; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER subscriber_tallies_{name} AFTER {event} ON subscribers "
            f"REFERENCING {referencing} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION subscriber_tallies_{name}()"
        )


def _fill(sqlite: bool) -> None:
    array = _SQLITE_ARRAY.format(v="s") if sqlite else _PG_ARRAY.format(v="s.topics")
    elements = "json_each" if sqlite else "json_array_elements_text"
    op.execute(
        "INSERT INTO subscriber_tallies (status, kind, topic, n) "
        "SELECT status, 'all', '', COUNT(*) FROM subscribers GROUP BY status"
    )
    op.execute(
        "INSERT INTO subscriber_tallies (status, kind, topic, n) "
        f"SELECT s.status, 'topic', e.value, COUNT(*) FROM subscribers s, {elements}({array}) e "
        "GROUP BY s.status, e.value"
    )
    op.execute(
        "INSERT INTO subscriber_tallies (status, kind, topic, n) "
        f"SELECT s.status, 'none', '', COUNT(*) FROM subscribers s "
        f"WHERE json_array_length({array}) = 0 GROUP BY s.status"
    )


def _recipient_index() -> None:
    """The edition page's recipients list, read a page at a time by (status, subscriber):
    0018's ledger index widened by the subscriber (same count of indexes to write)."""
    op.create_index(
        "ix_deliveries_edition_recipient",
        "deliveries",
        ["edition_id", "status", "subscriber_id", "updated_at"],
    )
    op.drop_index("ix_deliveries_edition_status", "deliveries")


def upgrade() -> None:
    _recipient_index()
    op.create_table(
        "subscriber_tallies",
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("status", "kind", "topic"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:  # no write may land between the fill and the triggers
        op.execute("LOCK TABLE subscribers IN SHARE ROW EXCLUSIVE MODE")
    _fill(sqlite)  # before the triggers, in the migration's own transaction
    if sqlite:
        _sqlite()
    else:
        _postgresql()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER subscriber_tallies_{name}")
    else:
        for name in _PG_TRIGGERS:
            op.execute(f"DROP TRIGGER subscriber_tallies_{name} ON subscribers")
            op.execute(f"DROP FUNCTION subscriber_tallies_{name}()")
    op.drop_table("subscriber_tallies")
    op.create_index(
        "ix_deliveries_edition_status", "deliveries", ["edition_id", "status", "updated_at"]
    )
    op.drop_index("ix_deliveries_edition_recipient", "deliveries")
