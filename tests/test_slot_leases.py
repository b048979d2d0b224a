"""Slot claims are leases (issue 12, schedulers on several hosts): a claim holds while its
daemon renews it, a lapsed one is taken over by exactly one other daemon, claims from before
leases keep the old rule. With fake clocks, threads racing on the store (SQLite and
PostgreSQL), and real `publisher run` processes: one killed mid-send, one taking over."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from publisher.pipeline import SlotOutcome
from publisher.schedule.daemon import Daemon
from publisher.store import Store, processes
from publisher.store import schedule_state as state
from publisher.store.models import EditionRow, ScheduleSlotRow
from tests.conftest import BASE_CONFIG, ROOT
from tests.lease_support import (
    ELSEWHERE,
    LEASE,
    Clock,
    kill,
    publisher_process,
    race,
    sendgrid,  # noqa: F401 - the fixture
    wait_for,
)
from tests.servers.data import add_posts, add_subscribers
from tests.servers.sendgrid import FakeSendGrid

SLOT = datetime(2026, 11, 30, 14, tzinfo=UTC)  # a Monday, 09:00 in New York
CAMPAIGN = """\
campaigns:
  - name: weekly
    title: The Weekly
    subject: The Weekly
    cadence: "weekly: monday 09:00"
"""


def _row(store: Store, slot: datetime = SLOT) -> ScheduleSlotRow:
    with store.session() as session:
        row = session.scalar(select(ScheduleSlotRow).where(ScheduleSlotRow.slot == slot))
        assert row is not None
        session.expunge(row)
        return row


# --- the lease in the store ---------------------------------------------------------------


def test_a_claim_writes_its_owner_and_lease_and_finishing_clears_it(store):
    assert state.claim_slot(store, "weekly", SLOT, owner="host-a:1", now=SLOT, lease=LEASE)
    row = _row(store)
    assert (row.status, row.owner) == ("running", "host-a:1")
    assert row.lease_until == SLOT.timestamp() + 60
    later = SLOT + timedelta(seconds=50)
    assert state.renew_slot(store, "weekly", SLOT, owner="host-a:1", now=later, lease=LEASE)
    assert _row(store).lease_until == later.timestamp() + 60
    assert not state.renew_slot(store, "weekly", SLOT, owner="host-c:3", now=later, lease=LEASE)
    assert state.finish_slot(store, "weekly", SLOT, "sent", now=later, owner="host-a:1")
    assert (_row(store).status, _row(store).lease_until) == ("sent", None)
    # a finished slot is never renewed nor taken again
    assert not state.renew_slot(store, "weekly", SLOT, owner="host-a:1", now=later, lease=LEASE)
    assert not state.claim_slot(store, "weekly", SLOT, owner="host-c:3", now=later, lease=LEASE)


def test_a_lapsed_lease_is_taken_over_and_a_renewed_one_is_not(store):
    assert state.claim_slot(store, "weekly", SLOT, owner=ELSEWHERE, now=SLOT, lease=LEASE)
    me = processes.this_process()

    def take(at: datetime) -> bool:
        return state.claim_slot(store, "weekly", SLOT, owner=me, now=at, lease=LEASE)

    assert not take(SLOT + timedelta(seconds=59))
    # renewed every 20 s for three hours: never taken, long after the 2-hour rule of old
    moment = SLOT
    while moment < SLOT + timedelta(hours=3):
        moment += timedelta(seconds=20)
        assert state.renew_slot(store, "weekly", SLOT, owner=ELSEWHERE, now=moment, lease=LEASE)
        assert not take(moment + timedelta(seconds=59))
    assert state.unfinished_slots(store, "weekly", owner=me, now=moment) == []
    # the renewals stop (the daemon died): once the lease has lapsed, another takes it
    lapsed = moment + timedelta(seconds=61)
    assert state.unfinished_slots(store, "weekly", owner=me, now=lapsed, failed=False) == [SLOT]
    assert take(lapsed)
    row = _row(store)
    assert (row.owner, row.lease_until) == (me, lapsed.timestamp() + 60)
    # the old owner's heartbeat now finds the claim gone, and its outcome is not recorded
    assert not state.renew_slot(store, "weekly", SLOT, owner=ELSEWHERE, now=lapsed, lease=LEASE)
    assert not state.finish_slot(store, "weekly", SLOT, "sent", now=lapsed, owner=ELSEWHERE)
    assert _row(store).status == "running"


def test_a_claim_from_before_leases_keeps_the_old_rule(store):
    """A daemon of an older version wrote the claim (lease_until NULL) and is still sending
    during the upgrade: the new daemons use the old rule (2 hours without progress)."""
    assert state.claim_slot(store, "weekly", SLOT, owner=ELSEWHERE, now=SLOT)
    assert _row(store).lease_until is None
    me = processes.this_process()
    an_hour = SLOT + timedelta(hours=1)
    assert not state.claim_slot(store, "weekly", SLOT, owner=me, now=an_hour, lease=LEASE)
    stale = SLOT + state.DEFAULT_STALE_AFTER + timedelta(seconds=1)
    assert state.claim_slot(store, "weekly", SLOT, owner=me, now=stale, lease=LEASE)
    assert _row(store).lease_until == stale.timestamp() + 60  # now a lease like any other


def test_a_dead_process_of_this_host_loses_its_claim_at_once(store):
    dead = f"{processes.this_process().rpartition(':')[0]}:999999999"
    assert state.claim_slot(store, "weekly", SLOT, owner=dead, now=SLOT, lease=LEASE)
    assert state.claim_slot(store, "weekly", SLOT, owner="host-a:1", now=SLOT, lease=LEASE)


def test_two_daemons_racing_to_take_over_a_lapsed_claim_one_wins(store):
    lapsed = SLOT + timedelta(minutes=5)
    slots = [SLOT + timedelta(days=7 * n) for n in range(6)]
    for slot in slots:
        assert state.claim_slot(store, "weekly", slot, owner=ELSEWHERE, now=SLOT, lease=LEASE)
        owners = [f"host-{n}:1" for n in range(4)]
        results = race(
            [
                lambda o=o, s=slot: state.claim_slot(  # type: ignore[misc]
                    store, "weekly", s, owner=o, now=lapsed + (s - SLOT), lease=LEASE
                )
                for o in owners
            ]
        )
        assert results.count(True) == 1, results
        assert _row(store, slot).owner == owners[results.index(True)]


def test_a_takeover_from_a_state_already_taken_over_fails(store):
    """The two racers of the test above, interleaved for certain: both read the lapsed
    claim, then both take it over from what they read. The second UPDATE matches nothing."""
    assert state.claim_slot(store, "weekly", SLOT, owner=ELSEWHERE, now=SLOT, lease=LEASE)
    lapsed = SLOT + timedelta(minutes=5)
    read_by_c = state.get_slot(store, "weekly", SLOT)
    read_by_d = state.get_slot(store, "weekly", SLOT)
    assert read_by_c is not None and read_by_d is not None
    assert state.take_over(store, read_by_c, owner="host-c:3", now=lapsed, lease=LEASE)
    assert not state.take_over(store, read_by_d, owner="host-d:4", now=lapsed, lease=LEASE)
    assert _row(store).owner == "host-c:3"


# --- daemons: racing for a slot, the heartbeat, taking over -------------------------------


class EditionMaker:
    """Stands in for the pipeline: composes the slot's edition (a row unique per slot)."""

    def __init__(self, store: Store, hold: threading.Event | None = None) -> None:
        self.store, self.hold = store, hold
        self.runs: list[tuple[str, datetime]] = []
        self.entered = threading.Event()

    def __call__(self, name: str, slot: datetime, now: datetime) -> SlotOutcome:
        self.runs.append((name, slot))
        with self.store.session() as session:
            edition = EditionRow(
                campaign=name,
                number=len(self.runs),
                slot=slot,
                composed_at=now,
                subject="s",
                html="h",
                text="t",
                status="sent",
            )
            session.add(edition)
            session.flush()
            edition_id = edition.id
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(30), "the test never released the run"
        return SlotOutcome("sent", edition_id, "done")

    def release(self, thread: threading.Thread) -> None:
        assert self.hold is not None
        self.hold.set()
        thread.join(20)
        assert not thread.is_alive(), "the run did not end"


