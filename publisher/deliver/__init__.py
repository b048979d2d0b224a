"""Delivery: one backend protocol (file, smtp, sendgrid), a ledger-backed dispatcher."""

from publisher.deliver.backends.registry import BACKENDS, check_delivery, make_backend
from publisher.deliver.base import DeliveryBackend, Message, Recipient
from publisher.deliver.outside_ledger import DryRun, dry_run, send_test_message
from publisher.deliver.report import DeliveryReport
from publisher.deliver.service import (
    deliver_edition,
    newest_edition,
    resumable_edition,
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
