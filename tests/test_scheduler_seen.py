"""A scheduler you can see (issue 21): daemons and workers write heartbeat rows with the
clock they are given, renew them and remove them on a clean stop; the overview (HTTP
through the real app) lists them and says plainly when nothing will be sent, a killed
process's row shows as stopped or killed once two minutes have passed, and a slot due in
that state is marked late. Last, real `publisher run` processes: stopped (row gone) and
killed with SIGKILL (row left behind, stale once the clock passes two minutes)."""

from __future__ import annotations

import itertools
import logging
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
from lxml import html as lxml_html
from sqlalchemy import Table

import publisher
from publisher.store import Store, processes_seen
from publisher.store.models import ProcessHeartbeatRow
from publisher.store.processes_seen import Presence, SeenProcess, record_seen, seen_processes
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts, log_in
from tests.conftest import FIXED_NOW, present
from tests.test_schedule_daemon import environment
from tests.web_support import Clock, Served, serve

# ADMIN_CONFIG's weekly runs daily at 09:00 New York (14:00 UTC); FIXED_NOW is 12:00 UTC.
DUE = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def rows(store: Store) -> list[SeenProcess]:
    return seen_processes(store)


def beat(store: Store, kind: str, last_seen: datetime, *, pid: int = 7, host: str = "far") -> None:
    """A process on another host as its last beat left it."""
    record_seen(
        store, kind=kind, host=host, pid=pid, version="0.1.0", started=FIXED_NOW, now=last_seen
    )


# --- the heartbeat rows --------------------------------------------------------------------


def test_a_presence_writes_renews_and_removes_its_row(store):
    clock = Clock()
    with Presence(store, "daemon", clock=clock, every=3600, host="h1", pid=4242) as presence:
        assert rows(store) == [
            SeenProcess("daemon", "h1", 4242, publisher.__version__, FIXED_NOW, FIXED_NOW)
        ]
        clock.advance(seconds=30)
        presence.beat()
        (row,) = rows(store)  # renewed, not a second row
        assert (row.started, row.last_seen) == (FIXED_NOW, FIXED_NOW + timedelta(seconds=30))
    assert rows(store) == []  # a clean stop


def test_the_heartbeat_thread_renews_the_row_with_the_given_clock(store):
    calls, fifth = itertools.count(), threading.Event()

    def clock() -> datetime:  # FIXED_NOW, then a second later at each call
        n = next(calls)
        if n >= 4:
            fifth.set()
        return FIXED_NOW + timedelta(seconds=n)

    with Presence(store, "worker", clock=clock, every=0.01, pid=99):
        assert fifth.wait(30), "the heartbeat thread did not beat"
        (row,) = rows(store)
        # call 0 named the start, 1 the first beat; when call 4 is made, beat 3 is written
        assert row.kind == "worker" and row.started == FIXED_NOW
        assert row.last_seen >= FIXED_NOW + timedelta(seconds=3)
    assert rows(store) == []


def test_a_beat_without_its_table_never_raises_and_the_next_one_writes(store, caplog):
    table = cast(Table, ProcessHeartbeatRow.__table__)
    table.drop(store.engine)  # every statement fails, as with a lost database
    caplog.set_level(logging.WARNING, logger="publisher.store.processes_seen")
    with Presence(store, "daemon", clock=Clock(), every=3600, pid=5) as presence:
        assert "daemon heartbeat failed" in caplog.text
        table.create(store.engine)  # the database is back
        presence.beat()
        assert [r.pid for r in rows(store)] == [5]
    assert rows(store) == []


def test_a_sending_worker_is_seen_while_it_runs_and_gone_when_it_stops(store, make_config):
    from publisher.deliver.worker_process import run_worker
    from publisher.store.work import Lease

    config = make_config("delivery:\n  backend: file\n")
    seen_while_running: list[list[SeenProcess]] = []

    def should_stop() -> bool:  # asked before each look for work: look once, then stop
        seen_while_running.append(rows(store))
        return len(seen_while_running) > 1

    lease = Lease("test:1:ab", 60, clock=lambda: FIXED_NOW.timestamp())
    run_worker(config, store, lease, clock=Clock(), should_stop=should_stop, sleep=lambda _: None)
    (worker,) = seen_while_running[0]
    assert (worker.kind, worker.started, worker.last_seen) == ("worker", FIXED_NOW, FIXED_NOW)
    assert rows(store) == []


