"""The live count of who a send would reach (store.audience_counts.count_reachable), counted
per distinct topic list, equals reading every person: topics in any stored spelling,
people following everything, paused, suppressed and inactive people (both databases)."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import update

from publisher.store import Store
from publisher.store.audience_counts import count_audience, count_reachable
from publisher.store.broadcasts import Audience, audience_count, excluded
from publisher.store.models import SubscriberPauseRow, SubscriberRow
from publisher.store.subscribers import email_hash, follows, iter_subscribers
from publisher.store.suppression import suppress
from tests.conftest import FIXED_NOW
from tests.servers.data import add_subscribers

NOW = FIXED_NOW
SPELLINGS = [[], ["labor"], ["Labor"], ["labor", "housing"], ["housing"], ["transit"],
             ["Workers Rights"], ["workers-rights", "transit"], ["housing", "labor"]]  # fmt: skip


def seeded(store: Store) -> tuple[set[int], set[int]]:
    """60 people with mixed topics; some paused (one pause already over), suppressed or not
    active. The ids a send would hold back: (paused now, suppressed)."""
    rng = random.Random(7)
    emails = add_subscribers(store, NOW, 60)
    held: set[int] = set()
    suppressed: set[int] = set()
    with store.session() as session:
        rows = session.query(SubscriberRow).order_by(SubscriberRow.id).all()
        for row in rows:
            row.topics = list(rng.choice(SPELLINGS))
            if rng.random() < 0.1:
                row.status = "unsubscribed"
        for row in rows[::7]:
            ended = row.id % 2 == 0  # a pause that is over holds nobody back
            until = NOW - timedelta(days=1) if ended else NOW + timedelta(days=3)
            session.add(SubscriberPauseRow(subscriber_id=row.id, until=until))
            if not ended:
                held.add(row.id)
    for email in emails[3::9]:
        suppress(store, email, reason="bounced", source="test", now=NOW)
    hashes = {email_hash(e) for e in emails[3::9]}
    for person in iter_subscribers(store, status="active"):
        if email_hash(person.email) in hashes:
            suppressed.add(person.id)
    return held, suppressed


def read_one_by_one(store: Store, chooses, held: set[int]) -> int:
    return sum(
        1
        for person in iter_subscribers(store, status="active")
        if chooses(person.topics) and person.id not in held
    )


def test_the_count_equals_reading_every_person(store):
    paused, suppressed = seeded(store)
    held = paused | suppressed
    audiences = (Audience(), Audience(("labor",)), Audience(("labor",), ("housing",)),
                 Audience(("workers-rights", "transit")), Audience((), ("transit",)))  # fmt: skip
    for audience in audiences:

        def chooses(topics, a=audience):
            return follows(topics, a.topics) and not excluded(topics, a.exclude)

        expected = read_one_by_one(store, chooses, held)
        assert audience_count(store, audience, now=NOW) == expected, audience
        assert count_reachable(store, chooses, now=NOW) == expected
    everyone_active = read_one_by_one(store, lambda t: follows(t, ["labor"]), set())
    assert count_audience(store, ["labor"]) == everyone_active  # held-back people included
    assert 0 < len(held) < everyone_active


def test_a_person_leaving_or_a_pause_ending_changes_the_count(store):
    paused, suppressed = seeded(store)
    held = paused | suppressed
    audience = Audience(("labor",))
    before = audience_count(store, audience, now=NOW)
    with store.session() as session:
        first = session.query(SubscriberRow).filter(
            SubscriberRow.status == "active", SubscriberRow.topics.isnot(None)
        )
        target = next(r for r in first if follows(r.topics, ["labor"]) and r.id not in held)
        session.execute(
            update(SubscriberRow).where(SubscriberRow.id == target.id).values(status="bounced")
        )
    assert audience_count(store, audience, now=NOW) == before - 1
    later = NOW + timedelta(days=4)  # every pause is over: only the suppressed are held
    expected = read_one_by_one(store, lambda t: follows(t, ["labor"]), suppressed)
    assert audience_count(store, audience, now=later) == expected
    assert any(follows(p.topics, ["labor"]) for p in iter_subscribers(store) if p.id in paused)