def _editions(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(EditionRow)) or 0)


def test_daemons_racing_for_a_slot_make_exactly_one_edition(make_config, store):
    config = make_config(CAMPAIGN)
    maker = EditionMaker(store)
    daemons = [
        Daemon(config, store, run_slot=maker, clock=lambda: SLOT, owner=f"host-{n}:1", lease=LEASE)
        for n in range(4)
    ]
    outcomes = race([lambda d=d: d.dispatch("weekly", SLOT, SLOT) for d in daemons])  # type: ignore[misc]
    said = [o for o in outcomes if isinstance(o, str)]
    assert len(said) == len(outcomes)
    assert sorted(said) == ["already taken (another daemon, or done)"] * 3 + ["sent done"]
    assert len(maker.runs) == 1 and _editions(store) == 1
    assert (_row(store).status, _row(store).lease_until) == ("sent", None)


def _held_run(make_config, store, lease: timedelta) -> tuple[Daemon, EditionMaker, Clock, list]:
    """A daemon running the slot in a thread until the test sets `maker.hold`."""
    clock = Clock(SLOT)
    maker = EditionMaker(store, hold=threading.Event())
    daemon = Daemon(
        make_config(CAMPAIGN), store, run_slot=maker, clock=clock, owner="host-a:1", lease=lease
    )
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(daemon.dispatch("weekly", SLOT, SLOT)))
    thread.start()
    assert maker.entered.wait(20), "the slot did not start"
    return daemon, maker, clock, [thread, outcome]


