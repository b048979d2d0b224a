"""The store: SQLite (WAL) by default, PostgreSQL accepted. Schema via Alembic only.

`Store` is the connection (engine, sessions, retrying, migrating); every query and
transaction is a module function taking the store first (`items.upsert_items(store, ...)`,
`ledger.counts(store, ...)`) and returning dataclasses or plain values, never an ORM row.
Each module's `__all__` is its surface; tests/test_store_surface.py holds the rest of
the project to it.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from publisher.errors import StoreError
from publisher.store import dialect

__all__ = ["Store", "create_store_engine", "open_store"]

MIGRATIONS = Path(__file__).parent / "migrations"
# the session of the enclosing Store.one_transaction(), if any (per thread and task)
_SHARED: contextvars.ContextVar[tuple[Store, Session] | None] = contextvars.ContextVar(
    "publisher_store_shared", default=None
)
LOG = logging.getLogger(__name__)
T = TypeVar("T")


def create_store_engine(url: str, *, pool_size: int | None = None) -> Engine:
    """An engine for `url` (PUBLISHER_DATABASE_URL or database_url). Anything wrong with the
    URL is one StoreError line with the password hidden, never a traceback. `pool_size`:
    the connections the process's threads use at once (see publisher.store.dialect)."""
    try:
        parsed = dialect.driver_url(make_url(url))
        database = parsed.database
        if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
            _create_private(Path(database))
        options = dialect.engine_options(parsed.get_backend_name(), pool_size)
        engine = create_engine(parsed, future=True, **options)
    except (SQLAlchemyError, ImportError, ValueError, TypeError, OSError) as exc:
        raise StoreError(f"cannot open store {_redact(url)}: {_one_line(exc, url)}") from None
    dialect.on_connect(engine)
    return engine


_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (it holds subscribers' addresses
    and tokens) before SQLite opens it; SQLite gives its -wal and -shm files the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot create the store file {path}: {exc.strerror}") from None


def _redact(url: str) -> str:
    """Never print a database password (even of a URL SQLAlchemy cannot parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL: hide what looks like a password
        return _PASSWORD.sub(r"\1***@", url)


def _one_line(exc: BaseException, url: str) -> str:
    """A driver's message on one line, without the URL's password if it quotes it."""
    text = " ".join(str(exc).split()).replace(url, _redact(url))
    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001
        password = None
    return text.replace(str(password), "***") if password else text


class Store:
    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        self.url = url
        self.engine = create_store_engine(url, pool_size=pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def single_writer(self) -> bool:
        """One writer at a time for the whole database (SQLite)."""
        return dialect.single_writer(self.engine)

    def retrying(
        self,
        action: Callable[[], T],
        *,
        what: str,
        sleep: Callable[[float], None] = time.sleep,
        patience: float = 600.0,
    ) -> T:
        """Run one store transaction, again while the database is unreachable (a restart, a
        network cut), logged on every try; after about `patience` seconds the last error is
        raised (the CLI says it in one line). Only for transactions that are safe to repeat:
        a commit whose answer was lost may have happened, so the caller's statements must
        find their work done."""
        delay, waited = 0.5, 0.0
        while True:
            try:
                return action()
            except SQLAlchemyError as exc:
                if not dialect.lost_connection(exc) or waited >= patience:
                    raise
                reason = _one_line(getattr(exc, "orig", None) or exc, self.url).split(" [")[0]
                LOG.warning(
                    "database connection lost during %s (%s); retrying in %.1f s",
                    what, reason[:200], delay,
                )  # fmt: skip
                sleep(delay)
                waited += delay
                delay = min(delay * 2, 10.0)

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest Alembic revision."""
        # Imported here: Alembic is a fifth of the CLI's start-up, and --help, `check` and
        # configuration errors never open the store.
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:  # unreachable server, not a database file, no rights
            reason = _one_line(getattr(exc, "orig", None) or exc, self.url)
            raise StoreError(f"cannot migrate store {_redact(self.url)}: {reason}") from None

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: its own, or the enclosing `one_transaction()`'s."""
        shared = _SHARED.get()
        if shared is not None and shared[0] is self:
            yield shared[1]
            return
        with self._sessions.begin() as session:
            yield session

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A Core connection in one transaction: its own (engine.begin()), or the enclosing
        `one_transaction()`'s, so a plain statement joins it as a session would."""
        shared = _SHARED.get()
        if shared is not None and shared[0] is self:
            yield shared[1].connection()
            return
        with self.engine.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def one_transaction(self) -> Iterator[None]:
        """Every store call inside (in this thread or task) runs in one session and one
        transaction, committed at the end: a staff page that makes twenty store calls
        checks out, pings and BEGINs/COMMITs once instead of twenty times (round trips to
        PostgreSQL), and reads one snapshot. For read-mostly pages only: a call that
        catches its own statement's error and goes on cannot do so inside one. SQLite: each
        call keeps its own (no round trips to save; a read transaction that writes later
        would have to upgrade its lock, which another writer can refuse at once)."""
        if self.single_writer or ((shared := _SHARED.get()) is not None and shared[0] is self):
            yield
            return
        with self._sessions.begin() as session:
            token = _SHARED.set((self, session))
            try:
                yield
            finally:
                _SHARED.reset(token)

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, pool_size: int | None = None) -> Store:
    """Open and migrate the store at url."""
    store = Store(url, pool_size=pool_size)
    store.migrate()
    return store
