"""The steering tests' project (issue 21): the dashboard's test project (a daily 09:00
New York cadence, audience labor + housing, the file backend) with known followers: five
follow the audience, one of them paused and one suppressed, and one follows another topic."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from publisher.store import Store, consent
from publisher.store.subscribers import SubscriberInput, find_subscriber, import_subscribers
from publisher.store.suppression import suppress
from tests.admin_support import write_posts
from tests.conftest import FIXED_NOW, present

FOLLOWERS = {
    "p0@example.org": ("labor",),
    "p1@example.org": ("labor", "housing"),
    "p2@example.org": ("labor",),  # paused
    "p3@example.org": ("housing",),  # suppressed
    "p4@example.org": ("housing",),
    "p5@example.org": ("parks",),  # not in the audience
}
REACHED = ["p0@example.org", "p1@example.org", "p4@example.org"]


def seed(project: Path, store: Store) -> None:
    write_posts(project)
    rows = [SubscriberInput(email, None, topics) for email, topics in FOLLOWERS.items()]
    import_subscribers(store, rows, now=FIXED_NOW - timedelta(days=3))
    paused = present(find_subscriber(store, email="p2@example.org")).id
    consent.pause(store, paused, FIXED_NOW + timedelta(days=30), ctx=consent.CLI, now=FIXED_NOW)
    suppress(store, "p3@example.org", reason="bounced", source="test", now=FIXED_NOW)


def outbox_recipients(outbox: Path, campaign: str = "weekly") -> list[str]:
    """Every address a real (non-test) message of the campaign was written to, with repeats."""
    import email
    from email.policy import default

    found = []
    for path in sorted((outbox / campaign).glob("*/*.eml")):
        if path.name.startswith("test-"):
            continue
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        found.append(message["To"].addresses[0].addr_spec)
    return sorted(found)


def collect(served: Any, store: Store) -> None:
    """The two posts into the store, as the daemon's collect job would."""
    from publisher.sources.collect import collect_all
    from publisher.store.sink import StoreSink

    collect_all(served.config, StoreSink(store), now=served.clock.now)
