"""Skipping and moving a digest's next slot (issue 21), with a fake clock: the daemon never
sends a skipped slot, sends a moved one once at its new time and never at its own, and
catch-up after downtime (a daemon restart) respects both; `publisher schedule`'s overview
shows the new times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from publisher.errors import ScheduleError
from publisher.schedule import steering
from publisher.schedule.slots import overview
from publisher.store import schedule_state as state
from publisher.store import slot_overrides
from tests.conftest import present
from tests.test_schedule import campaign_yaml, make_daemon, start_and_run

NEW_YORK = ZoneInfo("America/New_York")
STAFF = "owner@example.org"


def ny(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)


MONDAY = ny(2026, 11, 30, 9)  # the weekly slot
NEXT_MONDAY = ny(2026, 12, 7, 9)
SUNDAY = ny(2026, 11, 29, 12)  # the daemon starts watching here


@pytest.fixture
def config(make_config, store):
    cfg = make_config(campaign_yaml(grace="6h"))
    make_daemon(cfg, store, SUNDAY)[0].start_up(SUNDAY)  # watched from Sunday on
    return cfg


def test_a_skipped_slot_sends_nothing_and_the_slot_after_it_is_normal(config, store):
    change = steering.skip_next(config, store, "weekly", by=STAFF, now=SUNDAY)
    assert change.slot == MONDAY and change.runs_at is None
    daemon, recorder = make_daemon(config, store, MONDAY)
    assert daemon.dispatch("weekly", MONDAY, MONDAY) == f"skipped (skipped by {STAFF})"
    assert recorder.runs == []
    record = present(state.get_slot(store, "weekly", MONDAY))
    assert record.status == "skipped" and STAFF in record.detail
    assert daemon.dispatch("weekly", NEXT_MONDAY, NEXT_MONDAY).startswith("sent")
    assert recorder.runs == [("weekly", NEXT_MONDAY)]


def test_a_skipped_slot_is_not_caught_up_after_downtime(config, store):
    steering.skip_next(config, store, "weekly", by=STAFF, now=SUNDAY)
    restart = MONDAY + timedelta(hours=2)  # down over the skipped slot, within grace
    daemon, recorder = make_daemon(config, store, restart)
    start_and_run(daemon, restart)
    assert recorder.runs == []
    assert present(state.get_slot(store, "weekly", MONDAY)).status == "skipped"


def test_a_moved_slot_sends_once_at_its_new_time_never_at_its_own(config, store):
    moved_to = ny(2026, 11, 30, 15, 30)  # the afternoon instead of 09:00
    change = steering.move_next(config, store, "weekly", moved_to, by=STAFF, now=SUNDAY)
    assert (change.slot, change.runs_at) == (MONDAY, moved_to)
    daemon, recorder = make_daemon(config, store, MONDAY)
    assert daemon.dispatch("weekly", MONDAY, MONDAY).startswith("moved to")  # its own time
    assert recorder.runs == [] and state.get_slot(store, "weekly", MONDAY) is None
    assert ("weekly", MONDAY, moved_to) in daemon.deferred  # waits for the new time
    assert daemon.dispatch("weekly", MONDAY, moved_to).startswith("sent")
    assert recorder.runs == [("weekly", MONDAY)]
    # the deferred job firing again, or the cron's catch-up: nothing twice
    later = moved_to + timedelta(minutes=1)
    assert daemon.dispatch("weekly", MONDAY, later).startswith("already taken")
    assert recorder.runs == [("weekly", MONDAY)]


def test_a_moved_slot_survives_a_daemon_restart_and_runs_once(config, store):
    moved_to = ny(2026, 11, 30, 15, 30)
    steering.move_next(config, store, "weekly", moved_to, by=STAFF, now=SUNDAY)
    between = MONDAY + timedelta(hours=1)  # restarted after its own time, before the new one
    daemon, recorder = make_daemon(config, store, between)
    assert start_and_run(daemon, between) == []  # not run at (or after) its own time
    assert [(n, s, w) for n, s, w in daemon.deferred] == [("weekly", MONDAY, moved_to)]
    assert daemon.dispatch("weekly", MONDAY, moved_to).startswith("sent")
    # down over the new time as well: a second restart within grace does not send it again
    again = moved_to + timedelta(hours=1)
    daemon, recorder2 = make_daemon(config, store, again, owner="host-b:2")
    assert start_and_run(daemon, again) == []
    assert recorder.runs + recorder2.runs == [("weekly", MONDAY)]


def test_catch_up_after_downtime_runs_a_moved_slot_within_grace_of_its_new_time(config, store):
    moved_to = ny(2026, 11, 30, 15, 30)
    steering.move_next(config, store, "weekly", moved_to, by=STAFF, now=SUNDAY)
    restart = moved_to + timedelta(hours=5)  # more than 6 h after its own time
    daemon, recorder = make_daemon(config, store, restart)
    assert start_and_run(daemon, restart) == ["sent run 1"]
    assert recorder.runs == [("weekly", MONDAY)]


def test_catch_up_beyond_grace_of_the_new_time_records_it_missed(config, store):
    moved_to = ny(2026, 11, 30, 15, 30)
    steering.move_next(config, store, "weekly", moved_to, by=STAFF, now=SUNDAY)
    restart = moved_to + timedelta(hours=7)
    daemon, recorder = make_daemon(config, store, restart)
    assert start_and_run(daemon, restart) == [] and recorder.runs == []
    assert present(state.get_slot(store, "weekly", MONDAY)).status == "missed"


def test_a_slot_moved_earlier_runs_at_its_new_time_and_not_again_at_its_own(config, store):
    moved_to = ny(2026, 11, 29, 18)  # Sunday evening instead of Monday morning
    steering.move_next(config, store, "weekly", moved_to, by=STAFF, now=SUNDAY)
    daemon, recorder = make_daemon(config, store, SUNDAY)
    daemon.poll_overrides(SUNDAY)  # a running daemon learns of it from its poll
    assert ("weekly", MONDAY, moved_to) in daemon.deferred
    assert daemon.dispatch("weekly", MONDAY, moved_to).startswith("sent")
    daemon.dispatch("weekly", MONDAY, MONDAY)  # the cron at its own time: nothing
    assert present(state.get_slot(store, "weekly", MONDAY)).status == "sent"
    restart = MONDAY + timedelta(hours=1)  # and a restart after its own time: nothing
    daemon2, recorder2 = make_daemon(config, store, restart, owner="host-b:2")
    assert start_and_run(daemon2, restart) == []
    assert recorder.runs + recorder2.runs == [("weekly", MONDAY)]


def test_the_overview_shows_the_new_time_and_leaves_the_skipped_slot_out(config, store):
    moved_to = ny(2026, 11, 30, 15, 30)
    steering.move_next(config, store, "weekly", moved_to, by=STAFF, now=SUNDAY)
    [row] = overview(config, store, now=SUNDAY)
    assert row.next_runs == [moved_to, NEXT_MONDAY, ny(2026, 12, 14, 9)]
    assert [c.moved_to for c in row.changes] == [moved_to]
    steering.skip_next(config, store, "weekly", by=STAFF, now=SUNDAY)  # replaces the move
    [row] = overview(config, store, now=SUNDAY)
    assert row.next_runs == [NEXT_MONDAY, ny(2026, 12, 14, 9), ny(2026, 12, 21, 9)]
    assert [c.action for c in row.changes] == ["skip"]


def test_undo_before_it_happens_and_not_after(config, store):
    steering.skip_next(config, store, "weekly", by=STAFF, now=SUNDAY)
    undone = steering.undo(config, store, "weekly", MONDAY, now=SUNDAY)
    assert undone.action == "skip"
    assert slot_overrides.get_override(store, "weekly", MONDAY) is None
    [row] = overview(config, store, now=SUNDAY)
    assert row.next_runs[0] == MONDAY and row.changes == []
    steering.move_next(config, store, "weekly", ny(2026, 11, 30, 10), by=STAFF, now=SUNDAY)
    with pytest.raises(ScheduleError, match="too late"):
        steering.undo(config, store, "weekly", MONDAY, now=ny(2026, 11, 30, 10, 1))
    with pytest.raises(ScheduleError, match="neither skipped nor moved"):
        steering.undo(config, store, "weekly", NEXT_MONDAY, now=SUNDAY)


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("2026-11-29 11:00", "already passed"),
        ("2026-12-07 09:00", "before the following slot"),
        ("2026-11-30 09:00", "own time"),
        ("next monday", "not a date and time"),
    ],
)
def test_a_move_is_refused_outside_now_and_the_following_slot(config, store, to, message):
    with pytest.raises(ScheduleError, match=message):
        moment = steering.local_time(config, "weekly", to)
        steering.move_next(config, store, "weekly", moment, by=STAFF, now=SUNDAY)
    assert slot_overrides.get_override(store, "weekly", MONDAY) is None


def test_local_time_is_in_the_campaign_zone_and_refuses_a_time_the_clocks_skip(make_config):
    config = make_config(campaign_yaml(timezone="America/New_York"))
    assert steering.local_time(config, "weekly", "2026-11-30 15:30") == ny(2026, 11, 30, 15, 30)
    with pytest.raises(ScheduleError, match="does not exist"):
        steering.local_time(config, "weekly", "2027-03-14 02:30")


def test_publisher_skip_move_and_undo_from_the_command_line(project, config, store, monkeypatch):
    from typer.testing import CliRunner

    from publisher.cli import app
    from publisher.store.audit import recent

    monkeypatch.setenv("PUBLISHER_DATABASE_URL", store.url)
    monkeypatch.setattr("publisher.cli.schedule.utc_now", lambda: SUNDAY)

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, ["-c", str(project / "schedules.yaml"), *args])
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    out = run("move", "weekly", "--to", "2026-11-30 15:30")  # the campaign's zone: New York
    assert "moved to Mon 30 Nov 2026 15:30 EST" in out
    assert present(slot_overrides.get_override(store, "weekly", MONDAY)).moved_to == ny(
        2026, 11, 30, 15, 30
    )
    out = run("schedule")
    assert "next Mon 2026-11-30 15:30 EST (20:30 UTC)" in out
    assert "slot Mon 30 Nov 2026 09:00 EST: moved to Mon 30 Nov 2026 15:30 EST (by cli)" in out
    assert "skipped" in run("skip", "weekly")
    assert "undone" in run("skip", "weekly", "--undo")
    assert slot_overrides.get_override(store, "weekly", MONDAY) is None
    actions = [e.action for e in recent(store)]
    assert {"move slot", "skip slot", "undo slot change"} <= set(actions)
    refused = CliRunner().invoke(
        app, ["-c", str(project / "schedules.yaml"), "move", "weekly", "--to", "2026-12-08 09:00"]
    )
    assert "before the following slot" in str(refused.exception)  # main() makes it exit 1


def test_a_skipped_or_later_moved_slot_is_not_late_without_a_daemon(config, store):
    from publisher.schedule.presence import late_slot

    campaign = config.campaign("weekly")
    due = MONDAY + timedelta(minutes=30)
    assert late_slot(config, store, campaign, now=due) == MONDAY  # no daemon: late
    steering.skip_next(config, store, "weekly", by=STAFF, now=SUNDAY)
    assert late_slot(config, store, campaign, now=due) is None
    moved_to = ny(2026, 11, 30, 12)  # within grace (6 h) of its own time
    steering.move_next(config, store, "weekly", moved_to, by=STAFF, now=SUNDAY)
    assert late_slot(config, store, campaign, now=due) is None  # its new time is to come
    assert late_slot(config, store, campaign, now=moved_to + timedelta(minutes=5)) == MONDAY


def test_a_moved_slot_with_the_real_pipeline_makes_one_edition_sent_once(
    make_config, store, project
):
    """The real slot runner (collect, compose, the file backend), a fixed clock: nothing at
    the slot's own time, one edition at its new time after a daemon restart, and a second
    restart sends nothing more."""
    from publisher.items import Item
    from publisher.schedule.daemon import make_daemon as make_pipeline_daemon
    from publisher.store.items import upsert_items
    from publisher.store.models import DeliveryRow, EditionRow
    from publisher.store.subscribers import SubscriberInput, import_subscribers

    config = make_config(
        campaign_yaml(grace="6h") + "    sections:\n      - {name: posts, kinds: [article]}\n"
    )
    make_pipeline_daemon(config, store, clock=lambda: SUNDAY).start_up(SUNDAY)
    items = [
        Item(id=f"t:{n}", title=f"Post {n}", url=f"https://www.example.org/{n}",
             published=SUNDAY - timedelta(days=n + 1), source="t", kind="article")
        for n in range(2)
    ]  # fmt: skip
    upsert_items(store, items, now=SUNDAY)
    import_subscribers(store, [SubscriberInput(f"p{n}@example.org") for n in range(2)], now=SUNDAY)
    moved_to = ny(2026, 11, 30, 15, 30)
    steering.move_next(config, store, "weekly", moved_to, by=STAFF, now=SUNDAY)
    daemon = make_pipeline_daemon(config, store, clock=lambda: MONDAY)
    assert daemon.dispatch("weekly", MONDAY, MONDAY).startswith("moved to")
    restarted = make_pipeline_daemon(config, store, clock=lambda: moved_to)
    outcomes = [restarted.dispatch(n, s, moved_to) for n, s in restarted.start_up(moved_to)]
    assert len(outcomes) == 1 and outcomes[0].startswith("sent weekly #1: 2 sent")
    later = moved_to + timedelta(minutes=10)
    again = make_pipeline_daemon(config, store, clock=lambda: later)
    assert again.start_up(later) == []
    assert again.dispatch("weekly", MONDAY, later).startswith("already taken")
    with store.session() as session:
        assert session.query(EditionRow).count() == 1
        assert session.query(DeliveryRow).count() == 2
    assert len(list((project / "outbox" / "weekly").glob("*/*.eml"))) == 2