def test_rows_older_than_a_day_are_pruned_by_the_next_beat(store):
    beat(store, "daemon", FIXED_NOW - timedelta(days=2), pid=1)
    beat(store, "worker", FIXED_NOW - timedelta(hours=3), pid=2)
    assert len(rows(store)) == 2
    with Presence(store, "daemon", clock=Clock(), every=3600, host="h1", pid=3):
        assert sorted(r.pid for r in rows(store)) == [2, 3]
    assert processes_seen.prune_seen(store, before=FIXED_NOW) == 1
    assert rows(store) == []


def test_an_unknown_kind_is_refused(store):
    with pytest.raises(ValueError, match="unknown process kind"):
        record_seen(
            store, kind="cron", host="h", pid=1, version="1", started=FIXED_NOW, now=FIXED_NOW
        )


# --- the overview --------------------------------------------------------------------------


@pytest.fixture
def served(project, store):
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as running:
        yield running


def page(served: Served, path: str = "/admin/") -> lxml_html.HtmlElement:
    with httpx.Client(base_url=served.url, follow_redirects=True, timeout=30) as http:
        log_in(http, STAFF["viewer"])
        answer = http.get(path)
    assert answer.status_code == 200
    return lxml_html.fromstring(answer.text)


def text_of(tree: lxml_html.HtmlElement, xpath: str) -> list[str]:
    """Each element's text as a reader sees it (white space folded)."""
    return [" ".join(element.text_content().split()) for element in tree.xpath(xpath)]


def warning(tree: lxml_html.HtmlElement) -> str:
    return " ".join(text_of(tree, '//div[@class="stopped"]'))


def process_states(tree: lxml_html.HtmlElement) -> dict[str, str]:
    return {
        row.get("data-process"): text_of(row, 'td[@class="process-state"]')[0]
        for row in tree.xpath('//table[@class="processes"]/tbody/tr')
    }


def test_with_no_process_seen_the_overview_says_nothing_will_be_sent(served):
    tree = page(served)
    said = warning(tree)
    assert said.startswith("Nothing will be sent No scheduler (publisher run) has been seen")
    assert "runs publisher run in the project folder" in said and "docs/operators.md" in said
    assert text_of(tree, '//section[@class="scheduler"]/p') == [
        "No daemon or worker has been seen in the last day."
    ]
    # the warning comes first on the page, before the alerts
    assert tree.xpath("//main//h2")[0].text == "Scheduler"


def test_a_fresh_daemon_is_listed_as_running(served, store):
    beat(store, "daemon", FIXED_NOW - timedelta(seconds=40), pid=11)
    beat(store, "worker", FIXED_NOW - timedelta(seconds=10), pid=12)
    tree = page(served)
    assert warning(tree) == ""
    assert text_of(tree, '//p[@class="running"]') == [
        "The scheduler is running: scheduled editions go out on time."
    ]
    assert process_states(tree) == {"daemon-11": "running", "worker-12": "running"}
    cells = text_of(tree, '//tr[@data-process="daemon-11"]/*')
    # started and last seen in the organisation's zone (UTC on hover): 07:00 and 06:59 EST
    assert cells[:4] == ["daemon", "far", "11", "0.1.0"]
    assert "Wed 25 Nov 2026, 07:00 EST" in cells[4] and "06:59 EST" in cells[5]


def test_a_killed_daemon_shows_stopped_after_two_minutes_and_nothing_will_be_sent(served, store):
    beat(store, "daemon", FIXED_NOW - timedelta(seconds=119), pid=21)
    assert process_states(page(served)) == {"daemon-21": "running"}  # 2 minutes: not yet
    served.clock.advance(seconds=2)
    tree = page(served)
    assert process_states(tree) == {
        "daemon-21": "stopped or killed (last seen Wed 25 Nov 2026, 06:58 EST)"
    }
    assert warning(tree).startswith("Nothing will be sent")


def test_a_worker_alone_does_not_run_the_schedule(served, store):
    beat(store, "worker", FIXED_NOW, pid=31)
    tree = page(served)
    assert process_states(tree) == {"worker-31": "running"}
    assert warning(tree).startswith("Nothing will be sent")


