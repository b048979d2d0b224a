"""The real daemon: `publisher run` processes started by the tests on a shared SQLite store,
a slot a few seconds ahead (6-field cron with seconds), SIGTERM, pause/resume from the CLI."""

from __future__ import annotations

import calendar
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publisher.store import open_store
from publisher.store import schedule_state as state
from publisher.store.models import DeliveryRow, EditionRow
from publisher.store.subscribers import SubscriberInput, import_subscribers
from tests.conftest import BASE_CONFIG
from tests.daemon_logs import dealt_with
from tests.servers.data import add_posts

pytestmark = pytest.mark.slow
SUBSCRIBERS = 3

CAMPAIGN = """\
schedule:
  collect_every: "off"
  feeds_every: "off"
campaigns:
  - name: weekly
    title: The Weekly
    subject: "The Weekly #{{{{ edition.number }}}}"
    timezone: UTC
    cadence: "{cadence}"
    sections:
      - {{name: posts, kinds: [article], max: 5, title: Latest posts}}
"""


def utc_now() -> datetime:
    return datetime.now(UTC)


def next_leap_day(today: datetime | None = None) -> str:
    """The next 29 February after `today` (default: now), as the warning prints it."""
    today = today or utc_now()
    year = today.year
    while True:
        if calendar.isleap(year) and datetime(year, 2, 29, 9, tzinfo=UTC) > today:
            return f"{year}-02-29"
        year += 1


def test_next_leap_day_is_relative_to_today():
    assert next_leap_day(datetime(2026, 12, 1, tzinfo=UTC)) == "2028-02-29"
    assert next_leap_day(datetime(2028, 3, 1, tzinfo=UTC)) == "2032-02-29"


def slot_cron(moment: datetime) -> str:
    """A 6-field cron (seconds first) firing exactly at `moment` (UTC)."""
    return f"{moment.second} {moment.minute} {moment.hour} {moment.day} {moment.month} *"


def prepare(project: Path, cadence: str) -> str:
    """Write the configuration, two fresh items and the subscribers; return the store URL."""
    (project / "schedules.yaml").write_text(
        BASE_CONFIG + CAMPAIGN.format(cadence=cadence), encoding="utf-8"
    )
    url = f"sqlite:///{project}/publisher.db"
    store = open_store(url)
    now = utc_now()
    add_posts(store, now)
    people = [SubscriberInput(f"person{n}@example.org", f"Person {n}") for n in range(SUBSCRIBERS)]
    import_subscribers(store, people, now=now)
    # The daemons below may start after the slot on a slow machine: watching from now makes
    # the slot a catch-up within grace instead of a slot before the campaign was scheduled.
    state.watched_since(store, "weekly", now=now)
    store.close()
    return url


def environment(url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PUBLISHER_DATABASE_URL": url,
        "COLUMNS": "200",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }


def start_daemon(
    project: Path, url: str, log_name: str, *, verbose: bool = False
) -> tuple[subprocess.Popen, Path]:
    """`publisher run` (-v: also the scheduler's own lines, see tests/daemon_logs.py)."""
    log_path = project / log_name
    process = subprocess.Popen(
        [sys.executable, "-m", "publisher.cli", *(["-v"] if verbose else []), "run"],
        cwd=project,
        env=environment(url),
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("w"),
    )
    return process, log_path


def cli(project: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "publisher.cli", *args],
        cwd=project,
        env=environment(url),
        capture_output=True,
        text=True,
        timeout=60,
    )


# Start-up (imports, migrations), compose, render and send take seconds on a quiet machine
# and many times that on a busy one: the waits are for a condition, and this bound only
# catches a hang (a daemon that died fails at once, with its log).
HANG = 240.0


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout: float = HANG,
    what: str = "",
    daemons: Sequence[tuple[subprocess.Popen, Path]] = (),
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        for process, log_path in daemons:
            assert process.poll() is None, f"a daemon exited: {log_path.read_text()}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def slot_statuses(url: str) -> list[str]:
    store = open_store(url)
    try:
        return [r.status for r in state.slot_records(store, "weekly")]
    finally:
        store.close()


def counts(url: str) -> tuple[int, int]:
    store = open_store(url)
    try:
        with store.session() as session:
            return session.query(EditionRow).count(), session.query(DeliveryRow).count()
    finally:
        store.close()


