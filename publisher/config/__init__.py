"""schedules.yaml: the one place configuration is read and validated.

Validation happens once, here, at the edge (pydantic, unknown keys are errors). Every problem
is reported as a ConfigError naming file, line and key path. Inner code receives these
models and never re-validates. `models` holds the whole file and re-exports the sections
(`organisation`, `content`, `sending`, on the shared types of `fields`), `loader` the reading.
"""

from publisher.config.loader import load_config, parse_yaml_with_lines
from publisher.config.models import (
    DEFAULT_CONFIG,
    CampaignConfig,
    CollectSettings,
    Colours,
    DeliveryConfig,
    ExportSourceConfig,
    FeedConfig,
    FeedsConfig,
    FeedSourceConfig,
    MarkdownSourceConfig,
    Organisation,
    PublisherConfig,
    ScheduleSettings,
    SectionConfig,
    SenderConfig,
    SubscribersConfig,
    WebhooksConfig,
    WelcomeConfig,
    check_timezone,
)

__all__ = [
    "DEFAULT_CONFIG",
    "CampaignConfig",
    "CollectSettings",
    "Colours",
    "DeliveryConfig",
    "ExportSourceConfig",
    "FeedConfig",
    "FeedSourceConfig",
    "FeedsConfig",
    "MarkdownSourceConfig",
    "Organisation",
    "PublisherConfig",
    "ScheduleSettings",
    "SectionConfig",
    "SubscribersConfig",
    "SenderConfig",
    "WebhooksConfig",
    "WelcomeConfig",
    "check_timezone",
    "load_config",
    "parse_yaml_with_lines",
]
