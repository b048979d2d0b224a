"""Send workers (issue 12): real `publisher worker` processes beside the process that started
the send, the local SendGrid-compatible server (150-300 ms per request) and 50,000
subscribers on PostgreSQL: every recipient exactly once, also with a worker SIGKILLed
mid-way, with two daemons racing for the slot, and with the database restarted mid-send.
On SQLite the same code path runs with one worker process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from publisher.store import Store, open_store
from publisher.store import schedule_state as state
from publisher.store.models import DeliveryRow, EditionRow, SendWorkRow
from tests.conftest import ROOT, write_config
from tests.daemon_logs import dealt_with
from tests.pgcluster import Cluster
from tests.servers.data import (
    add_edition,
    add_posts,
    add_subscribers,
    add_subscribers_fast,
    config_text,
)
from tests.servers.sendgrid import FakeSendGrid

pytestmark = pytest.mark.slow  # real `publisher` processes, killed with SIGKILL

API_KEY = "SG.workers-test-key"
SUBSCRIBERS = 50_000
SLOT_CAMPAIGN = """
schedule:
  collect_every: "off"
  feeds_every: "off"
campaigns:
  - name: weekly
    title: The Weekly
    subject: "The Weekly"
    timezone: UTC
    cadence: "{cadence}"
    sections:
      - {{name: posts, kinds: [article], max: 5, title: Latest posts}}
delivery:
  backend: sendgrid
  sendgrid:
    host: {host}
    workers: 2