def stop(process: subprocess.Popen, log_path: Path) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=HANG)  # it finishes the work in flight first
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert code == 0, log_path.read_text()


def outbox(project: Path) -> list[Path]:
    return sorted((project / "outbox" / "weekly").glob("*/*.eml"))


def test_daemon_sends_the_slot_then_exits_0_on_sigterm(project):
    slot = (utc_now() + timedelta(seconds=6)).replace(microsecond=0)
    url = prepare(project, slot_cron(slot))
    process, log_path = start_daemon(project, url, "daemon.log")
    try:
        wait_for(
            lambda: "sent" in slot_statuses(url),
            what="the slot to be sent",
            daemons=[(process, log_path)],
        )
    finally:
        stop(process, log_path)
    assert counts(url) == (1, SUBSCRIBERS)
    assert len(outbox(project)) == SUBSCRIBERS
    log = log_path.read_text()
    assert "campaign=weekly" in log and "outcome=sent" in log
    assert "SIGTERM" in log and "daemon stopped" in log


def test_two_daemons_on_one_store_make_one_edition_and_one_message_each(project):
    slot = (utc_now() + timedelta(seconds=7)).replace(microsecond=0)
    url = prepare(project, slot_cron(slot))
    first = start_daemon(project, url, "first.log", verbose=True)
    second = start_daemon(project, url, "second.log", verbose=True)
    try:
        wait_for(
            lambda: "sent" in slot_statuses(url),
            what="the slot to be sent",
            daemons=[first, second],
        )
        # the other daemon's chance to (wrongly) send again: both have dealt with the slot
        wait_for(
            lambda: all(dealt_with(log.read_text(), slot) for log in (first[1], second[1])),
            what="both daemons to deal with the slot",
            daemons=[first, second],
        )
    finally:
        stop(*first)
        stop(*second)
    assert counts(url) == (1, SUBSCRIBERS)
    assert len(outbox(project)) == SUBSCRIBERS
    logs = first[1].read_text() + second[1].read_text()
    assert logs.count("outcome=sent") == 1
    # usually the other daemon logs "already taken"; on a slow start it simply sees the slot done


def test_pause_and_resume_reach_a_running_daemon(project):
    url = prepare(project, "*/2 * * * * *")  # a slot every two seconds
    paused = cli(project, url, "pause", "weekly")
    assert paused.returncode == 0, paused.stderr
    process, log_path = start_daemon(project, url, "daemon.log")
    try:
        daemon = [(process, log_path)]
        wait_for(lambda: slot_statuses(url).count("paused") >= 2, what="paused", daemons=daemon)
        assert counts(url) == (0, 0)
        resumed = cli(project, url, "resume", "weekly")
        assert resumed.returncode == 0, resumed.stderr
        wait_for(lambda: "sent" in slot_statuses(url), what="a sent slot", daemons=daemon)
    finally:
        stop(process, log_path)
    assert counts(url) == (1, SUBSCRIBERS)
    overview = cli(project, url, "schedule")
    assert overview.returncode == 0, overview.stderr
    assert "weekly" in overview.stdout and "edition 1" in overview.stdout


# --- staff commands -------------------------------------------------------------------------


def test_check_validates_cadences_and_warns_about_far_away_runs(project):
    url = prepare(project, "0 9 29 2 *")
    result = cli(project, url, "check")
    assert result.returncode == 0, result.stderr
    # The next 29 February from the real clock the child process uses (not a fixed year).
    assert "more than a year away" in result.stderr and next_leap_day() in result.stderr
    (project / "schedules.yaml").write_text(
        BASE_CONFIG + CAMPAIGN.format(cadence="0 9 31 2 *"), encoding="utf-8"
    )
    result = cli(project, url, "check")
    assert result.returncode == 2
    assert "schedules.yaml:16: campaigns[0].cadence: cadence '0 9 31 2 *' can never fire" in (
        " ".join(result.stderr.split())
    )


def test_pause_unknown_campaign_suggests_the_right_one(project):
    url = prepare(project, "weekly: monday 09:00")
    result = cli(project, url, "pause", "weekyl")
    assert result.returncode == 2
    assert "unknown campaign 'weekyl'; did you mean 'weekly'?" in result.stderr
    result = cli(project, url, "schedule")
    assert result.returncode == 0, result.stderr
    assert "every Monday at 09:00, UTC" in result.stdout and "active" in result.stdout
    assert result.stdout.count("next ") == 3
