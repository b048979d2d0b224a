"""Group commit: many short writes from many threads, committed together.

SQLite has one writer: twenty request threads each opening their own write transaction
mostly wait on its lock (the busy handler sleeps up to 100 ms a try), and each commit
costs a WAL append. A `GroupCommit` has one writer thread that takes every job waiting,
runs each in its own SAVEPOINT of one transaction (a job that raises is rolled back alone,
its error given to its caller) and commits them together; each caller is answered only
once the batch has committed, so nothing is reported done that is not stored. On
PostgreSQL the same holds (a batch is one transaction; a unique row another process
inserts meanwhile waits for that process as a single insert would).

A job is a function of a `Store` joined to the batch's transaction: the ordinary store
functions run unchanged on it (their `engine.begin()` and `session()` become savepoints,
`engine.connect()` the batch's connection). A job must only touch the store (no mail, no
network: it may run twice, see below) and never commit by itself.

A `Bulk` job runs with the other jobs of the same Bulk in the batch as ONE call of its
`many` function, in one savepoint (a handful of statements for the lot instead of several
per job); if that call raises, it is rolled back and each of its jobs runs alone, in its
own savepoint, through `alone`.

If the batch's commit itself fails (the database went away, a PostgreSQL deadlock with
another process), every job of it runs again alone, in its own transaction, so one
failure fails one caller."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from publisher.store import Store

__all__ = ["Bulk", "GroupCommit", "one_write"]

T = TypeVar("T")
log = logging.getLogger("publisher.store.group")
BATCH_MOST = 200  # jobs a batch takes at most: bounds the wait of its first caller
_Outcome = tuple[Any, BaseException | None]  # a job's result, or its exception


@dataclass(frozen=True, eq=False)
class Bulk:
    """Jobs run together: `many(store, items)` gives each item's outcome, in order (a
    refusal is an outcome, not an exception); `alone(store, item)` runs one item by itself
    (its result, or it raises), when `many` raised or the batch failed to commit."""

    many: Callable[[Store, list[Any]], list[_Outcome]]
    alone: Callable[[Store, Any], Any]


@dataclass(frozen=True)
class _Job:
    run: Callable[[Store], Any]
    future: Future[Any]
    bulk: Bulk | None = None
    item: Any = None


class _JoinedEngine:
    """The parts of an Engine the store functions use, inside one connection's
    transaction; anything else (the dialect, the URL) is the real engine's."""

    def __init__(self, engine: Engine, connection: Connection, nested: bool) -> None:
        self._engine = engine
        self._connection = connection
        self._nested = nested

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        if not self._nested:  # the job's own savepoint is the only one
            yield self._connection
            return
        with self._connection.begin_nested():
            yield self._connection

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        yield self._connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class _JoinedStore(Store):
    """A Store whose transactions are savepoints of `connection`'s transaction."""

    def __init__(self, store: Store, connection: Connection, nested: bool) -> None:
        self.url = store.url  # no engine of its own
        self.engine = cast(Engine, _JoinedEngine(store.engine, connection, nested))
        self._connection = connection
        self._maker: sessionmaker[Session] | None = None

    @property
    def _sessions(self) -> sessionmaker[Session]:  # type: ignore[override]
        """Made on first use: the jobs of the API's batched creates open no session."""
        if self._maker is None:
            self._maker = sessionmaker(
                bind=self._connection,
                join_transaction_mode="create_savepoint",
                expire_on_commit=False,
            )
        return self._maker


@contextlib.contextmanager
def one_write(store: Store) -> Iterator[Store]:
    """A store whose every call (the ordinary store functions, unchanged) runs in one
    transaction, committed when the block ends and rolled back whole if it raises: a
    change and its audit row are stored together or not at all. On both databases, unlike
    Store.one_transaction (SQLite: the write lock is taken first, BEGIN IMMEDIATE, so no
    upgrade is refused later). Only store calls inside: no mail, no network."""
    with store.engine.connect() as connection:
        connection.begin()
        if store.single_writer:
            connection.connection.cursor().execute("BEGIN IMMEDIATE")
        try:
            yield _JoinedStore(store, connection, nested=True)
        except BaseException:
            connection.rollback()
            raise
        try:
            connection.commit()
        except Exception:
            connection.connection.rollback()  # SQLite keeps a failed COMMIT's transaction
            raise


