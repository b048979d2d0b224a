"""Kill -9 a real `publisher send` (a child process) mid-way and right after a 202, then
`--resume`: the SendGrid-compatible server has seen every recipient exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from publisher.store import open_store
from publisher.store.models import DeliveryRow
from tests.conftest import ROOT, write_config
from tests.servers.data import add_edition, add_subscribers, config_text
from tests.servers.sendgrid import FakeSendGrid, Recorded

API_KEY = "SG.resume-test-key"
SUBSCRIBERS = 20_000
# Start-up, 20,000 ledger rows and 20 requests take seconds on a quiet machine and many
# times that on a busy one: every wait is for a condition, and this bound catches a hang only.
HANG = 180.0


@pytest.fixture
def setup(tmp_path: Path, fixed_now):
    db = tmp_path / "send.db"
    store = open_store(f"sqlite:///{db}")
    emails = add_subscribers(store, fixed_now, SUBSCRIBERS)
    edition = add_edition(store, fixed_now)
    server = FakeSendGrid(api_key=API_KEY)
    server.start()
    options = f"  sendgrid:\n    host: {server.url}\n    workers: 4\n"
    config = write_config(tmp_path, config_text("sendgrid", delivery=options))
    yield store, db, emails, edition, server, config
    server.stop()
    store.close()


def _send(config: Path, db: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "SENDGRID_API_KEY": API_KEY,
        "PUBLISHER_DATABASE_URL": f"sqlite:///{db}",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "publisher.cli", "-c", str(config), "send", "weekly", "--resume"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_until(
    condition: Callable[[], object], what: str, timeout: float = HANG, state=lambda: ""
) -> None:
    """Poll `condition` (a state of the server or of the store, never a guess of how long
    something takes) until it holds; past the deadline, fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what} {state()}"
        time.sleep(0.02)


def _statuses(store, edition: int) -> Counter:
    with store.session() as session:
        rows = session.query(DeliveryRow.status).filter(DeliveryRow.edition_id == edition)
        return Counter(status for (status,) in rows)


def _resume_and_check(store, db, emails, edition, server, config) -> None:
    server.hold_after = None
    child = _send(config, db)
    output = child.communicate(timeout=HANG)[0].decode()
    assert child.returncode == 3, output  # sent with uncertain recipients
    assert "assumed sent" in output and "--resend-batch N" in output
    seen = Counter(server.recipients)
    assert set(seen) == set(emails)
    assert max(seen.values()) == 1, "someone received the edition twice"
    assert _statuses(store, edition)["sent"] + _statuses(store, edition)["uncertain"] == len(emails)


@pytest.mark.slow
def test_kill_mid_way_then_resume(setup):
    store, db, emails, edition, server, config = setup
    server.hold_after = 6  # from the 7th request on: accepted, never answered
    child = _send(config, db)

    def stuck() -> bool:
        """Every worker waits for an answer that never comes, and the child has recorded
        the six 202s it got: nothing more can happen until the kill."""
        answered = server.answered()
        recorded = _statuses(store, edition)["sent"]
        return server.held >= 4 and len(answered) == 6 and recorded == 6 * 1000

    _wait_until(
        stuck,
        "four held requests and six recorded 202s",
        state=lambda: (server.held, len(server.answered()), _statuses(store, edition)),
    )
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert 0 < len(server.recipients) < len(emails)
    # killed with requests unanswered: at most one batch per worker is ever `requested`
    assert _statuses(store, edition)["requested"] == 4 * 1000
    _resume_and_check(store, db, emails, edition, server, config)


@pytest.mark.slow
def test_kill_between_202_and_ledger_update_then_resume(setup):
    store, db, emails, edition, server, config = setup
    lock = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    accepted: list[Recorded] = []

    def before_202(n: int, recorded: Recorded) -> None:
        if n == 5:  # hold the store's write lock: the child cannot record this 202
            lock.execute("BEGIN IMMEDIATE")
            accepted.append(recorded)  # request 5 itself, not whichever came in last
            server.hold_after = 5

    server.on_accept = before_202
    child = _send(config, db)
    _wait_until(lambda: accepted and accepted[0].answered.is_set(), "the 5th 202 to go out")
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    lock.execute("ROLLBACK")
    lock.close()
    number = int(accepted[0].body["custom_args"]["batch"].split("-")[1])
    with store.session() as session:
        states = {
            s
            for (s,) in session.query(DeliveryRow.status).filter(
                DeliveryRow.edition_id == edition, DeliveryRow.batch == number
            )
        }
    assert states == {"requested"}  # accepted by the provider, not yet recorded: the window
    server.on_accept = None
    _resume_and_check(store, db, emails, edition, server, config)


@pytest.mark.slow
def test_kill_during_a_retry_after_wait_then_resume_sends_the_refused_batch(setup):
    """A batch refused with 429 + a long Retry-After was never accepted: killed while it
    sleeps, it is `inflight` (not `requested`), so the resume sends it, and nobody twice."""
    store, db, emails, edition, server, config = setup
    server.retry_after = 600
    server.plan = [429]
    child = _send(config, db)
    _wait_until(lambda: 429 in server.seen_statuses, "the 429")
    # the others went out and were recorded, and the refused batch is no longer `requested`
    # (its worker marks it `inflight` again, then waits out the Retry-After)
    others = len(emails) - 1000
    _wait_until(
        lambda: (
            _statuses(store, edition)["sent"] == others
            and _statuses(store, edition)["requested"] == 0
        ),
        "every other batch sent and recorded, the refused one given back",
        state=lambda: _statuses(store, edition),
    )
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    statuses = _statuses(store, edition)
    assert statuses["inflight"] == 1000 and statuses["requested"] == 0  # the 429 batch
    child = _send(config, db)
    output = child.communicate(timeout=HANG)[0].decode()
    assert child.returncode == 0, output
    assert "assumed sent" not in output
    seen = Counter(server.recipients)
    assert set(seen) == set(emails)
    assert max(seen.values()) == 1, "someone received the edition twice"
    assert _statuses(store, edition) == Counter(sent=len(emails))


def test_a_stop_request_ends_the_send_between_batches_and_resume_finishes_it(
    store, make_config, fixed_now
):
    """The daemon's SIGTERM: batches being sent finish, no new one starts, the edition
    stays unfinished, and a resume reaches everyone else exactly once."""
    from publisher.deliver import deliver_edition

    config = make_config(config_text("file", delivery="  file:\n    batch_size: 10\n"))
    add_subscribers(store, fixed_now, 100)
    edition = add_edition(store, fixed_now)
    asked = []

    def stop_after_two_checks() -> bool:
        asked.append(1)
        return len(asked) > 2

    first = deliver_edition(
        config, store, edition, now=fixed_now, should_stop=stop_after_two_checks
    )
    # Queued batches a worker had not started are left for the resume, so how many went
    # out before the stop depends on the threads' timing; never all of them.
    assert first.stopped and first.sent < 100
    assert "--resume" in first.note
    second = deliver_edition(config, store, edition, now=fixed_now)
    assert not second.stopped and first.sent + second.sent == 100
    outbox = list((config.root / "outbox" / "weekly").glob("*/*.eml"))
    assert len(outbox) == 100
