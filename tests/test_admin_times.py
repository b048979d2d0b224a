"""Every time on the staff pages is a <time> in the organisation's zone, in one format, with
its UTC time on hover; charts count per day and hour of that zone; charts draw no scale on
empty data and never draw a label over another."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from lxml import html as lxml_html

from publisher.store import audit
from publisher.store.consent import Context, pause, record_history
from publisher.store.dashboard import record_source_run
from publisher.store.models import SubscriberRow
from publisher.store.people_queries import growth
from publisher.subscribers.events import timeline
from publisher.web.admin.charts import EMPTY, Box, bar_chart, text_box
from publisher.web.context import DAY_FORMAT, MINUTE_FORMAT
from tests.admin_support import (
    ADMIN_CONFIG,
    SENT_AT,
    STAFF,
    add_accounts,
    log_in,
    seed_edition,
    xpath_list,
)
from tests.conftest import FIXED_NOW
from tests.web_support import serve

ZONES = ["America/New_York", "Asia/Kolkata"]  # the test config's, and one half an hour off UTC
PAGES = [
    "/admin/",
    "/admin/campaigns/weekly",
    "/admin/editions/{edition}",
    "/admin/subscribers",
    "/admin/subscribers/{subscriber}",
    "/admin/audit",
    "/admin/staff",
    "/admin/account",
]
# what a time looks like when it is shown raw: 2026-11-25, 12:00, "UTC"
RAW_TIME = re.compile(r"\d{4}-\d{2}-\d{2}|\b\d{1,2}:\d{2}\b|\bUTC\b")


def _seed_times(store) -> tuple[int, int]:
    """An edition with its ledger and events, a subscriber with history and a pause, a
    failing source, audit rows: every kind of time the pages show."""
    edition = seed_edition(store)
    with store.session() as session:
        subscriber = session.query(SubscriberRow).filter_by(email="r0@example.org").one().id
    ctx = Context(via="web", ip="192.0.2.1")
    record_history(store, subscriber, "sign-up", ctx=ctx, now=SENT_AT, status="active")
    pause(store, subscriber, FIXED_NOW + timedelta(days=20), ctx=ctx, now=FIXED_NOW)
    record_source_run(store, "posts", ["broken"], failed=True, now=FIXED_NOW - timedelta(days=2))
    audit.record(store, STAFF["owner"], "pause", "weekly", ip="192.0.2.9", now=SENT_AT)
    return edition, subscriber


def _check_time(node, zone: ZoneInfo) -> None:
    """One <time>: its datetime attribute, its text in `zone` and the one format, UTC on hover."""
    stamp = node.get("datetime")
    shown = node.text_content()
    if "T" not in stamp:  # a calendar day (an item dated without a time): no zone to convert
        assert shown == datetime.fromisoformat(stamp).strftime(DAY_FORMAT)
        return
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    assert node.get("title") == moment.strftime("%Y-%m-%d %H:%M UTC")
    local = moment.astimezone(zone)
    assert shown in (
        f"{local.strftime(MINUTE_FORMAT)} {local.tzname()}",
        local.strftime(DAY_FORMAT),
    ), shown


@pytest.mark.parametrize("zone_name", ZONES)
def test_every_time_is_in_the_organisations_zone(project, store, zone_name):
    add_accounts(store)
    edition, subscriber = _seed_times(store)
    zone = ZoneInfo(zone_name)
    config = ADMIN_CONFIG.replace("America/New_York", zone_name)
    seen = 0
    with serve(project, store, config_text=config) as served:
        with httpx.Client(base_url=served.url, follow_redirects=True, timeout=30) as http:
            log_in(http, STAFF["owner"])
            for path in PAGES:
                answer = http.get(path.format(edition=edition, subscriber=subscriber))
                assert answer.status_code == 200, path
                tree = lxml_html.fromstring(answer.text)
                times = xpath_list(tree, "//main//time")
                for node in times:
                    _check_time(node, zone)
                seen += len(times)
                for node in times:  # what is left must show no raw time
                    node.drop_tree()
                for svg in xpath_list(tree, "//main//*[local-name()='svg']"):
                    svg.drop_tree()  # bar labels are short day/hour marks, checked below
                for cadence in xpath_list(tree, "//main//*[@class='cadence']"):
                    cadence.drop_tree()  # "daily: 09:00" is configuration, not a moment
                for detail in xpath_list(tree, "//main//*[@class='detail']"):
                    detail.drop_tree()  # the words recorded with a change, kept as they were
                left = " ".join(xpath_list(tree, "//main//text()"))
                assert not RAW_TIME.search(left), (path, RAW_TIME.findall(left))
    assert seen >= 20  # every page has its times, the charts' tables included


@pytest.mark.parametrize("zone_name", ZONES)
def test_timeline_hours_are_the_zones_hours(store, zone_name):
    edition = seed_edition(store)
    zone = ZoneInfo(zone_name)
    hours, series = timeline(store, edition, zone)
    assert all(h.tzinfo == zone and h.minute == 0 for h in hours)
    # the seeded rows are at SENT_AT + minutes (accepted) and SENT_AT + 0..2 h (events): all
    # counted, in the hour of the zone they fall in
    assert sum(series["accepted"]) == 8 and sum(series["opens"]) == 5
    first = SENT_AT.astimezone(zone).replace(minute=0)
    assert hours[0] == first
    for name, values in series.items():
        assert len(values) == len(hours), name


def test_growth_counts_the_zones_days(store):
    """A subscriber who joined at 02:00 UTC joined the day before in New York."""
    zone = ZoneInfo("America/New_York")
    now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    joined = [
        datetime(2026, 11, 25, 2, 0, tzinfo=UTC),  # 24 Nov, 21:00 in New York
        datetime(2026, 11, 25, 6, 0, tzinfo=UTC),  # 25 Nov, 01:00
        datetime(2026, 11, 25, 14, 0, tzinfo=UTC),  # 25 Nov, 09:00
        datetime(2026, 10, 1, 12, 0, tzinfo=UTC),  # before the window
        datetime(2026, 11, 25, 16, 0, tzinfo=UTC),  # after now: not counted yet
    ]
    with store.session() as session:
        for i, at in enumerate(joined):
            session.add(
                SubscriberRow(
                    email=f"g{i}@example.org",
                    topics=[],
                    status="active",
                    token=f"g{i}",
                    created_at=at,
                    updated_at=at,
                )  # fmt: skip
            )
    rows = growth(store, now=now, zone=zone)
    assert len(rows) == 30
    days = [(day.date().isoformat(), new, total) for day, new, total in rows]
    assert days[-1] == ("2026-11-25", 2, 4) and days[-2] == ("2026-11-24", 1, 2)
    assert all(day.tzinfo == zone and day.hour == 0 for day, _, _ in rows)
    assert sum(new for _, new, _ in rows) == 3 and rows[0][2] == 1  # October's one before
    in_utc = growth(store, now=now)
    assert [new for _, new, _ in in_utc][-1] == 3  # in UTC all three joined on the 25th


# --- charts -----------------------------------------------------------------------------


def _texts(svg: str) -> list[tuple[str, Box]]:
    tree = lxml_html.fromstring(svg)
    out = []
    for node in xpath_list(tree, "//*[local-name()='text']"):
        box = text_box(
            float(node.get("x")), float(node.get("y")), node.text_content(), node.get("text-anchor")
        )
        out.append((node.text_content(), box))
    return out


def _bars(svg: str) -> list[Box]:
    tree = lxml_html.fromstring(svg)
    return [
        Box(
            float(r.get("x")),
            float(r.get("y")),
            float(r.get("x")) + float(r.get("width")),
            float(r.get("y")) + float(r.get("height")),
        )  # fmt: skip
        for r in xpath_list(tree, "//*[local-name()='rect']")
    ]


@pytest.mark.parametrize("values", [[], [0, 0, 0, 0]])
def test_an_empty_chart_says_so_and_draws_no_scale(values):
    svg = str(bar_chart("c", "New per day", [f"d{i}" for i in range(len(values))], values))
    assert [text for text, _ in _texts(svg)] == [EMPTY]
    assert "highest" not in svg and "<rect" not in svg


@pytest.mark.parametrize(
    "values",
    [
        [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [999_999 - 7 * i for i in range(30)],  # long numbers side by side
        [5, 123_456, 7, 123_000, 1, 0, 88_888, 3] * 9,  # 72 hours of a timeline
        [1, 2, 3],
    ],
)
def test_no_label_is_drawn_over_another_or_over_a_bar(values):
    labels = [f"{i:02d} {i % 24:02d}h" for i in range(len(values))]
    svg = str(bar_chart("c", "Opens per hour", labels, values))
    texts = _texts(svg)
    for i, (a, box_a) in enumerate(texts):
        assert box_a.left >= 0 and box_a.right <= 640, a
        for b, box_b in texts[i + 1 :]:
            assert not box_a.meets(box_b), (a, b)
    values_drawn = [(t, box) for t, box in texts if t.isdigit()]
    bars = _bars(svg)
    for text, box in values_drawn:  # a number never sits on another bar
        touching = [bar for bar in bars if bar.meets(box, 0)]
        assert len(touching) <= 1, text
    assert str(max(values)) in [t for t, _ in values_drawn]  # the highest is always written
    assert "highest" not in svg
