"""What `publisher check` runs, in this order, beyond loading the configuration: one tuple,
built here (no command module registers anything by being imported). Each check takes the
validated configuration and returns human-readable problems."""

from __future__ import annotations

from collections.abc import Callable

from publisher.cli.delivery import check_delivery_backend
from publisher.cli.digest import check_digest_templates
from publisher.cli.schedule import check_schedules
from publisher.cli.web import check_web_templates
from publisher.config import PublisherConfig

Check = Callable[[PublisherConfig], list[str]]

CHECKS: tuple[Check, ...] = (
    check_delivery_backend,  # the backend exists and its secrets are in the environment
    check_digest_templates,  # templates compile; MJML known; colours AA
    check_schedules,  # cadences build triggers; far-away next runs warned about
    check_web_templates,  # the confirmation email renders
)
