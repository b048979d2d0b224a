"""A broadcast's send claim is a lease (migration 0032), as a daemon's slot claim is: written by
whoever sends, renewed while it sends, cleared when it ends; a send whose process died (kill
-9) is taken over by exactly one daemon and finished, each person reached once; a live
sender's claim is left alone, however long the send takes. SQLite and PostgreSQL: the store
with fake clocks and racing threads, and real processes (`publisher broadcast send` killed
mid-send, then `publisher run`)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import update

from publisher.config import PublisherConfig, load_config
from publisher.deliver.backends.registry import make_backend
from publisher.deliver.base import Recipient
from publisher.deliver.broadcasts import send_broadcast
from publisher.schedule import broadcasts as jobs
from publisher.store import Store, audit, processes
from publisher.store.broadcast_leases import (
    hold_broadcast,
    lapsed_broadcasts,
    renew_broadcast,
    take_over_broadcast,
)
from publisher.store.broadcasts import (
    Audience,
    Broadcast,
    claim_broadcast,
    create_broadcast,
    finish_broadcast,
)
from publisher.store.models import BroadcastRow
from tests.broadcast_support import senders
from tests.conftest import BASE_CONFIG, present, write_config
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
from tests.servers.data import add_subscribers
from tests.test_broadcasts import NOW as FIXED
from tests.test_broadcasts import SENDERS, draft, outbox

NOW = FIXED
SHORT = timedelta(seconds=0.3)  # a heartbeat every 0.1 s: renewals the test can wait for


def _claimed(store: Store, owner: str, *, lease: timedelta | None = LEASE) -> Broadcast:
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    return present(claim_broadcast(store, made.id, by="x", now=NOW, owner=owner, lease=lease))


def _read(store: Store, broadcast_id: int) -> Broadcast:
    from publisher.store.broadcasts import get_broadcast

    return present(get_broadcast(store, broadcast_id))


def _dead_pid() -> str:
    """A process of this host that does not exist: started, then reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(30)
    return f"{processes.this_process().split(':')[0]}:{child.pid}"


# --- the lease in the store ---------------------------------------------------------------


def test_the_claim_writes_its_owner_and_lease_renewals_move_it_finishing_clears_it(store):
    claimed = _claimed(store, "host-a:1")
    assert (claimed.status, claimed.owner) == ("sending", "host-a:1")
    assert claimed.lease_until == NOW.timestamp() + 60
    later = NOW + timedelta(seconds=50)
    assert renew_broadcast(store, claimed.id, owner="host-a:1", now=later, lease=LEASE)
    assert _read(store, claimed.id).lease_until == later.timestamp() + 60
    assert not renew_broadcast(store, claimed.id, owner="host-c:3", now=later, lease=LEASE)
    # a sender whose send was taken over records nothing: the outcome is the new owner's
    finish_broadcast(store, claimed.id, "sent", now=later, owner="host-c:3")
    assert _read(store, claimed.id).status == "sending"
    finish_broadcast(store, claimed.id, "sent", now=later, owner="host-a:1")
    done = _read(store, claimed.id)
    assert (done.status, done.owner, done.lease_until) == ("sent", "host-a:1", None)
    assert not renew_broadcast(store, claimed.id, owner="host-a:1", now=later, lease=LEASE)
    assert lapsed_broadcasts(store, owner="host-c:3", now=later + timedelta(days=1)) == []


def test_a_live_senders_claim_is_not_taken_over_and_a_lapsed_or_dead_ones_is(store):
    me = processes.this_process()
    alive_here = _claimed(store, me)  # this very process: alive
    elsewhere = _claimed(store, ELSEWHERE)  # another host: only its lease can tell
    dead_here = _claimed(store, _dead_pid())
    within = NOW + timedelta(seconds=59)
    # a daemon (another owner) looking within the lease: only the dead process's claim
    assert [b.id for b in lapsed_broadcasts(store, owner="host-d:7", now=within)] == [dead_here.id]
    lapsed = NOW + timedelta(seconds=61)
    found = [b.id for b in lapsed_broadcasts(store, owner="host-d:7", now=lapsed)]
    assert found == [alive_here.id, elsewhere.id, dead_here.id]
    # a daemon never takes its own sends (its heartbeat runs): the owner's scan skips them
    assert alive_here.id not in [b.id for b in lapsed_broadcasts(store, owner=me, now=lapsed)]


def test_a_claim_from_before_leases_is_left_to_the_operators_resume(store):
    old = _claimed(store, _dead_pid(), lease=None)  # as migration 0032 leaves older claims
    with store.session() as session:  # written before 0032: no owner either
        session.execute(update(BroadcastRow).where(BroadcastRow.id == old.id).values(owner=None))
    assert _read(store, old.id).lease_until is None
    assert lapsed_broadcasts(store, owner="host-d:7", now=NOW + timedelta(days=3)) == []
    # `publisher broadcast send --resume` takes it: from then on it is a lease like any other
    assert hold_broadcast(store, old.id, owner="host-e:5", now=NOW, lease=LEASE)
    taken = _read(store, old.id)
    assert (taken.owner, taken.lease_until) == ("host-e:5", NOW.timestamp() + 60)


