"""Subscribers per status and topic list, kept by the database itself (issue 20: the
audience count at 1,000,000 subscribers): `subscriber_lists` holds, per status and per
distinct `topics` value as text (what `CAST(topics AS TEXT)` gives, exactly as the old
GROUP BY saw it), the number of subscribers. Triggers on `subscribers` keep it exact on
every write path, as 0022's keep `subscriber_tallies`; it is filled from the existing
rows here. store.audience_counts.count_reachable reads a few hundred rows of it instead of
grouping every active subscriber.

The key: a topic list has no length limit (an import, the API: 50 topics of 100
characters), and a PostgreSQL btree entry holds at most ~2,700 bytes, so PostgreSQL keys
the row by md5 of the text; SQLite has no such limit (and no md5): its key is the text.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

# one upsert a trigger, grouped and ordered by key (the same lock order in every writer)
_UPSERT = """INSERT INTO subscriber_lists (status, digest, topics, n)
SELECT status, digest, topics, SUM(d) FROM ({rows}) AS changes
GROUP BY status, digest, topics HAVING SUM(d) <> 0 ORDER BY status, digest
ON CONFLICT (status, digest) DO UPDATE SET n = subscriber_lists.n + excluded.n"""

# the text of a row's topics, as the old GROUP BY's CAST gave it ('' for an SQL NULL)
_TEXT = "COALESCE(CAST({v}.topics AS TEXT), '')"

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

# PostgreSQL: statement-level triggers over transition tables, one upsert a statement
# (why: see 0022); every UPDATE fires it, the HAVING drops a statement changing nothing
_PG_TRIGGERS = {
    "insert": ("INSERT", "NEW TABLE AS new_rows", [("new_rows", "1")]),
    "update": (
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        [("old_rows", "-1"), ("new_rows", "1")],
    ),
    "delete": ("DELETE", "OLD TABLE AS old_rows", [("old_rows", "-1")]),
}


def _sqlite_rows(which: tuple[str, ...]) -> str:
    return "\nUNION ALL ".join(
        f"SELECT {v}.status AS status, {_TEXT.format(v=v)} AS digest, "
        f"{_TEXT.format(v=v)} AS topics, {'-1' if v == 'OLD' else '1'} AS d"
        for v in which
    )


def _sqlite() -> None:
    for name, (when, which, condition) in _SQLITE_TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER subscriber_lists_{name} {when} ON subscribers FOR EACH ROW "
            f"{condition} BEGIN {_UPSERT.format(rows=_sqlite_rows(which))}; END"
        )


def _pg_rows(table: str, d: str) -> str:
    text = _TEXT.format(v="r")
    return (
        f"SELECT r.status AS status, md5({text}) AS digest, {text} AS topics, {d} AS d "
        f"FROM {table} r"
    )


def _postgresql() -> None:
    for name, (event, referencing, tables) in _PG_TRIGGERS.items():
        rows = " UNION ALL ".join(_pg_rows(table, d) for table, d in tables)
        op.execute(
            f"CREATE FUNCTION subscriber_lists_{name}() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$ BEGIN {_UPSERT.format(rows=rows)}; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER subscriber_lists_{name} AFTER {event} ON subscribers "
            f"REFERENCING {referencing} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION subscriber_lists_{name}()"
        )


def _fill(sqlite: bool) -> None:
    text = _TEXT.format(v="s")
    digest = text if sqlite else f"md5({text})"
    op.execute(
        "INSERT INTO subscriber_lists (status, digest, topics, n) "
        f"SELECT s.status, {digest}, {text}, COUNT(*) FROM subscribers s "
        f"GROUP BY s.status, {text}"
    )


def upgrade() -> None:
    op.create_table(
        "subscriber_lists",
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("topics", sa.Text, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("status", "digest"),
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
            op.execute(f"DROP TRIGGER subscriber_lists_{name}")
    else:
        for name in _PG_TRIGGERS:
            op.execute(f"DROP TRIGGER subscriber_lists_{name} ON subscribers")
            op.execute(f"DROP FUNCTION subscriber_lists_{name}()")
    op.drop_table("subscriber_lists")
