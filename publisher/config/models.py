"""The pydantic models of schedules.yaml, one section per stage. Unknown keys are errors.

The whole file (PublisherConfig) is here; its sections live in content.py (sources,
campaigns, feeds), sending.py (delivery, welcome, senders, approval, webhooks),
organisation.py, and the shared field types in fields.py. Every name is re-exported here."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from pydantic import Field, PrivateAttr, field_validator

from publisher.config.content import (
    BROADCAST_CAMPAIGN,
    MAX_EVERY,
    MAX_GRACE,
    RESERVED_CAMPAIGN_NAMES,
    CampaignConfig,
    CollectSettings,
    ExportSourceConfig,
    FeedConfig,
    FeedsConfig,
    FeedSourceConfig,
    MarkdownSourceConfig,
    ScheduleSettings,
    SectionConfig,
    SourceConfig,
)
from publisher.config.fields import (
    EmailAddress,
    OneLine,
    Strict,
    Topic,
    check_absolute_url,
    check_timezone,
    control_characters,
    email_address,
    format_key_path,
    one_line,
    topic,
)
from publisher.config.organisation import Colour, Colours, Organisation
from publisher.config.sending import (
    ORGANISATION_SENDER,
    ApprovalConfig,
    DeliveryConfig,
    FileDeliveryConfig,
    SenderConfig,
    SendGridDeliveryConfig,
    SmtpDeliveryConfig,
    SubscribersConfig,
    WebhooksConfig,
    WelcomeConfig,
)
from publisher.errors import ConfigError
from publisher.items import NEWSROOM

DEFAULT_CONFIG = "schedules.yaml"

__all__ = [
    "DEFAULT_CONFIG",
    "MAX_GRACE",
    "MAX_EVERY",
    "BROADCAST_CAMPAIGN",
    "control_characters",
    "one_line",
    "email_address",
    "topic",
    "format_key_path",
    "OneLine",
    "EmailAddress",
    "Topic",
    "Strict",
    "check_timezone",
    "check_absolute_url",
    "Colour",
    "Colours",
    "Organisation",
    "MarkdownSourceConfig",
    "FeedSourceConfig",
    "ExportSourceConfig",
    "CollectSettings",
    "SourceConfig",
    "SectionConfig",
    "RESERVED_CAMPAIGN_NAMES",
    "CampaignConfig",
    "ScheduleSettings",
    "FeedConfig",
    "FeedsConfig",
    "FileDeliveryConfig",
    "SmtpDeliveryConfig",
    "SendGridDeliveryConfig",
    "DeliveryConfig",
    "SubscribersConfig",
    "WelcomeConfig",
    "ORGANISATION_SENDER",
    "SenderConfig",
    "ApprovalConfig",
    "WebhooksConfig",
    "PublisherConfig",
]


# --- the whole file -----------------------------------------------------------------------


class PublisherConfig(Strict):
    # who sends: name, addresses, site, colours
    organisation: Organisation
    # store URL; PUBLISHER_DATABASE_URL wins; default sqlite:///var/publisher.db
    database_url: str | None = None
    # where items come from (markdown, feed, export)
    sources: list[SourceConfig] = []
    # how remote feeds are fetched
    collect: CollectSettings = CollectSettings()
    # the email digests
    campaigns: list[CampaignConfig] = []
    # how often the daemon collects and rebuilds feeds
    schedule: ScheduleSettings = ScheduleSettings()
    # the static feeds
    feeds: FeedsConfig = FeedsConfig()
    # how email is sent
    delivery: DeliveryConfig = DeliveryConfig()
    # the subscriber file imported by each run
    subscribers: SubscribersConfig = SubscribersConfig()
    # the welcome email sent once when a person confirms (none without this block)
    welcome: WelcomeConfig | None = None
    # verified From addresses staff may choose for a broadcast (besides the organisation's)
    senders: list[SenderConfig] = []
    # a second staff member approves broadcasts / digest editions before they go
    approval: ApprovalConfig = ApprovalConfig()
    # besides every staff member, the addresses a broadcast's test may be sent to
    test_addresses: list[EmailAddress] = Field(default=[], max_length=50)
    # how outgoing webhooks are delivered
    webhooks: WebhooksConfig = WebhooksConfig()

    # Set by load_config, not by the file: the directory relative paths are resolved from,
    # and the line of every key (so later checks can name file:line: key too).
    _root: Path = PrivateAttr(default=Path("."))
    _file: Path = PrivateAttr(default=Path(DEFAULT_CONFIG))
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)

    @field_validator("sources")
    @classmethod
    def _newsroom_is_built_in(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        # posts written in /admin are the items of a built-in source of this name
        if any(source.name == NEWSROOM for source in sources):
            raise ValueError(
                f"no source may be named '{NEWSROOM}': that is the built-in source of the "
                "posts written in /admin; rename this one"
            )
        return sources

    @field_validator("senders")
    @classmethod
    def _sender_names(cls, senders: list[SenderConfig]) -> list[SenderConfig]:
        names = [s.name for s in senders]
        if ORGANISATION_SENDER in names:
            raise ValueError(
                f"no sender may be named '{ORGANISATION_SENDER}': that is the organisation's "
                "own from_email/from_name, always available; rename this one"
            )
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"sender names must be unique: {', '.join(twice)}")
        return senders

    def sender(self, name: str) -> SenderConfig:
        """The broadcast sender called `name` ("organisation": the organisation's own
        address); otherwise a ConfigError naming the configured ones."""
        for sender in self.sender_choices():
            if sender.name == name:
                return sender
        known = ", ".join(s.name for s in self.sender_choices())
        raise ConfigError(
            f"unknown sender '{name}' (senders: {known})", file=str(self.file), key="senders"
        )

    def sender_choices(self) -> list[SenderConfig]:
        """Every sender staff may choose: the organisation's own first, then `senders:`."""
        org = self.organisation
        own = SenderConfig(
            name=ORGANISATION_SENDER,
            from_email=org.from_email,
            from_name=org.from_name,
            reply_to=org.reply_to,
        )
        return [own, *self.senders]

    @property
    def root(self) -> Path:
        """The folder relative paths in the file are resolved from."""
        return self._root

    @property
    def file(self) -> Path:
        return self._file

    def located_at(
        self, file: Path, lines: dict[tuple[str | int, ...], int] | None = None
    ) -> PublisherConfig:
        """This configuration, as read from `file` (set by load_config, never by the file:
        private attributes are not keys a schedules.yaml could set)."""
        located = self.model_copy()
        located._root, located._file = file.resolve().parent, file
        located._lines = dict(lines or {})
        return located

    def error_at(self, path: tuple[str | int, ...], message: str) -> ConfigError:
        """A ConfigError naming this file, the line of `path` and the key path."""
        return ConfigError(
            message, file=str(self.file), line=self._lines.get(path), key=format_key_path(path)
        )

    def resolve(self, path: str | Path) -> Path:
        p = Path(path)
        return p if p.is_absolute() else (self.root / p)

    def campaign(self, name: str) -> CampaignConfig:
        """The campaign called `name`; otherwise a ConfigError suggesting the closest name."""
        for campaign in self.campaigns:
            if campaign.name == name:
                return campaign
        names = [c.name for c in self.campaigns]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        known = ", ".join(names) or "none configured"
        raise ConfigError(
            f"unknown campaign '{name}'; {hint}(campaigns: {known})",
            file=str(self.file),
            key="campaigns",
        )

    @property
    def effective_database_url(self) -> str:
        env = os.environ.get("PUBLISHER_DATABASE_URL")
        if env:
            return env
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolve('var/publisher.db')}"
