"""Everything that differs between SQLite and PostgreSQL, in one place.

* Claiming a work item: PostgreSQL locks the chosen row with `FOR UPDATE SKIP LOCKED`, so
  workers on many hosts each take a different one without waiting; SQLite has no row locks
  (a write locks the whole file, one writer at a time), so the same SELECT runs plain inside
  the claiming transaction and the conditional UPDATE after it is the guard.
* Storage: the ledger's pages keep room for updates on PostgreSQL (fillfactor).
* Foreign keys of the ledger: dropped on PostgreSQL (see drop_foreign_keys).
* A list of ids in a statement: PostgreSQL gets one array parameter (`= ANY(:ids)`), parsed
  and planned as one value; a thousand-item IN list costs it more than the rows it selects.
  SQLite compiles an IN list quickly (and has no arrays).
* Insert-if-absent (`ON CONFLICT DO NOTHING`): both dialects have it, each in its own
  SQLAlchemy module; whether the row went in is read by RETURNING (`insert_if_absent`):
  psycopg's rowcount for it is -1 either way.
* The connection pool: sized to the sending threads on PostgreSQL, checked before use
  (`pool_pre_ping`) so a connection the server dropped (a restart) is replaced, not
  handed out.
* A lost connection: what counts as one (retried by publisher.store.Store.retrying).
* The rows an UPDATE or DELETE changed: `rowcount(result)`, the one way the store reads it.
* A time as whole seconds since the epoch (`epoch_seconds`), so the dashboard counts per
  hour in SQL: SQLite keeps times as text, PostgreSQL as timestamptz.
* The elements of a JSON array in SQL (`json_elements`): a JSON array is unnested by
  `json_each` on SQLite, by `json_array_elements_text` on PostgreSQL.
* Rows in commit order (`oldest_running_transaction`): SQLite commits one writer at a time,
  so ids commit in order; PostgreSQL takes an id at INSERT, so a long transaction can
  commit a lower id after a short one committed a higher id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CursorResult,
    Engine,
    Integer,
    Result,
    Select,
    Table,
    Text,
    any_,
    bindparam,
    event,
    func,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, OperationalError


def driver_url(url: URL) -> URL:
    """`postgresql://` means psycopg 3 (the driver the project installs)."""
    if url.drivername == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def on_connect(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)


def single_writer(engine: Engine) -> bool:
    """SQLite: a write locks the whole file; PostgreSQL: rows."""
    return engine.dialect.name == "sqlite"


def skip_locked(engine: Engine, query: Select[Any], of: Table) -> Select[Any]:
    """Lock the rows of `of` the query picks (only those: a joined row stays free for other
    claimers), skipping rows another transaction holds."""
    if engine.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True, of=of)
    return query


def leave_room_for_updates(connection: Connection, table: str) -> None:
    """A table whose rows change state several times (the ledger: inflight, requested,
    sent): on PostgreSQL pages are left 40% free so an update can stay on its page and
    leave the indexes alone (a HOT update) instead of adding an entry to each."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"ALTER TABLE {table} SET (fillfactor = 60)")


def drop_foreign_keys(connection: Connection, table: str) -> None:
    """PostgreSQL checks a foreign key of every inserted row with a row lock on the row it
    points at (`SELECT ... FOR KEY SHARE`): for the ledger, a thousand locks of the one
    edition row and of each subscriber per batch, half the cost of writing the batch
    (44,000 against 99,000 rows/s on one connection here). SQLite's check is a lookup in
    the same file, without locks: kept there."""
    if connection.dialect.name != "postgresql":
        return
    names: list[str] = list(
        connection.exec_driver_sql(
            "SELECT conname FROM pg_constraint WHERE conrelid = %(table)s::regclass "
            "AND contype = 'f'",
            {"table": table},
        ).scalars()
    )
    for name in names:
        connection.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')


def restore_foreign_keys(
    operations: Any, table: str, keys: Sequence[tuple[str, str, str | None]]
) -> None:
    """Undo drop_foreign_keys (a downgrade): (column, referenced table, ON DELETE)."""
    if operations.get_bind().dialect.name != "postgresql":
        return
    for column, referenced, on_delete in keys:
        operations.create_foreign_key(None, table, referenced, [column], ["id"], ondelete=on_delete)


def in_ids(engine: Engine, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN ids` (integers), as the dialect does it fastest."""
    if engine.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=postgresql.ARRAY(Integer)))
    result: ColumnElement[bool] = column.in_(list(ids))
    return result


def epoch_seconds(engine: Engine, column: Any) -> ColumnElement[int]:
    """`column` (a UTC time) as integer seconds since 1970: exact, so hour buckets computed
    from it never drift by a float's rounding."""
    if engine.dialect.name == "postgresql":
        return func.floor(func.extract("epoch", column)).cast(BigInteger)
    return func.strftime("%s", column).cast(Integer)


def json_elements(engine: Engine, column: Any) -> Any:
    """The elements of a JSON array column as a table of text `value`s, one row each, to
    join with the column's own row."""
    name = "json_array_elements_text" if engine.dialect.name == "postgresql" else "json_each"
    return getattr(func, name)(column).table_valued("value")


def oldest_running_transaction(engine: Engine) -> ColumnElement[int] | None:
    """PostgreSQL: the id of the oldest transaction still running as this statement starts
    (its snapshot's xmin). Every transaction below it has finished, and none can start
    below it, so rows stamped with their inserting transaction's id (pg_current_xact_id())
    below it are all there is below it, for good. SQLite: None, ids commit in order."""
    if engine.dialect.name != "postgresql":
        return None
    xmin = func.pg_snapshot_xmin(func.pg_current_snapshot())
    return xmin.cast(Text).cast(BigInteger)


def insert_ignore(engine: Engine, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for `table`."""
    module: Any = postgresql if engine.dialect.name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()


def insert_if_absent(connection: Connection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING of one row: True if it was inserted. Read through
    RETURNING, not the rowcount: psycopg reports -1 for such an INSERT (inserted or not)."""
    module: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
    key = next(iter(table.primary_key.columns))
    statement = module.insert(table).on_conflict_do_nothing().returning(key)
    return connection.execute(statement.values(**values)).first() is not None


SQLITE_POOL = 40  # anyio's worker threads: every web request's thread may read at once


def engine_options(backend: str, pool_size: int | None) -> dict[str, Any]:
    if backend == "sqlite":
        # A file's connections are kept, as many as the web's threads: past SQLAlchemy's
        # default 5 + 10, each request opened (and ran the PRAGMAs of) a new one, and
        # closed it. A pool grows only as far as it is used.
        return {"pool_size": max(SQLITE_POOL, pool_size or 0)}
    if backend != "postgresql":
        return {}
    options: dict[str, Any] = {"pool_pre_ping": True}
    if pool_size:  # the sending threads, the claiming thread and the heartbeat
        options.update(pool_size=pool_size, max_overflow=2)
    return options


def lost_connection(exc: BaseException) -> bool:
    """The database went away (restart, network): the statement may be retried once it is
    back. Anything else (a constraint, a bug) is not retried."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        text = str(exc).lower()
        return (
            any(
                phrase in text
                for phrase in (
                    "connection",
                    "server closed",
                    "terminating",
                    "shutting down",
                    "starting up",
                    "could not receive",
                    "could not send",
                    "ssl syscall",
                )
            )
            and "database is locked" not in text
        )
    return False


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE changed, run by a Session or a Connection (SQLAlchemy
    gives either a CursorResult for them; its type says only Result)."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
