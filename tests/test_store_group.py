"""Group commit (publisher/store/group.py), on SQLite and PostgreSQL: jobs waiting together
share one transaction, each in its own savepoint (a failing job is rolled back alone and
its caller gets its error), every caller is answered only once its job is committed, and
the ordinary store functions (a consent change, its webhook event, the audit row) run
unchanged inside a batch."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from publisher.store import Store, audit, open_store
from publisher.store.consent import Context
from publisher.store.group import Bulk, GroupCommit
from publisher.store.subscribers import Subscriber, count_by_status, find_subscriber
from publisher.subscribers.consent import StaffRefused, add_person
from tests.conftest import FIXED_NOW

CTX = Context(via="api", form="test")


def _adder(email: str):
    def job(store: Store) -> Subscriber:
        person = add_person(store, email, name=None, topics=["labor"], ctx=CTX, now=FIXED_NOW)
        audit.record(store, "api key: test", "api: subscriber added", email, ip=None, now=FIXED_NOW)
        return person

    return job


def _held(group: GroupCommit) -> tuple[threading.Event, threading.Event]:
    """Occupy the writer with a job that waits, so the next jobs queue up behind it."""
    started, release = threading.Event(), threading.Event()

    def wait(store: Store) -> None:
        started.set()
        release.wait()

    threading.Thread(target=group.run, args=(wait,), daemon=True).start()
    assert started.wait(60)
    return started, release


def _queued(group: GroupCommit, count: int) -> None:
    while group._jobs.qsize() < count:  # the callers' threads have put their jobs
        threading.Event().wait(0.005)


def test_waiting_jobs_commit_together_and_each_caller_gets_its_own_result(store, database_url):
    group = GroupCommit(store)
    try:
        _, release = _held(group)
        emails = [f"p{n}@example.org" for n in range(30)]
        with ThreadPoolExecutor(30) as pool:
            futures = [pool.submit(group.run, _adder(email)) for email in emails]
            _queued(group, 30)
            before = group.batches
            release.set()
            people = [future.result(60) for future in futures]
        assert group.batches == before + 2  # the held job's batch, then all thirty in one
        assert [p.email for p in people] == emails and all(p.status == "active" for p in people)
        other = open_store(database_url)  # another connection sees every answered create
        try:
            assert count_by_status(other) == {"active": 30}
            assert (
                len([e for e in audit.recent(other, limit=100) if e.actor.endswith("test")]) == 30
            )
        finally:
            other.close()
    finally:
        group.close()


@pytest.mark.parametrize("nested", [True, False])
def test_a_failing_job_is_rolled_back_alone(store, nested):
    group = GroupCommit(store, nested=nested)
    try:
        add_person(store, "taken@example.org", name=None, topics=[], ctx=CTX, now=FIXED_NOW)
        _, release = _held(group)

        def half_done(s: Store) -> None:
            add_person(s, "half@example.org", name=None, topics=[], ctx=CTX, now=FIXED_NOW)
            raise RuntimeError("after a write")

        jobs = [_adder("a@example.org"), _adder("taken@example.org"), half_done]
        jobs.append(_adder("b@example.org"))
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(group.run, job) for job in jobs]
            _queued(group, 4)
            release.set()
            assert futures[0].result(60).email == "a@example.org"
            with pytest.raises(StaffRefused):
                futures[1].result(60)
            with pytest.raises(RuntimeError):
                futures[2].result(60)
            assert futures[3].result(60).email == "b@example.org"
        assert find_subscriber(store, email="half@example.org") is None
        assert count_by_status(store) == {"active": 3}
    finally:
        group.close()


def test_a_duplicate_within_one_batch_is_refused_not_doubled(store):
    group = GroupCommit(store)
    try:
        _, release = _held(group)
        with ThreadPoolExecutor(5) as pool:
            futures = [pool.submit(group.run, _adder("same@example.org")) for _ in range(5)]
            _queued(group, 5)
            release.set()
            outcomes = [f.exception(60) for f in futures]
        assert sum(o is None for o in outcomes) == 1
        assert all(isinstance(o, StaffRefused) for o in outcomes if o is not None)
        assert count_by_status(store) == {"active": 1}
    finally:
        group.close()


def test_a_batch_whose_commit_fails_runs_each_job_alone(tmp_path):
    """SQLite checks a deferred foreign key at COMMIT: a job that breaks one fails the
    batch's commit; run again alone, the others commit and only that one fails."""
    store = open_store(f"sqlite:///{tmp_path}/group.db")
    group = GroupCommit(store)
    try:
        _, release = _held(group)

        def breaks_commit(s: Store) -> None:
            with s.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
                connection.exec_driver_sql(
                    "INSERT INTO subscriber_pauses (subscriber_id, until) "
                    "VALUES (999999, '2026-12-01 00:00:00.000000')"
                )

        jobs = [_adder("a@example.org"), breaks_commit, _adder("b@example.org")]
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(group.run, job) for job in jobs]
            _queued(group, 3)
            release.set()
            assert futures[0].result(60).email == "a@example.org"
            assert futures[1].exception(60) is not None
            assert futures[2].result(60).email == "b@example.org"
        assert count_by_status(store) == {"active": 2}
    finally:
        group.close()
        store.close()


