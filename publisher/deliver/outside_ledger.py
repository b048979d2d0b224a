"""Delivery outside the ledger: a dry run (counts, batches and one sample message, nothing
sent), a test send of an edition to one address, and one message to one person (a test
send, the sign-up confirmation) through the configured backend. Nothing here writes a
ledger row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from publisher.config import PublisherConfig
from publisher.deliver.backends.registry import make_backend
from publisher.deliver.base import DeliveryBackend, Message, Recipient
from publisher.deliver.dispatch import send_with_retries
from publisher.deliver.service import build_message, edition_audience, policy_from
from publisher.store import Store, ledger
from publisher.store.editions import StoredEdition
from publisher.store.subscribers import subscriber_at


@dataclass
class DryRun:
    edition_id: int
    campaign: str
    number: int
    backend: str
    destination: str
    recipients: int
    batches: int
    already_done: int
    sample: str


def dry_run(
    config: PublisherConfig,
    store: Store,
    edition: StoredEdition,
    *,
    now: datetime,
    backend: DeliveryBackend[Any, Any] | None = None,
) -> DryRun:
    """Counts, batches and one sample message; nothing is sent and the ledger is untouched.
    `edition` may be unstored (id 0, from a preview compose)."""
    message = build_message(config, edition, now=now, store=store)
    backend = backend or make_backend(config)
    audience = edition_audience(config, store, edition.campaign, edition.id)
    first, due = None, 0
    for item in ledger.iter_due(store, edition.id, audience):
        first = first or item
        due += 1
    sample_to = (
        Recipient(first.subscriber_id, first.email, first.name, first.token, message.public_url)
        if first
        else Recipient(0, "someone@example.org", None, "sample-token", message.public_url)
    )
    done = ledger.counts(store, edition.id)
    return DryRun(
        edition.id,
        edition.campaign,
        edition.number,
        backend.name,
        backend.destination(message),
        due,
        math.ceil(due / backend.settings.batch_size),
        sum(done.get(s, 0) for s in ledger.DONE),
        backend.preview(backend.prepare(message), sample_to),
    )


def send_test_message(
    config: PublisherConfig,
    store: Store,
    edition: StoredEdition,
    address: str,
    *,
    now: datetime,
    backend: DeliveryBackend[Any, Any] | None = None,
) -> str | None:
    """Send the edition (stored, or unstored from a preview compose) to one address,
    outside the ledger. None on success, else the error."""
    message = build_message(config, edition, now=now, store=store)
    backend = backend or make_backend(config)
    known = subscriber_at(store, address.strip().lower())
    name, token = (known.name, known.token) if known else (None, "test-send")
    recipient = Recipient(0, address.strip(), name, token, message.public_url)
    return send_one(config, message, recipient, backend=backend, batch_key=f"{edition.id}-test")


def send_one(
    config: PublisherConfig,
    message: Message,
    recipient: Recipient,
    *,
    backend: DeliveryBackend[Any, Any] | None = None,
    batch_key: str | None = None,
) -> str | None:
    """One message to one person outside the ledger (a test send, the sign-up confirmation),
    through the configured backend. None on success, else the error (never raises for a
    refused message: the caller decides what the person is told)."""
    backend = backend or make_backend(config)
    try:
        outcome = send_with_retries(
            backend,
            backend.prepare(message),
            [recipient],
            batch_key or f"{message.campaign}-{recipient.subscriber_id}",
            policy_from(config),
        )
    finally:
        backend.close()
    problems = list(outcome.failed.values())
    if outcome.uncertain:
        problems.append("timed out; it may still arrive")
    return "; ".join(problems) or None
