"""Scheduling decisions with a fake clock: catch-up, grace, coalescing, pause/resume, send
windows, slot claims, and the configuration checks."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from publisher.config import load_config
from publisher.errors import ConfigError
from publisher.pipeline import SlotOutcome
from publisher.schedule.daemon import Daemon
from publisher.schedule.slots import (
    far_away_warnings,
    overview,
    plan_catch_up,
    schedule_problems,
    window_opening,
)
from publisher.store import processes
from publisher.store import schedule_state as state
from publisher.store.items import upsert_items
from tests.conftest import present, write_config

NEW_YORK = ZoneInfo("America/New_York")


def campaign_yaml(cadence: str = "weekly: monday 09:00", **extra: str) -> str:
    lines = "".join(f"    {key}: {value}\n" for key, value in extra.items())
    return (
        "campaigns:\n"
        "  - name: weekly\n"
        "    title: The Weekly\n"
        "    subject: The Weekly\n"
        f'    cadence: "{cadence}"\n' + lines
    )


def ny(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)


class Recorder:
    """Stands in for pipeline.run_campaign_slot: remembers which slots ran."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, datetime]] = []

    def __call__(self, name: str, slot: datetime, now: datetime) -> SlotOutcome:
        self.runs.append((name, slot))
        return SlotOutcome("sent", None, f"run {len(self.runs)}")


def make_daemon(config, store, now, owner="host-a:1"):
    recorder = Recorder()
    daemon = Daemon(config, store, run_slot=recorder, clock=lambda: now, owner=owner)
    return daemon, recorder


def start_and_run(daemon: Daemon, now: datetime) -> list[str]:
    return [daemon.dispatch(name, slot, now) for name, slot in daemon.start_up(now)]


