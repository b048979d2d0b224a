"""Delivery backends by name: the one place a name becomes a class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from publisher.config import PublisherConfig
from publisher.deliver.backends.file import FileBackend
from publisher.deliver.backends.sendgrid import SendGridBackend
from publisher.deliver.backends.smtp import SmtpBackend
from publisher.deliver.base import DeliveryBackend
from publisher.errors import DeliveryError

BACKENDS: dict[str, Callable[[PublisherConfig], DeliveryBackend[Any, Any]]] = {
    "file": FileBackend.from_config,
    "smtp": SmtpBackend.from_config,
    "sendgrid": SendGridBackend.from_config,
}


def backend_name(config: PublisherConfig) -> str:
    name = config.delivery.effective_backend
    if name not in BACKENDS:
        raise DeliveryError(
            f"unknown delivery backend '{name}' (delivery.backend or PUBLISHER_DELIVERY); "
            f"choose one of: {', '.join(sorted(BACKENDS))}"
        )
    return name


def make_backend(config: PublisherConfig, name: str | None = None) -> DeliveryBackend[Any, Any]:
    return BACKENDS[name or backend_name(config)](config)


def check_delivery(config: PublisherConfig) -> list[str]:
    """For `publisher check`: the backend exists and its secrets are in the environment."""
    try:
        make_backend(config).close()
    except (DeliveryError, OSError) as exc:  # OSError: an unreadable smtp.ca_file
        return [f"delivery: {exc}"]
    return []
