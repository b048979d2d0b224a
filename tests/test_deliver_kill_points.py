"""Exactly-once mode killed with SIGKILL in 24 cases at 13 points of a real `publisher send`
(child processes; `PUBLISHER_KILL_AT`, publisher/support/killpoints.py, or the server
killing the child between reading a request and answering it), then resumed, sometimes
killed again during the resume's cancellations: every run ends with every recipient
delivered exactly once by the local SendGrid-compatible server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from publisher.store import ledger, open_store
from tests.conftest import ROOT, write_config
from tests.servers.data import add_edition, add_subscribers, config_text
from tests.servers.sendgrid import FakeSendGrid

pytestmark = pytest.mark.slow  # real `publisher` processes, killed with SIGKILL

API_KEY = "SG.kill-points-key"

# (kill points of the first run, of the first resume): "name:n" is the n-th time the process
# reaches that point (see where publisher/deliver/* call killpoints.reached).
CASES = [
    ("claim.queued:1", None),
    ("claim.queued:4", None),
    ("claim.cut:1", None),  # a batch cut (its work item written), its rows not yet
    ("claim.cut:3", None),
    ("batch_id.before:1", None),
    ("batch_id.before:3", None),
    ("batch_id.created:1", None),  # batch id made at SendGrid, not yet recorded
    ("batch_id.created:4", None),
    ("request.before_write:1", None),  # recorded, request not written
    ("request.before_write:5", None),
    ("send.answered:1", None),  # 202 received, ledger not updated
    ("send.answered:4", None),
    ("finish.before:2", None),
    ("finish.after:1", None),
    ("finish.after:6", None),
    ("server:1", None),  # the request was read, the 202 never sent
    ("server:3", None),
    ("retry.sleep:1", None),  # waiting out a 429 Retry-After
    ("send.answered:2", "cancel.before:1"),  # killed again during the resume's cancels
    ("send.answered:2", "cancel.done:1"),  # cancelled at SendGrid, not recorded
    ("send.answered:3", "cancel.recorded:1"),
    ("server:2", "cancel.done:1"),
    ("server:2", "request.before_write:2"),  # the resume killed while resending
    ("batch_id.created:2", "batch_id.created:1"),
]


def _spawn(config: Path, db: Path, kill: str | None) -> subprocess.Popen:
    env = {
        **os.environ,
        "SENDGRID_API_KEY": API_KEY,
        "PUBLISHER_DATABASE_URL": f"sqlite:///{db}",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("PUBLISHER_KILL_AT", None)
    if kill and not kill.startswith("server:"):
        env["PUBLISHER_KILL_AT"] = kill
    return subprocess.Popen(
        [sys.executable, "-m", "publisher.cli", "-c", str(config), "send", "weekly", "--resume"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _run(server: FakeSendGrid, config: Path, db: Path, kill: str | None) -> tuple[int, str]:
    if kill and kill.startswith("server:"):
        seen, target = [0], int(kill.split(":")[1])
        child: list[subprocess.Popen] = []

        def kill_child(_n: int, _recorded: object) -> None:  # request read and recorded, no 202 yet
            seen[0] += 1
            if seen[0] == target:
                os.kill(child[0].pid, signal.SIGKILL)

        server.on_accept = kill_child
        child.append(_spawn(config, db, kill))
        process = child[0]
    else:
        server.on_accept = None
        process = _spawn(config, db, kill)
    output = process.communicate(timeout=120)[0].decode()
    server.on_accept = None
    return process.returncode, output


def _scenario(tmp_path: Path, now, count: int, batch_size: int, workers: int, first, second):
    db = tmp_path / "send.db"
    store = open_store(f"sqlite:///{db}")
    emails = add_subscribers(store, now, count)
    edition = add_edition(store, now)
    with FakeSendGrid(api_key=API_KEY) as server:
        if first.startswith("retry.sleep"):
            server.plan, server.retry_after = [429], 600
        options = (
            f"  sendgrid:\n    host: {server.url}\n    workers: {workers}\n"
            f"    batch_size: {batch_size}\n    exactly_once: true\n"
        )
        config = write_config(tmp_path, config_text("sendgrid", delivery=options))
        code, output = _run(server, config, db, first)
        assert code == -signal.SIGKILL, output
        if second:
            code, output = _run(server, config, db, second)
            assert code == -signal.SIGKILL, output
        code, output = _run(server, config, db, None)
        assert code == 0, output
        delivered = Counter(server.delivered())
        assert set(delivered) == set(emails), "someone never got the edition"
        assert max(delivered.values()) == 1, "someone got the edition twice"
        assert ledger.counts(store, edition) == {"sent": count}
    store.close()
    return server


@pytest.mark.parametrize(("first", "second"), CASES, ids=[f"{a}+{b}" for a, b in CASES])
def test_killed_at_any_point_every_recipient_exactly_once(tmp_path, fixed_now, first, second):
    _scenario(tmp_path, fixed_now, 60, 10, 2, first, second)


def test_killed_mid_way_through_a_bigger_send(tmp_path, fixed_now):
    server = _scenario(tmp_path, fixed_now, 5000, 500, 4, "send.answered:5", "cancel.done:2")
    assert server.scheduled.cancellations  # the unknown batches were cancelled, not guessed
