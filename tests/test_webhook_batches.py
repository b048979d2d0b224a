"""The deliverer's overlapped passes (Deliverer.run_until_idle claims the next batch and records
the previous one while a batch is being posted): each subscriber's events still reach the
receiver in order, one attempt each, across many small batches, and a run cut short by its
limit leaves nothing claimed. Both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from publisher.config import WebhooksConfig
from publisher.deliver.webhooks import Deliverer
from publisher.store import Store, outbox, webhook_queue, webhooks
from publisher.store.consent import CLI, add_pending, set_subscriber_status
from tests.conftest import FIXED_NOW
from tests.webhook_receiver import Receiver, receiving

SETTINGS = WebhooksConfig(allow_private_addresses=True, timeout=5.0, workers=4)
STEPS = (("active", "confirm"), ("unsubscribed", "unsubscribe"), ("active", "resubscribe"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


def changes(store: Store, receiver: Receiver, people: int) -> None:
    webhooks.create_endpoint(store, receiver.url, outbox.EVENTS, by="o@example.org", now=FIXED_NOW)
    who = [
        add_pending(store, f"p{n}@example.org", name=None, topics=(), ctx=CLI, now=FIXED_NOW)
        for n in range(people)
    ]
    for status, action in STEPS:  # interleaved: each batch mixes people
        for person in who:
            set_subscriber_status(store, person.id, status, action=action, ctx=CLI, now=FIXED_NOW)


def test_each_persons_events_arrive_in_order_across_overlapped_batches(
    store: Store, receiver: Receiver
) -> None:
    changes(store, receiver, people=5)
    sender = Deliverer(store, SETTINGS, clock=lambda: FIXED_NOW, batch=3)
    run = sender.run_until_idle()
    sender.close()
    assert (run.delivered, run.retrying, run.failed, run.lost) == (15, 0, 0, 0)
    assert webhook_queue.state_counts(store) == {"delivered": 15}
    arrived: dict[str, list[str]] = {}
    for body in receiver.bodies():
        event = json.loads(body)
        arrived.setdefault(event["data"]["subscriber"]["email"], []).append(event["type"])
    wanted = ["subscriber.confirmed", "subscriber.unsubscribed", "subscriber.confirmed"]
    assert arrived == {f"p{n}@example.org": wanted for n in range(5)}
    assert len(receiver.received) == 15  # one attempt each: nothing posted twice


def test_a_run_cut_short_by_its_limit_leaves_nothing_claimed(
    store: Store, receiver: Receiver
) -> None:
    changes(store, receiver, people=5)  # 5 confirmations due now, the rest queued behind
    sender = Deliverer(store, SETTINGS, clock=lambda: FIXED_NOW, batch=2)
    assert sender.run_until_idle(limit=1).delivered == 2
    # no batch was claimed for a pass that never came: another process takes the rest at once
    other = webhook_queue.claim_due(
        store, holder="other", now=FIXED_NOW, lease=timedelta(minutes=2), limit=50
    )
    assert len(other) == 5  # p2..p4's confirmations, p0's and p1's unsubscriptions
    sender.close()
