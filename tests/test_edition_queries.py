"""The edition page's one-pass queries give what the queries they replaced gave."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from publisher.store.dashboard import (
    accepted_per_hour,
    activity_span,
    events_per_hour,
    recipients_per_group,
    recipients_with_any,
)
from publisher.subscribers.events import (
    ENGAGEMENT,
    MAX_BUCKETS,
    TIMELINE_NAMES,
    _hour,
    timeline,
)
from tests.admin_support import EXPECTED, seed_edition


def test_one_pass_per_group_counts_equal_one_query_per_group(store):
    edition_id = seed_edition(store)
    counted = recipients_per_group(store, edition_id, ENGAGEMENT)
    assert counted == {
        name: recipients_with_any(store, edition_id, events) for name, events in ENGAGEMENT.items()
    }
    assert counted == EXPECTED and counted["bounced"] > 0  # a group of two events counted
    # an edition with no events: every group is 0, not missing
    assert recipients_per_group(store, edition_id + 1000, ENGAGEMENT) == dict.fromkeys(
        ENGAGEMENT, 0
    )


def _span_first_timeline(store, edition_id, zone):
    """The chart's hours the way before one pass: the span read first, counted from its hour."""
    names = {e: TIMELINE_NAMES.get(n, n) for n, group in ENGAGEMENT.items() for e in group}
    span = activity_span(store, edition_id, list(names))
    assert span is not None
    first = _hour(span[0], zone)
    count = min(int((span[1] - first).total_seconds() // 3600) + 1, MAX_BUCKETS)
    series = {"accepted": [0] * count} | {name: [0] * count for name in names.values()}
    for hour, n in accepted_per_hour(store, edition_id, first).items():
        series["accepted"][min(hour, count - 1)] += n
    for event, per_hour in events_per_hour(store, edition_id, list(names), first).items():
        for hour, n in per_hour.items():
            series[names[event]][min(hour, count - 1)] += n
    return [(first + timedelta(hours=i)).astimezone(zone) for i in range(count)], series


# Colombo's hours moved half an hour since 2000 (+6:00 then, +5:30 since 2006): the exact
# fallback; Kathmandu is 45 minutes off UTC; Lord Howe moves by half an hour twice a year
@pytest.mark.parametrize(
    "zone_name", ["America/New_York", "Asia/Colombo", "Asia/Kathmandu", "Australia/Lord_Howe"]
)
def test_one_pass_timeline_equals_the_span_first_one(store, zone_name):
    edition_id = seed_edition(store)
    zone = ZoneInfo(zone_name)
    hours, series = timeline(store, edition_id, zone)
    assert (hours, series) == _span_first_timeline(store, edition_id, zone)
    assert sum(series["accepted"]) > 0 and hours[0].tzinfo == zone
    assert timeline(store, edition_id + 1000, zone) == ([], {})  # nothing sent, nothing drawn
