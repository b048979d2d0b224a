"""The webhook tests' shared pieces (tests/test_webhooks.py, test_webhooks_browser.py,
test_broadcasts.py): the deliverer's settings and movable clock, an endpoint, a deliverer,
and what a receiver (tests/webhook_receiver.py) was sent."""

from __future__ import annotations

import json
from datetime import datetime

from publisher.config import WebhooksConfig
from publisher.deliver.webhooks import Deliverer
from publisher.store import Store, outbox, webhooks
from tests.conftest import FIXED_NOW
from tests.webhook_receiver import Receiver

SETTINGS = WebhooksConfig(allow_private_addresses=True, timeout=5.0, workers=4)


class Clock:
    """The deliverer's clock: what is due and when to retry (the tests move it)."""

    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def endpoint(store: Store, url: str, events: tuple[str, ...] = outbox.EVENTS):
    return webhooks.create_endpoint(store, url, events, by="owner@example.org", now=FIXED_NOW)


def deliverer(store: Store, clock: Clock) -> Deliverer:
    return Deliverer(store, SETTINGS, clock=clock)


def payloads(receiver: Receiver) -> list[dict]:
    return [json.loads(body) for body in receiver.bodies()]