def test_a_slot_between_start_up_and_the_scheduler_start_is_the_jobs_first_run(make_config, store):
    """Start-up catches up to `now`; the campaign's job is first due at the next slot after
    it, whenever the scheduler itself starts (a slot in between is not lost)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    now = ny(2026, 11, 30, 8, 59)  # one minute before Monday's 09:00 slot
    daemon, _ = make_daemon(make_config(campaign_yaml()), store, now)
    scheduler = BlockingScheduler(timezone=UTC)
    daemon._add_campaign_job(scheduler, "weekly", now)
    [job] = scheduler.get_jobs()
    assert job.next_run_time == ny(2026, 11, 30, 9)


# --- catch-up -----------------------------------------------------------------------------


def test_first_start_catches_up_nothing(make_config, store):
    config = make_config(campaign_yaml())
    daemon, recorder = make_daemon(config, store, ny(2026, 11, 30, 10))
    assert daemon.start_up(ny(2026, 11, 30, 10)) == []  # 09:00 was before this daemon existed


def test_down_over_a_slot_runs_it_once_on_start_within_grace(make_config, store):
    config = make_config(campaign_yaml())
    daemon, recorder = make_daemon(config, store, ny(2026, 11, 29, 12))
    assert daemon.start_up(ny(2026, 11, 29, 12)) == []  # Sunday: watching from now on
    # ... the daemon is down over Monday 09:00 and starts again at 11:30
    restart = ny(2026, 11, 30, 11, 30)
    daemon, recorder = make_daemon(config, store, restart)
    assert start_and_run(daemon, restart) == ["sent run 1"]
    assert recorder.runs == [("weekly", ny(2026, 11, 30, 9))]
    # a second restart (or a second daemon) does not run it again
    daemon, recorder = make_daemon(config, store, restart + timedelta(minutes=5), owner="b:2")
    assert start_and_run(daemon, restart + timedelta(minutes=5)) == []
    assert present(state.get_slot(store, "weekly", ny(2026, 11, 30, 9))).status == "sent"


def test_down_beyond_grace_records_the_slot_as_missed(make_config, store):
    config = make_config(campaign_yaml(grace="6h"))
    make_daemon(config, store, ny(2026, 11, 29, 12))[0].start_up(ny(2026, 11, 29, 12))
    late = ny(2026, 11, 30, 15, 1)  # 6 hours and 1 minute after the slot
    daemon, recorder = make_daemon(config, store, late)
    assert start_and_run(daemon, late) == []
    assert recorder.runs == []
    record = present(state.get_slot(store, "weekly", ny(2026, 11, 30, 9)))
    assert record.status == "missed" and "down" in record.detail


def test_three_missed_slots_make_one_edition(make_config, store):
    config = make_config(campaign_yaml("daily: 07:30", grace="3d"))
    make_daemon(config, store, ny(2026, 11, 25, 12))[0].start_up(ny(2026, 11, 25, 12))
    restart = ny(2026, 11, 28, 8)  # down over the 26th, 27th and 28th at 07:30
    daemon, recorder = make_daemon(config, store, restart)
    assert start_and_run(daemon, restart) == ["sent run 1"]
    assert recorder.runs == [("weekly", ny(2026, 11, 28, 7, 30))]
    statuses = [r.status for r in state.slot_records(store, "weekly")]
    assert statuses == ["sent", "coalesced", "coalesced"]


def test_plan_catch_up_splits_missed_and_coalesced():
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    slots = [now - timedelta(hours=h) for h in (30, 20, 5, 1)]
    plan = plan_catch_up(slots, now=now, grace=timedelta(hours=6))
    assert plan.run == now - timedelta(hours=1)
    assert plan.coalesced == [now - timedelta(hours=5)]
    assert plan.missed == slots[:2]
    assert plan_catch_up([], now=now, grace=timedelta(hours=6)).run is None


def test_interrupted_run_is_resumed_on_start(make_config, store):
    config = make_config(campaign_yaml())
    slot = ny(2026, 11, 30, 9)
    # a daemon (pid that no longer exists on this host) claimed the slot and died mid-send
    dead = f"{processes.this_process().rpartition(':')[0]}:999999999"
    assert state.claim_slot(store, "weekly", slot, owner=dead, now=slot)
    daemon, recorder = make_daemon(config, store, slot + timedelta(minutes=20))
    assert start_and_run(daemon, slot + timedelta(minutes=20)) == ["sent run 1"]
    assert recorder.runs == [("weekly", slot)]


def test_interrupted_send_is_finished_even_after_grace(make_config, store):
    from publisher.store.models import EditionRow

    config = make_config(campaign_yaml(grace="1h"))
    slot = ny(2026, 11, 30, 9)
    with store.session() as session:
        session.add(
            EditionRow(
                campaign="weekly",
                number=1,
                slot=slot,
                composed_at=slot,
                subject="s",
                html="h",
                text="t",
                status="sending",
            )
        )
    dead = f"{processes.this_process().rpartition(':')[0]}:999999999"
    assert state.claim_slot(store, "weekly", slot, owner=dead, now=slot)
    two_days_later = slot + timedelta(days=2)
    daemon, recorder = make_daemon(config, store, two_days_later)
    assert start_and_run(daemon, two_days_later) == ["sent run 1"]


def test_failed_slot_beyond_grace_is_closed_as_missed(make_config, store):
    config = make_config(campaign_yaml(grace="1h"))
    slot = ny(2026, 11, 30, 9)
    assert state.claim_slot(store, "weekly", slot, owner="a:1", now=slot)
    state.finish_slot(store, "weekly", slot, "failed", now=slot, detail="boom")
    daemon, recorder = make_daemon(config, store, slot + timedelta(days=1))
    assert [o.split(" ")[0] for o in start_and_run(daemon, slot + timedelta(days=1))] == ["missed"]
    assert present(state.get_slot(store, "weekly", slot)).status == "missed"
    assert start_and_run(daemon, slot + timedelta(days=1, hours=1)) == []  # not retried forever


def test_failed_run_is_recorded_and_retried_on_next_start(make_config, store):
    config = make_config(campaign_yaml())
    slot = ny(2026, 11, 30, 9)

    def broken(name, slot, now):
        raise RuntimeError("template exploded")

    daemon = Daemon(config, store, run_slot=broken, clock=lambda: slot, owner="a:1")
    assert daemon.dispatch("weekly", slot, slot).startswith("failed: template exploded")
    assert present(state.get_slot(store, "weekly", slot)).status == "failed"
    daemon, recorder = make_daemon(config, store, slot + timedelta(hours=1), owner="a:2")
    assert start_and_run(daemon, slot + timedelta(hours=1)) == ["sent run 1"]


# --- slots claimed once -------------------------------------------------------------------


def test_two_daemons_claim_a_slot_once(make_config, store):
    config = make_config(campaign_yaml())
    slot = ny(2026, 11, 30, 9)
    first, first_runs = make_daemon(config, store, slot, owner="host-a:1")
    second, second_runs = make_daemon(config, store, slot, owner="host-b:1")
    assert first.dispatch("weekly", slot, slot) == "sent run 1"
    assert second.dispatch("weekly", slot, slot).startswith("already taken")
    assert len(first_runs.runs) + len(second_runs.runs) == 1


def test_a_live_claim_elsewhere_is_not_taken_over_until_stale(store):
    slot = datetime(2026, 11, 30, 14, tzinfo=UTC)
    assert state.claim_slot(store, "weekly", slot, owner="other-host:1", now=slot)
    assert not state.claim_slot(store, "weekly", slot, owner="me:1", now=slot)
    later = slot + state.DEFAULT_STALE_AFTER + timedelta(seconds=1)
    assert state.claim_slot(store, "weekly", slot, owner="me:1", now=later)


# --- pause / resume -----------------------------------------------------------------------


def test_pause_and_resume_through_the_store(make_config, store):
    config = make_config(campaign_yaml("daily: 09:00"))
    daemon, recorder = make_daemon(config, store, ny(2026, 11, 30, 9))
    state.set_paused(store, "weekly", True, now=ny(2026, 11, 29, 12))
    assert daemon.dispatch("weekly", ny(2026, 11, 30, 9), ny(2026, 11, 30, 9)).startswith("paused")
    state.set_paused(store, "weekly", False, now=ny(2026, 11, 30, 12))
    assert daemon.dispatch("weekly", ny(2026, 12, 1, 9), ny(2026, 12, 1, 9)) == "sent run 1"
    assert recorder.runs == [("weekly", ny(2026, 12, 1, 9))]
    # the slot skipped while paused is recorded, so a restart does not catch it up
    assert present(state.get_slot(store, "weekly", ny(2026, 11, 30, 9))).status == "paused"


def test_paused_in_config_never_runs(make_config, store):
    config = make_config(campaign_yaml("daily: 09:00", paused="true"))
    daemon, recorder = make_daemon(config, store, ny(2026, 11, 30, 9))
    assert daemon.dispatch("weekly", ny(2026, 11, 30, 9), ny(2026, 11, 30, 9)).startswith("paused")
    assert overview(config, store, now=ny(2026, 11, 30, 10))[0].paused == "schedules.yaml"


def test_poll_notices_pause_of_a_running_daemon(make_config, store, caplog):
    config = make_config(campaign_yaml())
    daemon, _ = make_daemon(config, store, ny(2026, 11, 30, 9))
    daemon.poll_paused()
    state.set_paused(store, "weekly", True, now=ny(2026, 11, 30, 9))
    with caplog.at_level("INFO", logger="publisher.schedule"):
        daemon.poll_paused()
    assert "campaign=weekly paused" in caplog.text


# --- send window --------------------------------------------------------------------------


def test_window_opening():
    window = (time(9, 0), time(17, 0))
    inside = ny(2026, 11, 30, 12)
    assert window_opening(inside, NEW_YORK, *window) == inside
    assert window_opening(ny(2026, 11, 30, 7), NEW_YORK, *window) == ny(2026, 11, 30, 9)
    assert window_opening(ny(2026, 11, 30, 18), NEW_YORK, *window) == ny(2026, 12, 1, 9)
    assert window_opening(inside, NEW_YORK, None, None) == inside


def test_catch_up_outside_the_window_waits_for_it_or_is_missed(make_config, store):
    config = make_config(
        campaign_yaml("daily: 09:00", not_before="'08:00'", not_after="'10:00'", grace="1h")
    )
    daemon, recorder = make_daemon(config, store, ny(2026, 11, 30, 10, 30))
    outcome = daemon.dispatch("weekly", ny(2026, 11, 30, 9, 59), ny(2026, 11, 30, 10, 30))
    assert outcome.startswith("missed") and "send window" in outcome
    assert recorder.runs == []


# --- configuration ------------------------------------------------------------------------


def errors_of(exc: ConfigError) -> list[ConfigError]:
    return getattr(exc, "errors", [exc])


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ({"cadence": '"0 9 31 2 *"'}, "campaigns[0].cadence", "can never fire"),
        ({"timezone": "Europe/Berln"}, "campaigns[0].timezone", "did you mean 'Europe/Berlin'"),
        ({"grace": "six hours"}, "campaigns[0].grace", "not a duration"),
        ({"not_before": "'9am'"}, "campaigns[0].not_before", "time of day"),
        ({"not_before": "'10:00'"}, "campaigns[0]", "outside the send window"),
        ({"cadenze": "daily"}, "campaigns[0].cadenze", "did you mean 'cadence'"),
    ],
)
def test_bad_schedule_configuration_names_file_line_and_key(tmp_path, extra, key, message):
    text = campaign_yaml(**{k: v for k, v in extra.items() if k != "cadence"})
    if "cadence" in extra:
        text = text.replace('"weekly: monday 09:00"', extra["cadence"])
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = [e for e in errors_of(info.value) if message in e.reason]
    assert found, [str(e) for e in errors_of(info.value)]
    assert found[0].key == key and found[0].file == str(path) and (found[0].line or 0) >= 8


def test_cadence_as_a_yaml_mapping_and_schedule_section(make_config):
    config = make_config(
        "schedule:\n  collect_every: 30m\n  feeds_every: 'off'\n"
        "campaigns:\n  - name: weekly\n    title: T\n    subject: S\n"
        "    cadence:\n      daily: 10:00\n    not_before: 09:00\n"
    )
    campaign = config.campaigns[0]
    assert campaign.cadence == "daily: 10:00"  # YAML read the unquoted 10:00 as 600
    assert campaign.grace == timedelta(hours=6)
    assert campaign.not_before == time(9, 0)
    assert campaign.zone(config.organisation) == "America/New_York"
    assert config.schedule.collect_every == timedelta(minutes=30)
    assert config.schedule.feeds_every is None


def test_next_run_more_than_a_year_away_is_a_warning(make_config):
    config = make_config(campaign_yaml("0 9 29 2 *"))
    warnings = far_away_warnings(config, now=datetime(2026, 11, 25, tzinfo=UTC))
    assert len(warnings) == 1 and "2028-02-29" in warnings[0]
    assert schedule_problems(config) == []


def test_slot_before_the_window_is_deferred_to_its_opening(make_config, store):
    config = make_config(
        campaign_yaml("daily: 09:00", not_before="'09:00'", not_after="'17:00'", grace="1d")
    )
    daemon, recorder = make_daemon(config, store, ny(2026, 11, 30, 18))
    outcome = daemon.dispatch("weekly", ny(2026, 11, 30, 9), ny(2026, 11, 30, 18))
    assert outcome == "deferred to 2026-12-01T14:00:00Z (send window)"
    assert daemon.deferred == [("weekly", ny(2026, 11, 30, 9), ny(2026, 12, 1, 9))]
    assert recorder.runs == []
    # when the deferred job fires inside the window, the slot runs
    assert daemon.dispatch("weekly", ny(2026, 11, 30, 9), ny(2026, 12, 1, 9)) == "sent run 1"


# --- with the real pipeline (compose, file outbox), still on a fake clock --------------------


def test_three_missed_slots_with_the_real_pipeline_give_one_edition(make_config, store, project):
    from publisher.items import Item
    from publisher.schedule.daemon import make_daemon as make_pipeline_daemon
    from publisher.store.models import DeliveryRow, EditionRow
    from publisher.store.subscribers import SubscriberInput, import_subscribers

    config = make_config(
        campaign_yaml("daily: 07:30", grace="3d")
        + "    sections:\n      - {name: posts, kinds: [article], max: 5}\n"
    )
    first_start, restart = ny(2026, 11, 25, 12), ny(2026, 11, 28, 8)
    make_pipeline_daemon(config, store, clock=lambda: first_start).start_up(first_start)
    upsert_items(
        store,
        [
            Item(
                id=f"t:{n}",
                title=f"Post {n}",
                url=f"https://www.example.org/{n}",
                published=restart - timedelta(days=n + 1),
                source="t",
                kind="article",
            )
            for n in range(3)
        ],
        now=restart,
    )
    people = [SubscriberInput(f"p{n}@example.org", None) for n in range(2)]
    import_subscribers(store, people, now=restart)
    daemon = make_pipeline_daemon(config, store, clock=lambda: restart)
    outcomes = [daemon.dispatch(name, slot, restart) for name, slot in daemon.start_up(restart)]
    assert len(outcomes) == 1 and outcomes[0].startswith("sent weekly #1: 2 sent")
    again = make_pipeline_daemon(config, store, clock=lambda: restart + timedelta(minutes=1))
    assert again.start_up(restart + timedelta(minutes=1)) == []
    with store.session() as session:
        assert session.query(EditionRow).count() == 1
        assert session.query(DeliveryRow).count() == 2
    assert len(list((project / "outbox" / "weekly").glob("*/*.eml"))) == 2


# --- the real scheduler loop, in this process -------------------------------------------------


def test_sigterm_lets_the_slot_in_flight_finish_and_takes_no_new_work(make_config, store):
    import os
    import signal
    import threading

    config = make_config(campaign_yaml("* * * * * *", timezone="UTC"))  # a slot every second
    started = threading.Event()
    finished: list[datetime] = []

    def slow_run(name, slot, now):
        started.set()
        # the "batch in flight" lasts until the SIGTERM has reached the daemon, however slow
        assert daemon.stopping.wait(30), "no SIGTERM reached the daemon"
        finished.append(slot)
        return SlotOutcome("sent", None, "slow")

    daemon = Daemon(config, store, run_slot=slow_run, clock=lambda: datetime.now(UTC))
    state.watched_since(store, "weekly", now=datetime.now(UTC))

    def kill_once_started() -> None:
        if started.wait(10):
            os.kill(os.getpid(), signal.SIGTERM)

    kill = threading.Thread(target=kill_once_started)
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    kill.start()
    try:
        daemon.serve()  # returns once stopped
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
        kill.join()
    assert len(finished) == 1  # the run in flight completed; no new slot started after SIGTERM
    assert [r.status for r in state.slot_records(store, "weekly")] == ["sent"]