def test_two_daemons_racing_to_take_over_a_lapsed_send_one_wins(store):
    lapsed = NOW + timedelta(minutes=5)
    for _ in range(5):
        claimed = _claimed(store, ELSEWHERE)
        owners = [f"host-{n}:1" for n in range(4)]

        def taker(owner: str, wanted: int = claimed.id) -> Callable[[], bool]:
            def take() -> bool:  # each daemon reads the lapsed sends, then takes them
                seen = lapsed_broadcasts(store, owner=owner, now=lapsed)
                mine = [b for b in seen if b.id == wanted]
                return bool(mine) and take_over_broadcast(
                    store, mine[0], owner=owner, now=lapsed, lease=LEASE
                )

            return take

        results = race([taker(o) for o in owners])
        assert results.count(True) == 1, results
        assert _read(store, claimed.id).owner == owners[results.index(True)]


def test_a_takeover_from_a_state_already_taken_over_fails(store):
    """The racers above, interleaved for certain: both read the lapsed claim, then both take
    it over from what they read; the second UPDATE matches nothing."""
    claimed = _claimed(store, ELSEWHERE)
    lapsed = NOW + timedelta(minutes=5)
    read_by_c = lapsed_broadcasts(store, owner="host-c:3", now=lapsed)
    read_by_d = lapsed_broadcasts(store, owner="host-d:4", now=lapsed)
    assert [b.id for b in read_by_c] == [b.id for b in read_by_d] == [claimed.id]
    assert take_over_broadcast(store, read_by_c[0], owner="host-c:3", now=lapsed, lease=LEASE)
    assert not take_over_broadcast(store, read_by_d[0], owner="host-d:4", now=lapsed, lease=LEASE)
    assert _read(store, claimed.id).owner == "host-c:3"


# --- a send in this process: the heartbeat ------------------------------------------------


@pytest.fixture
def config(project: Path) -> PublisherConfig:
    return load_config(write_config(project, SENDERS))


class Gate:
    """The file outbox backend, whose first batch waits until the test opens the gate: a
    send that takes as long as the test wants."""

    def __init__(self, config: PublisherConfig) -> None:
        self.inner = make_backend(config)
        self.entered, self.open = threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send(self, prepared: Any, encoded: Any, recipients: Sequence[Recipient], *a: Any) -> Any:
        self.entered.set()
        assert self.open.wait(60), "the test never opened the gate"
        return self.inner.send(prepared, encoded, recipients, *a)


def _sending(
    config: PublisherConfig, store: Store, broadcast_id: int, clock: Clock
) -> tuple[Gate, threading.Thread, list[str]]:
    """`send_broadcast` of host-a:1 in a thread, held at its first batch."""
    gate, said = Gate(config), cast(list[str], [])

    def run() -> None:
        report = send_broadcast(
            config, store, broadcast_id, by="ann", now=clock.now, owner="host-a:1",
            lease=SHORT, clock=clock, backend=cast(Any, gate),
        )  # fmt: skip
        said.append(report.status)

    thread = threading.Thread(target=run)
    thread.start()
    assert gate.entered.wait(60), "the send did not start"
    return gate, thread, said


def _end(gate: Gate, thread: threading.Thread) -> None:
    gate.open.set()
    thread.join(60)
    assert not thread.is_alive(), "the send did not end"


def test_the_lease_is_renewed_while_a_long_send_runs_and_no_daemon_takes_it(store, config):
    people = add_subscribers(store, NOW, 3, topics=("housing",))
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    clock = Clock(NOW)
    gate, thread, said = _sending(config, store, made.id, clock)
    try:
        clock.now = NOW + timedelta(hours=3)  # the send has taken 3 hours: far past its lease
        wait_for(
            lambda: (_read(store, made.id).lease_until or 0) >= clock.now.timestamp(), "renewal"
        )
        assert lapsed_broadcasts(store, owner=ELSEWHERE, now=clock.now) == []
        taken = jobs.take_over(config, store, owner=ELSEWHERE, lease=LEASE, clock=clock)
        assert (taken.sent, taken.problems) == ([], [])
        assert _read(store, made.id).owner == "host-a:1"
    finally:
        _end(gate, thread)
    assert said == ["sent"]
    done = _read(store, made.id)
    assert (done.status, done.owner, done.lease_until) == ("sent", "host-a:1", None)
    assert sorted(outbox(config, made.id)) == sorted(people)