def _writers_lock(store: Store) -> int | None:
    """A lock file beside a SQLite database for the writer threads' turns (not the
    database file itself: closing any descriptor of it drops SQLite's own POSIX locks)."""
    database = store.engine.url.database
    if not store.single_writer or not database or database == ":memory:":
        return None
    return os.open(f"{database}-writers", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


class GroupCommit:
    """One writer thread committing the jobs of many callers in batches (see the module)."""

    def __init__(self, store: Store, *, most: int = BATCH_MOST, nested: bool = True) -> None:
        """`nested=False`: a store function's `engine.begin()` inside a job opens no
        savepoint of its own (two statements fewer each): only for jobs none of whose store
        calls catches a failed statement and carries on (its writes before the failure
        would stay); a job that raises is still rolled back whole."""
        self.store = store
        self.most = most
        self.nested = nested
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0  # committed batches (the tests and the benchmark read it)
        self._lock_fd: int | None = None  # opened with the writer thread (_start)

    def run(self, job: Callable[[Store], T]) -> T:
        """Run `job` in the next batch; its result once that batch has committed (or its
        exception, nothing of it stored)."""
        future: Future[T] = Future()
        self._start()
        self._jobs.put(_Job(job, future))
        return future.result()

    def submit(self, bulk: Bulk, item: Any) -> Future[Any]:
        """Queue `item` for `bulk` in the next batch, without waiting: the future is
        resolved once that batch has committed (an asyncio caller wraps it)."""
        future: Future[Any] = Future()
        self._start()
        self._jobs.put(_Job(lambda store: bulk.alone(store, item), future, bulk, item))
        return future

    def close(self) -> None:
        """Finish the jobs queued and stop the writer thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _start(self) -> None:
        if self._thread is not None:  # running: no lock taken on every call
            return
        with self._lock:
            if self._thread is None:
                if self._lock_fd is None:
                    self._lock_fd = _writers_lock(self.store)
                self._thread = threading.Thread(target=self._loop, name="group-commit", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while (first := self._jobs.get()) is not None:
            batch = [first]
            stop = False
            while len(batch) < self.most:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            # a caller that gave up (an asyncio request cancelled) is not run at all
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if batch:
                self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Job]) -> None:
        try:
            outcomes = self._transaction(batch)
        except Exception as exc:  # the commit failed: each job alone, in its own transaction
            log.warning("a batch of %d failed to commit (%s): one at a time", len(batch), exc)
            for job in batch:
                self._alone(job)
            return
        self.batches += 1
        for job, (result, error) in zip(batch, outcomes, strict=True):
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)

    def _alone(self, job: _Job) -> None:
        try:
            ((result, error),) = self._transaction([job])
        except Exception as exc:
            result, error = None, exc
        if error is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error)

    def _transaction(self, batch: list[_Job]) -> list[_Outcome]:
        """Every job in its own savepoint (a Bulk's together in one) of one transaction,
        committed once."""
        outcomes: dict[int, _Outcome] = {}
        with self._turn(), self.store.engine.connect() as connection:
            if self.store.single_writer:  # take the write lock first: no upgrade refused later
                # SQLAlchemy's transaction (pysqlite emits nothing for it), then the DBAPI
                # cursor's BEGIN IMMEDIATE: exec_driver_sql's machinery cost more than it
                connection.begin()
                connection.connection.cursor().execute("BEGIN IMMEDIATE")
            joined = _JoinedStore(self.store, connection, self.nested)
            for index, job in enumerate(batch):
                if index in outcomes:
                    continue
                if job.bulk is None:
                    outcomes[index] = self._one(connection, joined, job)
                    continue
                together = [i for i in range(index, len(batch)) if batch[i].bulk is job.bulk]
                outcomes.update(self._together(connection, joined, job.bulk, batch, together))
            try:
                connection.commit()
            except Exception:
                # SQLite keeps a transaction whose COMMIT failed (a deferred constraint)
                # open, and the pool would hand it out so: end it here
                connection.connection.rollback()
                raise
        return [outcomes[index] for index in range(len(batch))]

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """On a SQLite file, the writer threads of several processes (serve --workers) take
        turns through one flock: the kernel wakes the next as soon as one commits, where
        SQLite's busy handler would sleep (1, 2, 5... 100 ms) and retry."""
        if self._lock_fd is None:
            yield
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _one(self, connection: Connection, joined: Store, job: _Job) -> _Outcome:
        savepoint = connection.begin_nested()
        try:
            result = job.run(joined)
        except Exception as exc:  # this job's failure is its caller's, not the batch's
            savepoint.rollback()
            return None, exc
        savepoint.commit()
        return result, None

    def _together(
        self, connection: Connection, joined: Store, bulk: Bulk, batch: list[_Job], at: list[int]
    ) -> dict[int, _Outcome]:
        """A Bulk's jobs in one call and one savepoint (its store functions open none of
        their own); each alone if the call raises."""
        keep, drop = self._savepoint(connection)
        try:
            flat = _JoinedStore(self.store, connection, nested=False)
            outcomes = bulk.many(flat, [batch[i].item for i in at])
            if len(outcomes) != len(at):
                raise RuntimeError("a Bulk gave an outcome per item it was not given")
        except Exception as exc:
            drop()
            log.warning("a bulk of %d failed together (%r): one at a time", len(at), exc)
            return {i: self._one(connection, joined, batch[i]) for i in at}
        keep()
        return dict(zip(at, outcomes, strict=True))

    def _savepoint(self, connection: Connection) -> tuple[Callable[[], Any], Callable[[], Any]]:
        """A savepoint: how to keep it and how to roll back to it. On SQLite, plain SQL
        through the DBAPI cursor (the transaction is SQLAlchemy's already: BEGIN IMMEDIATE
        went through it): begin_nested compiles its SAVEPOINT and RELEASE every time, a
        tenth of the writer's CPU with the API's batches of creates."""
        if not self.store.single_writer:
            savepoint = connection.begin_nested()
            return savepoint.commit, savepoint.rollback
        cursor = connection.connection.cursor()
        cursor.execute("SAVEPOINT bulk")  # its name is none of SQLAlchemy's (sa_savepoint_N)

        def drop() -> None:
            cursor.execute("ROLLBACK TO SAVEPOINT bulk")
            cursor.execute("RELEASE SAVEPOINT bulk")

        return lambda: cursor.execute("RELEASE SAVEPOINT bulk"), drop