def test_a_bulk_that_fails_after_writing_is_rolled_back_and_its_jobs_run_alone(store):
    """A Bulk's `many` writes, then raises: its writes are gone (its savepoint, plain SQL
    on SQLite), the job before it in the batch is kept, and each of its items runs alone."""
    group = GroupCommit(store)
    try:
        _, release = _held(group)

        def many(s: Store, emails: list[str]) -> list[tuple[Any, BaseException | None]]:
            for email in emails:
                add_person(s, email, name=None, topics=[], ctx=CTX, now=FIXED_NOW)
            raise RuntimeError("after the writes")

        def alone(s: Store, email: str) -> str:
            return add_person(s, email, name=None, topics=[], ctx=CTX, now=FIXED_NOW).email

        bulk = Bulk(many, alone)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(group.run, _adder("first@example.org"))
            _queued(group, 1)
            futures = [group.submit(bulk, f"{n}@example.org") for n in ("x", "y", "x")]
            release.set()
            assert first.result(60).email == "first@example.org"
        assert futures[0].result(60) == "x@example.org"
        assert futures[1].result(60) == "y@example.org"
        with pytest.raises(StaffRefused):  # stored by the first x, alone: not doubled
            futures[2].result(60)
        assert group.batches == 2  # the held job's, then the rest together
        assert count_by_status(store) == {"active": 3}
    finally:
        group.close()


def test_writers_of_two_processes_take_turns_through_the_lock_file(tmp_path):
    """Two group commits on one SQLite file (as two `serve --workers` processes have): while
    one holds its turn, the other's writer waits on the flock of `<database>-writers` (the
    kernel lists it as a blocked waiter), and writes as soon as the turn is given back."""
    import os
    import time

    url = f"sqlite:///{tmp_path}/turns.db"
    first_store, second_store = open_store(url), open_store(url)
    first, second = GroupCommit(first_store), GroupCommit(second_store)
    first._start()
    assert os.path.exists(f"{tmp_path}/turns.db-writers")
    waiting = f"{os.stat(f'{tmp_path}/turns.db-writers').st_ino}"

    def blocked() -> bool:  # /proc/locks marks a waiter "->"; the file by its inode
        with open("/proc/locks") as locks:
            return any("->" in line and f":{waiting} " in line for line in locks)

    with ThreadPoolExecutor(1) as pool:
        with first._turn():
            done = pool.submit(second.run, _adder("turn@example.org"))
            deadline = time.monotonic() + 30  # bounds a hang only
            while not blocked():
                assert time.monotonic() < deadline and not done.done(), "never waited"
                time.sleep(0.01)
            assert find_subscriber(first_store, email="turn@example.org") is None
        assert done.result(timeout=30).email == "turn@example.org"
    first.close()
    second.close()
    first_store.close()
    second_store.close()