def test_a_due_slot_is_late_only_while_no_daemon_runs(served, store):
    served.clock.now = DUE + timedelta(minutes=30)  # 09:30 in New York: the slot has come
    tree = page(served)
    assert text_of(tree, '//tr[@data-campaign="weekly"]//div[@class="late"]') == [
        "late: due Wed 25 Nov 2026, 09:00 EST"
    ]
    assert "Late now: 1 campaign(s), marked below." in warning(tree)
    assert text_of(tree, '//tr[@data-campaign="weekly"]/td[@class="state"]') == ["active"]
    campaign = " ".join(text_of(page(served, "/admin/campaigns/weekly"), '//p[@class="late"]'))
    assert campaign.startswith("Late: the slot of Wed 25 Nov 2026, 09:00 EST is due")

    beat(store, "daemon", served.clock.now, pid=41)  # a daemon runs: it will send the slot
    assert page(served).xpath('//div[@class="late"]') == []
    assert page(served, "/admin/campaigns/weekly").xpath('//p[@class="late"]') == []


def test_a_slot_beyond_grace_or_already_sent_is_not_late(served, store):
    from publisher.store import schedule_state as state

    served.clock.now = DUE + timedelta(hours=7)  # grace is 6 hours: missed, not late
    assert page(served).xpath('//div[@class="late"]') == []
    served.clock.now = DUE + timedelta(minutes=5)
    assert len(page(served).xpath('//div[@class="late"]')) == 1
    state.record_slots(store, "weekly", [DUE], "sent", now=served.clock.now, detail="sent")
    assert page(served).xpath('//div[@class="late"]') == []


def test_publisher_schedule_prints_the_same_facts(project, store, monkeypatch):
    from typer.testing import CliRunner

    from publisher.cli import app
    from tests.web_support import write_web_config

    write_web_config(project, 8000, ADMIN_CONFIG)
    beat(store, "daemon", FIXED_NOW - timedelta(minutes=5), pid=51)
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", store.url)
    monkeypatch.setattr("publisher.cli.schedule.utc_now", lambda: DUE + timedelta(minutes=1))
    result = CliRunner().invoke(app, ["-c", str(project / "schedules.yaml"), "schedule"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "late: weekly: the slot of 2026-11-25 14:00 UTC is due and not sent" in out
    assert "no daemon seen for two minutes: nothing is sent until `publisher run` runs" in out
    assert "daemon far:51 0.1.0 started 2026-11-25 12:00 UTC" in out
    assert "last seen 2026-11-25 11:55:00 UTC stopped or killed" in out


# --- real daemons ----------------------------------------------------------------------------


def start_daemon(project: Path, url: str, log_name: str) -> tuple[subprocess.Popen, Path]:
    """`publisher run` on the project, its clock fixed at FIXED_NOW (PUBLISHER_NOW)."""
    log_path = project / log_name
    env = environment(url) | {"PUBLISHER_NOW": FIXED_NOW.isoformat()}
    process = subprocess.Popen(
        [sys.executable, "-m", "publisher.cli", "run"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("w"),
    )
    return process, log_path


def wait_until_running(process: subprocess.Popen, log_path: Path) -> None:
    """Until the daemon logs that it runs (its row is written before that line)."""
    deadline = time.monotonic() + 60
    while "publisher daemon running" not in log_path.read_text():
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)


def ended(process: subprocess.Popen) -> int:
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.mark.slow
def test_real_daemons_seen_running_stopped_and_killed(served, store, project):
    process, log_path = start_daemon(project, store.url, "first.log")
    try:
        wait_until_running(process, log_path)
        tree = page(served)
        assert process_states(tree) == {f"daemon-{process.pid}": "running"}
        assert warning(tree) == ""
        (row,) = rows(store)
        assert (row.started, row.last_seen, row.version) == (FIXED_NOW, FIXED_NOW, "0.1.0")
        process.send_signal(signal.SIGTERM)
        assert ended(process) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert rows(store) == []  # a clean stop removes the row
    assert warning(page(served)).startswith("Nothing will be sent")

    killed, log_path = start_daemon(project, store.url, "second.log")
    try:
        wait_until_running(killed, log_path)
        killed.send_signal(signal.SIGKILL)
        assert ended(killed) == -signal.SIGKILL
    finally:
        if killed.poll() is None:
            killed.kill()
    assert [r.pid for r in rows(store)] == [killed.pid]  # left behind
    key = f"daemon-{killed.pid}"
    assert process_states(page(served)) == {key: "running"}  # it beat at FIXED_NOW
    served.clock.advance(minutes=2, seconds=1)
    tree = page(served)
    assert present(process_states(tree).get(key)).startswith("stopped or killed (last seen")
    assert warning(tree).startswith("Nothing will be sent")


def test_publisher_check_knows_the_web_filter_the_scheduler_templates_use():
    from publisher.render.checks import check_template_files
    from publisher.render.environment import BUILTIN_TEMPLATES

    assert check_template_files((BUILTIN_TEMPLATES,)) == []