def test_the_heartbeat_renews_a_long_run_past_the_2_hour_mark(make_config, store):
    daemon, maker, clock, (thread, outcome) = _held_run(make_config, store, timedelta(seconds=0.3))
    try:
        clock.now = SLOT + timedelta(hours=3)  # composing and sending have taken 3 hours
        wait_for(lambda: (_row(store).lease_until or 0) >= clock.now.timestamp(), "a renewal")
        other = Daemon(daemon.config, store, run_slot=maker, clock=clock, owner=ELSEWHERE)
        assert other.lapsed_claims(clock.now) == []
        assert not state.claim_slot(store, "weekly", SLOT, owner=ELSEWHERE, now=clock.now)
    finally:
        maker.release(thread)
    assert outcome == ["sent done"] and len(maker.runs) == 1
    row = _row(store)
    assert (row.status, row.owner, row.lease_until) == ("sent", "host-a:1", None)


def test_a_heartbeat_that_finds_the_claim_taken_logs_it_and_stops_the_run(
    make_config, store, caplog
):
    caplog.set_level(logging.INFO, logger="publisher")
    daemon, maker, clock, (thread, outcome) = _held_run(make_config, store, timedelta(seconds=0.3))
    try:
        assert not daemon.should_stop("weekly", SLOT)
        # the host was suspended past its lease and a daemon elsewhere took the slot over
        with store.session() as session:
            session.execute(
                update(ScheduleSlotRow).values(owner=ELSEWHERE, lease_until=time.time() + 3600)
            )
        wait_for(lambda: daemon.should_stop("weekly", SLOT), "the heartbeat to notice")
        assert "the claim is no longer ours (host-a:1)" in caplog.text
    finally:
        maker.release(thread)
    assert outcome == ["sent done; not recorded: another daemon took the slot over"]
    assert (_row(store).status, _row(store).owner) == ("running", ELSEWHERE)


def test_a_running_daemon_takes_over_a_lapsed_claim(make_config, store):
    config = make_config(CAMPAIGN)
    assert state.claim_slot(store, "weekly", SLOT, owner=ELSEWHERE, now=SLOT, lease=LEASE)
    clock = Clock(SLOT + timedelta(seconds=30))
    maker = EditionMaker(store)
    daemon = Daemon(config, store, run_slot=maker, clock=clock, owner="host-a:1", lease=LEASE)
    assert daemon.takeover_every() == timedelta(seconds=20)
    assert daemon.lapsed_claims(clock.now) == []  # the other daemon's lease still holds
    clock.now = SLOT + timedelta(seconds=61)
    assert daemon.lapsed_claims(clock.now) == [("weekly", SLOT)]
    assert daemon.lapsed_claims(clock.now) == []  # reserved: the next scan leaves it alone
    assert daemon.dispatch("weekly", SLOT, clock.now) == "already running in this daemon"
    assert daemon.run_reserved("weekly", SLOT) == "sent done"
    assert maker.runs == [("weekly", SLOT)]
    assert (_row(store).status, _row(store).owner) == ("sent", "host-a:1")
    assert daemon.lapsed_claims(clock.now) == []


