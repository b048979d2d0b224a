"""The edition page's one-pass queries give what the per-group queries they replaced give."""

from __future__ import annotations

from publisher.store.dashboard import recipients_per_group, recipients_with_any
from publisher.subscribers.events import ENGAGEMENT
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