def test_a_sender_whose_send_was_taken_over_stops_and_records_nothing(store, project, caplog):
    one_by_one = load_config(
        write_config(project, SENDERS + "delivery:\n  file:\n    batch_size: 1\n")
    )
    add_subscribers(store, NOW, 10, topics=("housing",))
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    gate, thread, said = _sending(one_by_one, store, made.id, Clock(NOW))
    try:  # its host was suspended past the lease, and a daemon elsewhere took the send over
        with store.session() as session:
            session.execute(
                update(BroadcastRow).values(owner=ELSEWHERE, lease_until=NOW.timestamp() + 3600)
            )
        wait_for(lambda: "the claim is no longer ours (host-a:1)" in caplog.text, "the heartbeat")
    finally:
        _end(gate, thread)
    # batches of one: those claimed ahead (3 at most) went, the rest were never begun
    assert said == ["sending"] and 1 <= len(outbox(one_by_one, made.id)) <= 3
    after = _read(store, made.id)
    assert (after.status, after.owner) == ("sending", ELSEWHERE)  # the new owner's to finish


def test_a_daemon_pass_takes_over_a_dead_senders_broadcast_and_finishes_it(store, config):
    people = add_subscribers(store, NOW, 4, topics=("housing",))
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    dead = _dead_pid()
    # the sender claimed it and died before composing: within its lease, but its pid is gone
    assert claim_broadcast(store, made.id, by="ann", now=NOW, owner=dead, lease=LEASE)
    clock = Clock(NOW + timedelta(seconds=5))
    report = jobs.take_over(config, store, owner="host-d:7", lease=LEASE, clock=clock)
    assert (report.sent, report.problems) == ([(made.id, "sent")], [])
    assert sorted(outbox(config, made.id)) == sorted(people)
    done = _read(store, made.id)
    assert (done.status, done.owner, done.lease_until) == ("sent", "host-d:7", None)
    taken = [e for e in audit.recent(store) if e.action == "broadcast taken over"]
    assert [e.target for e in taken] == [f"{made.id}: from {dead}: sent"]
    # nothing left: the next pass (another daemon's too) does nothing
    again = jobs.take_over(config, store, owner="host-e:8", lease=LEASE, clock=clock)
    assert (again.sent, again.problems) == ([], [])


# --- real processes: `publisher broadcast send` killed mid-send, `publisher run` finishes ---

PEOPLE = 16
PROCESS_CONFIG = """\
schedule:
  collect_every: "off"
  feeds_every: "off"
delivery:
  backend: sendgrid
  sendgrid:
    host: {host}
    workers: 1
    batch_size: 4
"""


@pytest.mark.slow
def test_a_send_killed_mid_way_is_finished_by_the_daemon_each_person_once(
    project,
    store,
    database_url,
    sendgrid,  # noqa: F811 - the fixture imported above
):
    text = BASE_CONFIG + senders() + PROCESS_CONFIG.format(host=sendgrid.url)
    (project / "schedules.yaml").write_text(text, encoding="utf-8")
    people = add_subscribers(store, NOW, PEOPLE, topics=("housing",))
    add_subscribers(store, NOW, 3, start=PEOPLE, topics=("transit",))  # not in the audience
    made = create_broadcast(store, draft(audience=Audience(("housing",))), by="a", now=NOW)
    # the sending process kills itself (SIGKILL) once 2 of its 4 batches are recorded
    sender = publisher_process(
        project, database_url, "send.log", "broadcast", "send", str(made.id),
        kill_at="finish.after:2",
    )  # fmt: skip
    try:
        sender.wait(120)
    finally:
        kill(sender)
    assert sender.returncode == -signal.SIGKILL, (project / "send.log").read_text()
    left = _read(store, made.id)
    host = processes.this_process().split(":")[0]
    assert (left.status, left.owner) == ("sending", f"{host}:{sender.pid}")
    assert left.lease_until is not None and len(sendgrid.recipients) == 8
    daemon = publisher_process(project, database_url, "run.log", "-v", "run")
    try:
        wait_for(lambda: _read(store, made.id).status == "sent", "the daemon to finish it", 240)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(120) == 0, (project / "run.log").read_text()
    finally:
        kill(daemon)
    log = (project / "run.log").read_text()
    assert f"taking over the send from {host}:{sender.pid} (its process is gone" in log, log
    seen = Counter(sendgrid.recipients)
    assert set(seen) == set(people) and max(seen.values()) == 1, seen
    done = _read(store, made.id)
    assert (done.status, done.lease_until) == ("sent", None)
    assert done.owner is not None and done.owner.startswith(f"{host}:{daemon.pid}")


def test_a_daemon_pass_leaves_a_finished_send_alone(store, config):
    """A send that finished (its process gone since): a daemon's pass finds nothing to do."""
    add_subscribers(store, NOW, 2, topics=("housing",))
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    send_broadcast(config, store, made.id, by="ann", now=NOW, owner=_dead_pid())
    clock = Clock(NOW + timedelta(days=1))
    report = jobs.take_over(config, store, owner="host-d:7", lease=LEASE, clock=clock)
    assert (report.sent, report.problems) == ([], [])
    assert len(outbox(config, made.id)) == 2