@pytest.mark.slow  # starts the real `publisher` command
def test_the_lease_option_is_bounded(project):
    (project / "schedules.yaml").write_text(BASE_CONFIG + CAMPAIGN, encoding="utf-8")
    for value in ("2", "3601"):
        result = subprocess.run(
            [sys.executable, "-m", "publisher.cli", "run", "--lease", value],
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert "--lease" in result.stderr and "Traceback" not in result.stderr


# --- real daemons: one killed mid-send, another takes the slot over after the lease -------

SUBSCRIBERS = 16
PROCESS_CAMPAIGN = """\
schedule:
  collect_every: "off"
  feeds_every: "off"
campaigns:
  - name: weekly
    title: The Weekly
    subject: The Weekly
    timezone: UTC
    cadence: "{cadence}"
    sections:
      - {{name: posts, kinds: [article], max: 5, title: Latest posts}}
delivery:
  backend: sendgrid
  sendgrid:
    host: {host}
    workers: 1
    batch_size: 4
"""


def _prepare(project: Path, store: Store, server: FakeSendGrid) -> list[str]:
    """A campaign whose one slot (a yearly 6-field cron) passed 20 s ago, within grace."""
    now = datetime.now(UTC).replace(microsecond=0)
    slot = now - timedelta(seconds=20)
    cron = f"{slot.second} {slot.minute} {slot.hour} {slot.day} {slot.month} *"
    text = BASE_CONFIG + PROCESS_CAMPAIGN.format(cadence=cron, host=server.url)
    (project / "schedules.yaml").write_text(text, encoding="utf-8")
    add_posts(store, now)
    state.watched_since(store, "weekly", now=now - timedelta(minutes=1))
    return add_subscribers(store, now, SUBSCRIBERS)


def _daemon(
    project: Path, url: str, log: str, kill_at: str | None = None, verbose: bool = False
) -> subprocess.Popen:
    args = [*(["-v"] if verbose else []), "run", "--lease", "3"]
    return publisher_process(project, url, log, *args, kill_at=kill_at)


@pytest.mark.slow
def test_a_killed_daemons_slot_is_taken_over_after_its_lease(
    project,
    store,
    database_url,
    sendgrid,  # noqa: F811 - the fixture imported above
):
    emails = _prepare(project, store, sendgrid)
    # daemon A runs the slot and is killed (SIGKILL) once 2 of its 4 batches are recorded
    first = _daemon(project, database_url, "a.log", kill_at="finish.after:2")
    try:
        first.wait(30)
    finally:
        kill(first)
    assert first.returncode == -signal.SIGKILL, (project / "a.log").read_text()
    claim = _row(store, state.slot_records(store, "weekly")[0].slot)
    assert (claim.status, claim.owner) == (
        "running",
        f"{processes.this_process().split(':')[0]}:{first.pid}",
    )
    assert len(sendgrid.recipients) == 8
    # make A a daemon of another host (its pid cannot be checked) whose lease still holds
    with store.session() as session:
        session.execute(
            update(ScheduleSlotRow)
            .where(ScheduleSlotRow.id == claim.id)
            .values(owner=ELSEWHERE, lease_until=time.time() + 3600)
        )
    second = _daemon(project, database_url, "b.log", verbose=True)  # -v: its scans are logged
    try:
        wait_for(lambda: "daemon running" in (project / "b.log").read_text(), "B to start", 30)

        def scans() -> int:  # B's completed looks for lapsed claims (APScheduler's own log)
            lines = (project / "b.log").read_text().splitlines()
            return sum("_takeover_job" in x and "executed successfully" in x for x in lines)

        # B looked at start-up and twice more since (every second): this one is not lapsed
        wait_for(lambda: scans() >= 2, "two of B's scans for lapsed claims", 30)
        assert _row(store, claim.slot).owner == ELSEWHERE and len(sendgrid.recipients) == 8
        until = time.time() + 2  # A's last heartbeat, then nothing: the lease lapses in 2 s
        with store.session() as session:
            session.execute(
                update(ScheduleSlotRow)
                .where(ScheduleSlotRow.id == claim.id)
                .values(lease_until=until)
            )
        early: list[str] = []

        def finished() -> bool:
            row = _row(store, claim.slot)  # read first, then the clock: no false alarm
            if row.owner != ELSEWHERE and time.time() < until:
                early.append(row.owner or "")
            return row.status == "sent"

        wait_for(finished, "B to finish the edition", 30)
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    finally:
        kill(second)
    log = (project / "b.log").read_text()
    assert early == [], "B took the slot over before the lease lapsed"
    assert f"taking over from {ELSEWHERE} (its lease lapsed at" in log and "outcome=sent" in log
    seen = Counter(sendgrid.recipients)
    assert set(seen) == set(emails) and max(seen.values()) == 1, seen
    assert _editions(store) == 1
