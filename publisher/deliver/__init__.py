"""Delivery: one backend protocol (file, smtp, sendgrid), a ledger-backed dispatcher."""

from publisher.deliver.backends.registry import BACKENDS, check_delivery, make_backend
from publisher.deliver.base import DeliveryBackend, Message, Recipient
from publisher.deliver.report import DeliveryReport
from publisher.deliver.service import (
    DryRun,
    deliver_edition,
    dry_run,
    newest_edition,
    resumable_edition,
    send_test_message,
    unfinished_edition,
)

__all__ = [
    "BACKENDS",
    "DeliveryBackend",
    "DeliveryReport",
    "DryRun",
    "Message",
    "Recipient",
    "check_delivery",
    "deliver_edition",
    "dry_run",
    "make_backend",
    "newest_edition",
    "resumable_edition",
    "send_test_message",
    "unfinished_edition",
]
