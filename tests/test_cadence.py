"""Cadences: readable forms and cron parse to the same trigger; DST; impossible dates."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from publisher.config.cadence import parse_cadence, parse_duration, parse_time_of_day
from publisher.schedule.slots import SlotTrigger, fire_times

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("readable", "cron"),
    [
        ("weekly: monday 09:00", "0 9 * * 1"),
        ("weekly: Mon 09:00", "0 9 * * mon"),
        ("daily: 07:30", "30 7 * * *"),
        ("weekly: monday, thursday 09:00", "0 9 * * 1,4"),
        ("weekly: sunday 18:00", "0 18 * * 0"),
        ("weekly: sunday 18:00", "0 18 * * 7"),
        ("monthly: 15 10:00", "0 10 15 * *"),
    ],
)
def test_readable_form_and_cron_give_the_same_trigger(readable, cron):
    a, b = parse_cadence(readable), parse_cadence(cron)
    assert a.trigger_fields() == b.trigger_fields()
    assert str(SlotTrigger(readable, NEW_YORK)) == str(SlotTrigger(cron, NEW_YORK))
    start = datetime(2026, 11, 25, tzinfo=UTC)
    assert fire_times(SlotTrigger(readable, NEW_YORK), after=start, count=5) == fire_times(
        SlotTrigger(cron, NEW_YORK), after=start, count=5
    )


def test_cron_sunday_is_zero_not_apscheduler_monday():
    # APScheduler 3's own from_crontab reads 0 as Monday; ours follows cron (0 = Sunday).
    fires = fire_times(
        SlotTrigger("0 9 * * 0", NEW_YORK), after=datetime(2026, 11, 25, tzinfo=UTC), count=1
    )
    assert fires[0].astimezone(NEW_YORK).strftime("%A %H:%M") == "Sunday 09:00"


def test_monthly_first_tuesday():
    fires = fire_times(
        SlotTrigger("monthly: first tuesday 10:00", NEW_YORK),
        after=datetime(2026, 11, 25, tzinfo=UTC),
        count=3,
    )
    local = [f.astimezone(NEW_YORK) for f in fires]
    assert [d.date().isoformat() for d in local] == ["2026-12-01", "2027-01-05", "2027-02-02"]
    assert all(d.strftime("%H:%M") == "10:00" for d in local)


def test_monthly_last_friday_words():
    cadence = parse_cadence("monthly: last friday 16:00")
    assert cadence.words == "on the last Friday of every month at 16:00"
    fires = fire_times(
        SlotTrigger(cadence.text, BERLIN), after=datetime(2027, 1, 1, tzinfo=UTC), count=1
    )
    assert fires[0].astimezone(BERLIN).date().isoformat() == "2027-01-29"


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [
        (NEW_YORK, datetime(2027, 3, 14), datetime(2027, 11, 7)),
        (BERLIN, datetime(2027, 3, 28), datetime(2027, 10, 31)),
    ],
)
def test_nine_oclock_stays_nine_oclock_across_dst(zone, spring, autumn):
    trigger = SlotTrigger("daily: 09:00", zone)
    for change in (spring, autumn):
        start = (change - timedelta(days=2)).replace(tzinfo=UTC)
        fires = fire_times(trigger, after=start, count=4)
        local = [f.astimezone(zone) for f in fires]
        assert [t.strftime("%H:%M") for t in local] == ["09:00"] * 4
        # the UTC offset differs on the two sides of the change
        assert len({t.utcoffset() for t in local}) == 2
        # consecutive runs are 23 or 25 hours apart across the change, 24 otherwise
        gaps = {(b - a) for a, b in zip(fires, fires[1:], strict=False)}
        assert timedelta(hours=24) in gaps and len(gaps) == 2


def test_spring_forward_0230_fires_once_at_0330_daylight_time():
    """Documented choice: 02:30 does not exist on 2027-03-14 in New York; the slot fires once,
    at 07:30 UTC (03:30 EDT, the instant 02:30 EST would have been)."""
    trigger = SlotTrigger("daily: 02:30", NEW_YORK)
    fires = fire_times(
        trigger,
        after=datetime(2027, 3, 13, 12, tzinfo=UTC),
        until=datetime(2027, 3, 15, 12, tzinfo=UTC),
    )
    on_the_day = [f for f in fires if f.astimezone(NEW_YORK).date().isoformat() == "2027-03-14"]
    assert on_the_day == [datetime(2027, 3, 14, 7, 30, tzinfo=UTC)]
    assert on_the_day[0].astimezone(NEW_YORK).strftime("%H:%M %Z") == "03:30 EDT"
    assert fires[-1].astimezone(NEW_YORK).strftime("%H:%M") == "02:30"  # next day: back to normal


def test_spring_forward_in_berlin_fires_once():
    trigger = SlotTrigger("daily: 02:30", BERLIN)
    fires = fire_times(
        trigger,
        after=datetime(2027, 3, 27, 12, tzinfo=UTC),
        until=datetime(2027, 3, 28, 23, tzinfo=UTC),
    )
    assert fires == [datetime(2027, 3, 28, 1, 30, tzinfo=UTC)]  # 03:30 CEST


@pytest.mark.parametrize(("zone", "day"), [(NEW_YORK, "2027-11-07"), (BERLIN, "2027-10-31")])
def test_fall_back_repeated_time_fires_once(zone, day):
    hour = "01:30" if zone is NEW_YORK else "02:30"
    trigger = SlotTrigger(f"daily: {hour}", zone)
    start = datetime.fromisoformat(day).replace(tzinfo=UTC) - timedelta(days=1)
    fires = fire_times(trigger, after=start, count=3)
    on_the_day = [f for f in fires if f.astimezone(zone).date().isoformat() == day]
    assert len(on_the_day) == 1
    assert on_the_day[0].astimezone(zone).strftime("%H:%M") == hour


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 9 31 2 *", "can never fire"),
        ("0 9 30 2 *", "can never fire"),
        ("0 9 1 * 1", "restricts both"),
        ("weekly: mondy 09:00", "did you mean 'monday'"),
        ("daily: 25:00", "not a time of day"),
        ("weekly: 09:00", "needs a day"),
        ("monthly: fifth monday 09:00", "monthly"),
        ("61 * * * *", "not a valid minute"),
        ("0 9 * 13 *", "not a valid month"),
        ("0 9 * * 8", "not a valid day of week"),
        ("every monday", "cannot read cadence"),
        ("0 9 * *", "cannot read cadence"),
    ],
)
def test_bad_cadences_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_cadence(text)


def test_february_29_is_possible_but_rare():
    cadence = parse_cadence("0 9 29 2 *")
    first = cadence.first_day_on_or_after(datetime(2026, 11, 25).date())
    assert first is not None and first.isoformat() == "2028-02-29"


def test_durations_and_times():
    assert parse_duration("6h") == timedelta(hours=6)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("six hours")
    assert parse_time_of_day("09:00") == time(9, 0)
    assert parse_time_of_day(600) == time(10, 0)  # YAML 1.1 reads unquoted 10:00 as 600
    with pytest.raises(ValueError, match="time of day"):
        parse_time_of_day("9am")