"""


@pytest.fixture(scope="module")
def audience_db(pg_cluster: Cluster, fixed_now_module: datetime) -> Iterator[str]:
    """A database with 50,000 subscribers, copied for each test (adding them takes longer)."""
    name = pg_cluster.create_database()
    store = open_store(pg_cluster.url(name))
    add_subscribers_fast(store, fixed_now_module, SUBSCRIBERS)
    store.close()
    yield name
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def fixed_now_module() -> datetime:
    return datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def pg_url(pg_cluster: Cluster, audience_db: str) -> Iterator[str]:
    import psycopg

    name = f"w{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(pg_cluster.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{audience_db}"')
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


@pytest.fixture
def server() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=API_KEY, latency=0.3, validate="first") as fake:
        yield fake


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "SENDGRID_API_KEY": API_KEY,
        "PUBLISHER_DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "200",
    }


def _cli(
    config: Path, url: str, *args: str, cwd: Path | None = None, log: Path | None = None
) -> subprocess.Popen:
    """A `publisher` child; its output to a pipe, or to `log` (read while it runs)."""
    return subprocess.Popen(
        [sys.executable, "-m", "publisher.cli", "-c", str(config), *args],
        env=_env(url),
        cwd=cwd,
        stdout=subprocess.PIPE if log is None else log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def _workers(config: Path, url: str, count: int = 3, idle: int = 5) -> list[subprocess.Popen]:
    command = ("worker", "--idle-exit", str(idle), "--lease", "3")
    return [_cli(config, url, *command) for _ in range(count)]


def _finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    output = process.communicate(timeout=timeout)[0]
    return process.returncode, output


def _sent_batches(output: str) -> int:
    found = re.search(r"worker \S+: (\d+) batches", output)
    assert found, output
    return int(found.group(1))


def _statuses(store: Store) -> Counter:
    with store.session() as session:
        rows = session.execute(
            select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
        )
        return Counter({status: n for status, n in rows})


def _exactly_once(server: FakeSendGrid, emails: list[str]) -> None:
    seen = Counter(server.recipients)
    assert len(seen) == len(emails) and set(seen) == set(emails), "someone was missed"
    assert max(seen.values()) == 1, "someone received the edition twice"
    assert all(len(r.recipients) <= 1000 for r in server.requests)


def _setup(tmp_path: Path, url: str, server: FakeSendGrid, now: datetime):
    store = open_store(url)
    add_edition(store, now)
    options = f"  sendgrid:\n    host: {server.url}\n    workers: 2\n"
    config = write_config(tmp_path, config_text("sendgrid", delivery=options))
    emails = [f"person{i}@example.org" for i in range(SUBSCRIBERS)]
    return store, config, emails


def test_three_workers_reach_everyone_exactly_once(tmp_path, pg_url, server, fixed_now):
    store, config, emails = _setup(tmp_path, pg_url, server, fixed_now)
    workers = _workers(config, pg_url)
    code, output = _finish(_cli(config, pg_url, "send", "weekly", "--resume"))
    assert code == 0, output
    results = [_finish(w) for w in workers]
    assert all(c == 0 for c, _ in results), results
    assert all(_sent_batches(out) > 0 for _, out in results), "a worker sent nothing"
    _exactly_once(server, emails)
    assert _statuses(store) == Counter({"sent": SUBSCRIBERS})
    store.close()


def _held_by(store: Store, pid: int) -> int:
    with store.session() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    SendWorkRow.holder.like(f"%:{pid}:%"), SendWorkRow.status == "open"
                )
            )
            or 0
        )


def _wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _in_flight_at_server(store: Store, server: FakeSendGrid, pid: int) -> bool:
    """A request the server has read and not answered yet (it answers after 300 ms) is of a
    batch `pid` holds."""
    numbers = {int(r.body["custom_args"]["batch"].split("-")[1]) for r in server.requests[-4:]}
    with store.session() as session:
        held = session.scalar(
            select(func.count()).where(
                SendWorkRow.holder.like(f"%:{pid}:%"),
                SendWorkRow.status == "open",
                SendWorkRow.number.in_(numbers),
            )
        )
    return bool(held)


def test_a_worker_killed_mid_way_loses_its_batches_to_the_others(
    tmp_path, pg_url, server, fixed_now
):
    """SIGKILL while the victim's request is at the server, unanswered, and it holds more
    batches queued: those go to the others once its lease is gone, the one in flight is
    assumed sent (it was: the server has it), nobody gets the edition twice."""
    store, config, emails = _setup(tmp_path, pg_url, server, fixed_now)
    one_thread = tmp_path / "victim.yaml"
    one_thread.write_text(config.read_text().replace("workers: 2", "workers: 1"))
    victim = _cli(one_thread, pg_url, "worker", "--idle-exit", "5", "--lease", "3")
    workers = _workers(config, pg_url, 2)
    driver = _cli(config, pg_url, "send", "weekly", "--resume")
    _wait(
        lambda: _held_by(store, victim.pid) >= 2 and _in_flight_at_server(store, server, victim.pid)
    )
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    code, output = _finish(driver)
    assert code == 3, output  # sent, with the victim's batch in flight assumed sent
    assert all(_finish(w)[0] == 0 for w in workers)
    _exactly_once(server, emails)
    statuses = _statuses(store)
    assert statuses["sent"] + statuses["uncertain"] == SUBSCRIBERS
    assert 0 < statuses["uncertain"] <= 1000  # its one sending thread's batch
    with store.session() as session:  # the victim's queued batches were finished by others
        taken = session.scalar(select(func.count()).where(SendWorkRow.claims > 1))
        left = session.scalar(select(func.count()).where(SendWorkRow.status == "open"))
    assert taken and taken >= 1 and left == 0
    store.close()


def test_the_database_restarted_mid_send(tmp_path, pg_url, pg_cluster, server, fixed_now):
    store, config, emails = _setup(tmp_path, pg_url, server, fixed_now)
    workers = _workers(config, pg_url)
    driver = _cli(config, pg_url, "send", "weekly", "--resume")
    _wait(lambda: len(server.requests) >= 8)
    store.close()
    pg_cluster.restart(down_for=2.0)
    code, output = _finish(driver)
    results = [_finish(w) for w in workers]
    # 3: a batch whose outcome could not be recorded while the database was down is
    # `uncertain` (assumed sent), never sent twice; the server says whether it arrived
    assert code in (0, 3), output[-3000:]
    assert all(c == 0 for c, _ in results), [out[-3000:] for _, out in results]
    logs = output + "".join(out for _, out in results)
    assert "database connection lost" in logs  # logged clearly, and retried
    _exactly_once(server, emails)
    store = open_store(pg_url)
    statuses = _statuses(store)
    assert set(statuses) <= {"sent", "uncertain"} and sum(statuses.values()) == SUBSCRIBERS
    assert (code == 3) == bool(statuses["uncertain"]), statuses
    store.close()


def _slot_project(tmp_path: Path, url: str, server: FakeSendGrid) -> tuple[Path, datetime]:
    now = datetime.now(UTC)  # real daemons: the slot is a few seconds from the real clock
    slot = (now + timedelta(seconds=8)).replace(microsecond=0)
    cadence = f"{slot.second} {slot.minute} {slot.hour} {slot.day} {slot.month} *"
    config = write_config(tmp_path, SLOT_CAMPAIGN.format(cadence=cadence, host=server.url))
    store = open_store(url)
    add_posts(store, now)
    state.watched_since(store, "weekly", now=now)
    store.close()
    return config, slot


def test_two_daemons_racing_for_a_slot_make_one_edition_sent_once(tmp_path, pg_url, server):
    (tmp_path / "content").mkdir()
    config, slot = _slot_project(tmp_path, pg_url, server)
    log_paths = [tmp_path / f"daemon{i}.log" for i in range(2)]
    # -v: the scheduler's own lines too (tests/daemon_logs.py)
    daemons = [_cli(config, pg_url, "-v", "run", cwd=tmp_path, log=log) for log in log_paths]
    workers = _workers(config, pg_url, idle=15)  # from before the slot until after its send
    store = open_store(pg_url)
    try:
        _wait(lambda: "sent" in [r.status for r in state.slot_records(store, "weekly")], 90)
        # the other daemon's chance to (wrongly) send again: both have dealt with the slot
        _wait(lambda: all(dealt_with(log.read_text(), slot) for log in log_paths))
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
    codes = [daemon.wait(30) for daemon in daemons]
    outputs = [(code, log.read_text()) for code, log in zip(codes, log_paths, strict=True)]
    assert all(code == 0 for code, _ in outputs), [out[-3000:] for _, out in outputs]
    finished = [_finish(w) for w in workers]
    assert all(code == 0 for code, _ in finished), [out[-3000:] for _, out in finished]
    logs = "".join(out for _, out in outputs)
    assert logs.count("outcome=sent") == 1, logs[-3000:]
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(EditionRow)) == 1
    _exactly_once(server, [f"person{i}@example.org" for i in range(SUBSCRIBERS)])
    store.close()


def test_on_sqlite_one_worker_process_shares_the_send(tmp_path, server, fixed_now):
    url = f"sqlite:///{tmp_path}/send.db"
    store = open_store(url)
    emails = add_subscribers(store, fixed_now, 5_000)
    add_edition(store, fixed_now)
    options = f"  sendgrid:\n    host: {server.url}\n    workers: 1\n    batch_size: 250\n"
    config = write_config(tmp_path, config_text("sendgrid", delivery=options))
    worker = _cli(config, url, "worker", "--idle-exit", "4", "--lease", "3")
    code, output = _finish(_cli(config, url, "send", "weekly", "--resume"))
    assert code == 0, output
    worker_code, worker_output = _finish(worker)
    assert worker_code == 0, worker_output
    assert _sent_batches(worker_output) > 0, worker_output
    # the summary counts the whole edition, not only what this process sent
    assert "(the whole edition: 5000 sent)" in output, output
    _exactly_once(server, emails)
    assert _statuses(store) == Counter({"sent": 5_000})
    store.close()
