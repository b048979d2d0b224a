"""Broadcasts from the command line and the daemon (issue 21): `publisher broadcast
list|show|send|cancel` with their exit codes, and `publisher run` sending a scheduled
broadcast at its time (a fixed clock: PUBLISHER_NOW), exactly one of two daemons sending
it; while no daemon runs, a due broadcast is late."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from publisher.cli import app
from publisher.config import load_config
from publisher.schedule.presence import scheduler_status
from publisher.store import open_store
from publisher.store.broadcasts import (
    Audience,
    create_broadcast,
    get_broadcast,
    schedule_broadcast,
)
from tests.conftest import FIXED_NOW, present, write_config
from tests.servers.data import add_subscribers
from tests.test_broadcasts import SENDERS, draft, outbox
from tests.test_schedule_daemon import environment, stop, wait_for
from tests.test_scheduler_seen import beat, page, served, text_of  # noqa: F401 (fixture)

NOW = FIXED_NOW


@pytest.fixture
def cli(project, database_url, monkeypatch):
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", database_url)
    monkeypatch.setenv("PUBLISHER_NOW", NOW.isoformat())
    write_config(project, SENDERS)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(
            app, ["-c", str(project / "schedules.yaml"), *args], standalone_mode=False
        )

    return run


def test_list_show_send_and_cancel(cli, store, project):
    add_subscribers(store, NOW, 3, topics=("housing",))
    add_subscribers(store, NOW, 2, start=3, topics=("transit",))
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    other = create_broadcast(store, draft(name="Later"), by="ann@example.org", now=NOW)
    schedule_broadcast(store, other.id, NOW + timedelta(days=1), version=1, by="a", now=NOW)
    listed = cli("broadcast", "list")
    assert "Council vote tomorrow" in listed.output and "scheduled" in listed.output
    assert "Thu 26 Nov 2026 07:00 EST" in listed.output  # the organisation's zone
    shown = cli("broadcast", "show", str(made.id))
    assert "would reach now: 3 people" in shown.output
    assert "action@example.org" in shown.output and "audience: housing" in shown.output
    sent = cli("broadcast", "send", str(made.id))
    assert sent.exit_code == 0, sent.output
    assert f"broadcast {made.id}: 3 sent" in sent.output
    config = load_config(project / "schedules.yaml")
    assert len(outbox(config, made.id)) == 3
    assert (project / "archive" / "broadcasts" / f"{made.id}.html").is_file()  # public copy
    again = cli("broadcast", "send", str(made.id))
    assert again.exit_code != 0 and "cannot be sent again" in str(again.exception)
    assert len(outbox(config, made.id)) == 3
    cancelled = cli("broadcast", "cancel", str(other.id))
    assert "is a draft again" in cancelled.output
    assert present(get_broadcast(store, other.id)).status == "draft"
    missing = cli("broadcast", "show", "999")
    assert "no broadcast 999" in str(missing.exception)


def test_a_due_broadcast_is_late_while_no_daemon_runs(store, project):
    config = load_config(write_config(project, SENDERS))
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    at = NOW + timedelta(minutes=5)
    schedule_broadcast(store, made.id, at, version=1, by="a", now=NOW)
    assert scheduler_status(config, store, now=NOW).late_broadcasts == {}
    assert scheduler_status(config, store, now=at).late_broadcasts == {made.id: at}


def _daemon(project: Path, url: str, name: str) -> tuple[subprocess.Popen, Path]:
    log_path = project / name
    env = environment(url) | {"PUBLISHER_NOW": (NOW + timedelta(hours=1)).isoformat()}
    process = subprocess.Popen(
        [sys.executable, "-m", "publisher.cli", "-v", "run"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("w"),
    )
    return process, log_path


@pytest.mark.slow
def test_two_daemons_send_a_due_broadcast_once_to_its_audience(project):
    write_config(project, SENDERS)
    url = f"sqlite:///{project}/publisher.db"
    store = open_store(url)
    housing = add_subscribers(store, NOW, 5, topics=("housing",))
    add_subscribers(store, NOW, 4, start=5, topics=("transit",))
    audience = Audience(("housing",))
    made = create_broadcast(store, draft(audience=audience), by="a", now=NOW)
    schedule_broadcast(store, made.id, NOW + timedelta(minutes=30), version=1, by="a", now=NOW)
    store.close()
    daemons = [_daemon(project, url, "first.log"), _daemon(project, url, "second.log")]

    def status() -> str:
        s = open_store(url)
        try:
            return present(get_broadcast(s, made.id)).status
        finally:
            s.close()

    try:
        wait_for(lambda: status() == "sent", timeout=90, what="the broadcast to be sent")
    finally:
        for process, log_path in daemons:
            stop(process, log_path)
    config = load_config(project / "schedules.yaml")
    assert sorted(outbox(config, made.id)) == sorted(housing)
    logs = "".join(log.read_text() for _, log in daemons)
    assert logs.count(f"broadcast {made.id}: sent") == 1


def test_the_overview_marks_a_due_broadcast_late_while_no_daemon_runs(served, store):  # noqa: F811
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    schedule_broadcast(store, made.id, NOW, version=1, by="a", now=NOW)
    lines = text_of(page(served), '//ul[@class="late-broadcasts"]/li')
    assert lines == [f"late: broadcast {made.id}, due Wed 25 Nov 2026, 07:00 EST"]
    beat(store, "daemon", NOW, pid=41)  # a daemon runs: it will send it
    assert page(served).xpath('//ul[@class="late-broadcasts"]') == []
