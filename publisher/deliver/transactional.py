"""One message to one person outside any edition (the sign-up confirmation), through the
configured backend, so the file outbox, SMTP and SendGrid all carry it."""

from __future__ import annotations

from publisher.config import PublisherConfig
from publisher.deliver.base import DeliveryBackend, Message, Recipient
from publisher.deliver.dispatch import send_with_retries
from publisher.deliver.registry import make_backend
from publisher.deliver.service import policy_from


def send_one(
    config: PublisherConfig,
    message: Message,
    recipient: Recipient,
    *,
    backend: DeliveryBackend | None = None,
) -> str | None:
    """Send `message` to `recipient`; None on success, else the error (never raises for a
    refused message: the caller decides what the person is told)."""
    backend = backend or make_backend(config)
    try:
        outcome = send_with_retries(
            backend,
            backend.prepare(message),
            [recipient],
            f"{message.campaign}-{recipient.subscriber_id}",
            policy_from(config),
        )
    finally:
        backend.close()
    problems = list(outcome.failed.values())
    if outcome.uncertain:
        problems.append("timed out; it may still arrive")
    return "; ".join(problems) or None
