"""The pydantic models of schedules.yaml, one section per stage. Unknown keys are errors."""

from __future__ import annotations

import difflib
import os
import unicodedata
from collections.abc import Sequence
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from publisher.config.cadence import (
    check_send_window,
    normalise_cadence,
    parse_time_of_day,
    positive_duration,
)
from publisher.errors import ConfigError
from publisher.items import NEWSROOM
from publisher.support.slug import slugify

DEFAULT_CONFIG = "schedules.yaml"
# Longest campaign grace and collect/feeds interval: beyond these a value is a typo.
MAX_GRACE = timedelta(days=31)
MAX_EVERY = timedelta(days=31)
BROADCAST_CAMPAIGN = "~broadcast"  # broadcasts' editions' campaign key: no campaign has a "~"


def control_characters(text: str, *, allowed: str = "") -> list[str]:
    """The control characters (C0, DEL, C1) and Unicode line/paragraph separators in
    `text`, as escapes ('\\r', '\\x0b'), except those in `allowed`."""
    found = []
    for char in text:
        if char in allowed:
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            escaped = repr(char)[1:-1]
            if escaped not in found:
                found.append(escaped)
    return found


def one_line(value: str) -> str:
    """A value that ends up in an email header (subject, From name, List-Id...): a CR or LF
    would start a header of its own, so no control character at all."""
    bad = control_characters(value)
    if bad:
        raise ValueError(
            f"contains control characters ({', '.join(bad)}); this value goes into an email "
            "header, write it on one line"
        )
    return value.strip()


def email_address(value: str) -> str:
    """An address as email-validator reads it (syntax only, no DNS), normalised; an
    internationalised local part is refused since not every backend can send to it."""
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"'{value}' is not an email address: {exc}") from None
    return result.ascii_email or result.normalized


def topic(value: str) -> str:
    """Topics (audiences, section and feed selectors) are slugs, as item topics are."""
    slug = slugify(value)
    if not slug:
        raise ValueError(f"topic '{value}' has no letter or digit")
    return slug


def format_key_path(path: Sequence[str | int]) -> str:
    """('campaigns', 0, 'subject') -> 'campaigns[0].subject'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


OneLine = Annotated[str, AfterValidator(one_line)]
EmailAddress = Annotated[str, AfterValidator(email_address)]
Topic = Annotated[str, AfterValidator(topic)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    # Fields whose text may span lines (a postal address, a description); every other
    # string is one line: URLs, hosts and names can end up in a header or a request line.
    _multiline: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        """No configuration string carries a control character; tabs and line breaks only
        in the multi-line fields."""
        allowed = "\n\t" if info.field_name in cls._multiline else ""
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                bad = control_characters(text, allowed=allowed)
                if bad:
                    raise ValueError(f"contains control characters ({', '.join(bad)})")
        return value


def check_timezone(name: str) -> str:
    """Validate an IANA zone name, suggesting the closest one when it is misspelt."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"unknown time zone '{name}'{hint}") from None
    return name


def check_absolute_url(url: str) -> str:
    if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    return url.rstrip("/") if url.count("/") == 2 else url


# --- organisation -------------------------------------------------------------------------


Colour = Annotated[str, Field(pattern=r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]


class Colours(Strict):
    # headings, links and buttons (`publisher check` checks WCAG AA contrast)
    primary: Colour = "#1d4f91"
    # the second colour of the email and the web pages
    accent: Colour = "#b3261e"
    # body text
    text: Colour = "#1a1a1a"
    # secondary text (dates, the footer)
    muted: Colour = "#595959"
    # the background around the email
    background: Colour = "#f4f4f4"
    # the background of the email's content
    surface: Colour = "#ffffff"


class Organisation(Strict):
    _multiline = frozenset({"postal_address"})

    # the organisation's name (in From, footers and feeds; one line)
    name: OneLine
    # the organisation's site: the default feed link, and the only site allowed to frame /subscribe
    website: str
    public_url: str = Field(
        description="Where feeds/ and archive/ are served; links in feeds and emails use it."
    )
    # shown in every email's footer (may span lines)
    postal_address: str
    # sender address of every email
    from_email: EmailAddress
    # the sender name shown in From (without it, the bare address)
    from_name: OneLine | None = None
    # Reply-To address, when replies go elsewhere
    reply_to: EmailAddress | None = None
    # https URL of the logo shown in emails
    logo: str | None = Field(default=None, pattern=r"^https://\S+$")
    # language of emails, pages and feeds (`lang`, `xml:lang`)
    language: str = "en"
    # text direction of emails and pages
    direction: Literal["ltr", "rtl"] = "ltr"
    # IANA zone: default for campaigns, and times shown by the CLI
    timezone: str = "UTC"
    # the colours of the emails and the web pages
    colours: Colours = Colours()

    _tz = field_validator("timezone")(classmethod(lambda cls, v: check_timezone(v)))
    _urls = field_validator("website", "public_url")(
        classmethod(lambda cls, v: check_absolute_url(v))
    )


# --- sources ------------------------------------------------------------------------------


class MarkdownSourceConfig(Strict):
    type: Literal["markdown"]
    # unique source name (item ids start with it)
    name: str
    # folder of .md files (subfolders included)
    path: str
    # a post's default URL is this plus its file name
    base_url: str | None = None
    # kind of posts whose front matter names none
    default_kind: str = "article"


class FeedSourceConfig(Strict):
    type: Literal["feed"]
    # unique source name
    name: str
    # RSS 2.0, Atom or JSON Feed URL, fetched with conditional GET
    url: str
    # seconds for each connect or read
    timeout: float = 10.0
    # Total seconds for one fetch: connect, redirects and every read together.
    deadline: float = Field(default=30.0, gt=0)
    # the largest body read, in bytes (counted as it is decompressed)
    max_bytes: int = Field(default=10_000_000, gt=0)
    # May connect to loopback, private, link-local (cloud metadata) addresses, through
    # redirects too; a url that is itself such an address (or localhost) may anyway.
    allow_private_addresses: bool = False
    # kind of the feed's items
    default_kind: str = "news"
    # topics added to every item of the feed
    topics: list[str] = []


class ExportSourceConfig(Strict):
    type: Literal["export"]
    # unique source name
    name: str
    # JSON (a list, or {"items": [...]}) or CSV file
    path: str
    # default: from the file's extension
    format: Literal["json", "csv"] | None = None
    # relative item URLs resolve against it
    base_url: str | None = None
    # kind of items that name none
    default_kind: str = "article"


class CollectSettings(Strict):
    """Top-level `collect:`: how many remote feeds are fetched at once, and from one host."""

    concurrency: int = Field(default=16, ge=1, le=256)  # feeds fetched at once, all hosts
    per_host: int = Field(default=2, ge=1, le=16)  # connections to one host at a time


SourceConfig = Annotated[
    MarkdownSourceConfig | FeedSourceConfig | ExportSourceConfig,
    Field(discriminator="type"),
]


# --- campaigns (digest issue: content; scheduling issue: cadence) -------------------------


class SectionConfig(Strict):
    """One block of a digest: items selected by topic/kind, or a call to action."""

    _multiline = frozenset({"text"})

    # unique within the campaign
    name: str
    # featured: image cards; list: a compact list; cta: a call to action
    type: Literal["featured", "list", "cta"] = "list"
    # heading shown above the section
    title: str | None = None
    # items with one of these topics (empty: any)
    topics: list[Topic] = []
    # items of one of these kinds (empty: any)
    kinds: list[str] = []
    # at most this many items
    max: int = Field(default=5, ge=1, le=50)
    # cta only
    text: str | None = None
    # cta only: the button's text
    button_label: str | None = None
    # cta only: the button's https link
    button_url: str | None = None

    @model_validator(mode="after")
    def _cta_is_complete(self) -> SectionConfig:
        if self.type == "cta":
            missing = [k for k in ("text", "button_label", "button_url") if not getattr(self, k)]
            if missing:
                raise ValueError(f"a cta section needs {', '.join(missing)}")
        if self.button_url and not self.button_url.startswith("https://"):
            raise ValueError(f"button_url '{self.button_url}' is not an absolute https URL")
        return self


# Folders of the archive that are not a campaign's: archive/broadcasts/ holds the public
# copies of action alerts, so a campaign of that name would write over them.
RESERVED_CAMPAIGN_NAMES = frozenset({"broadcasts"})


def _not_reserved(name: str) -> str:
    if name in RESERVED_CAMPAIGN_NAMES:
        raise ValueError(f"the name {name!r} is reserved (the archive keeps alerts under it)")
    return name


class CampaignConfig(Strict):
    _multiline = frozenset({"reason"})

    # unique, and not "broadcasts" (the archive's folder of alerts); used in commands, paths
    # and the editions feed
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: OneLine  # also the List-Id header's phrase
    # Jinja in a sandbox: {{ edition.date | date }}, {{ edition.number }}
    subject: OneLine
    # the preview line mail clients show; Jinja like subject
    preheader: OneLine = ""
    audience: list[Topic] = []  # topics a subscriber must follow; empty: every subscriber
    # templates/<template>.mjml and .txt
    template: str = "digest"
    # the digest's blocks, in order
    sections: list[SectionConfig] = []
    # no edition when no item is new
    skip_if_empty: bool = True
    # an item not yet sent is still new this many days after its date or its arrival
    # (whichever is later)
    lookback_days: int = Field(default=7, ge=1, le=366)
    # Why the reader gets this email (shown in the footer); a default names the organisation.
    reason: str | None = None
    # scheduling (scheduling issue; forms in publisher/config/cadence.py): when editions go out
    cadence: str | None = None  # 'weekly: monday 09:00', 'daily: 07:30', cron '0 9 * * 1'...
    timezone: str | None = None  # IANA zone of the cadence; default organisation.timezone
    paused: bool = False  # `publisher pause/resume` also pause, in the store
    not_before: time | None = None  # send window, local times of day in the campaign's zone
    # end of the send window
    not_after: time | None = None
    grace: timedelta = timedelta(hours=6)  # how late a slot missed during downtime may still run

    _cadence = field_validator("cadence", mode="before")(
        classmethod(lambda cls, v: normalise_cadence(v))
    )
    _free_name = field_validator("name")(classmethod(lambda cls, v: _not_reserved(v)))
    _campaign_tz = field_validator("timezone")(
        classmethod(lambda cls, v: v if v is None else check_timezone(v))
    )
    _window = field_validator("not_before", "not_after", mode="before")(
        classmethod(lambda cls, v: parse_time_of_day(v))
    )
    _grace = field_validator("grace", mode="before")(
        classmethod(lambda cls, v: positive_duration(v, allow_off=False, maximum=MAX_GRACE))
    )

    @model_validator(mode="after")
    def _cadence_fits_window(self) -> CampaignConfig:
        check_send_window(self.cadence, self.not_before, self.not_after)
        return self

    def zone(self, organisation: Organisation) -> str:
        return self.timezone or organisation.timezone


class ScheduleSettings(Strict):
    """Top-level `schedule:`: how often the daemon collects and rebuilds feeds ('off': never)."""

    # how often the daemon collects the sources, or "off"
    collect_every: timedelta | None = timedelta(hours=1)
    # how often the daemon rebuilds the feeds, or "off"
    feeds_every: timedelta | None = timedelta(hours=1)

    _every = field_validator("collect_every", "feeds_every", mode="before")(
        classmethod(lambda cls, v: positive_duration(v, allow_off=True, maximum=MAX_EVERY))
    )


# --- feeds (feeds issue) ------------------------------------------------------------------


class FeedConfig(Strict):
    """One published feed: RSS, Atom and JSON Feed files at feeds/<path>.{rss,atom,json}.

    Selector: `everything: true`, or `topics` and/or `kinds` (an item matches when it has one
    of the topics and one of the kinds given), or `campaign` (that campaign's sent editions),
    or `broadcasts: true` (the broadcasts sent).
    """

    _multiline = frozenset({"description"})

    # unique feed name
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    # the feed's title in readers
    title: str = Field(min_length=1)
    # the feed's description (may span lines)
    description: str = Field(min_length=1)
    link: str | None = None  # the site page the feed describes; default organisation.website
    language: str | None = None  # default organisation.language
    # files at <output_dir>/<path>.rss, .atom and .json
    path: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$")
    # entries per document; older ones move into archive documents
    limit: int = Field(default=50, ge=1, le=1000)
    # selector: every item
    everything: bool = False
    # selector: items with one of these topics
    topics: list[Topic] = []
    # selector: items of one of these kinds
    kinds: list[str] = []
    # selector: that campaign's sent editions
    campaign: str | None = None
    # selector: the broadcasts (action alerts) sent, each linking to its public copy
    broadcasts: bool = False

    _link = field_validator("link")(
        classmethod(lambda cls, v: v if v is None else check_absolute_url(v))
    )

    @model_validator(mode="after")
    def _one_selector(self) -> FeedConfig:
        chosen = [
            name
            for name, used in (
                ("everything", self.everything),
                ("topics/kinds", bool(self.topics or self.kinds)),
                ("campaign", self.campaign is not None),
                ("broadcasts", self.broadcasts),
            )
            if used
        ]
        if len(chosen) != 1:
            raise ValueError(
                "a feed needs exactly one selector: everything: true, topics/kinds, campaign, "
                "or broadcasts: true" + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        return self

    @property
    def editions_of(self) -> str | None:
        """The campaign key whose sent editions the feed carries (None: a feed of items)."""
        return self.campaign or (BROADCAST_CAMPAIGN if self.broadcasts else None)


class FeedsConfig(Strict):
    output_dir: str = "feeds"  # served at <organisation.public_url>/feeds/
    websub_hub: str | None = None  # advertised in every feed and pinged when one changes
    # the published feeds
    feeds: list[FeedConfig] = []

    _hub = field_validator("websub_hub")(
        classmethod(lambda cls, v: v if v is None else check_absolute_url(v))
    )
    # Unique names and paths are checked with the other cross-references (config.loader).


# --- delivery and subscribers (delivery issue) --------------------------------------------


class FileDeliveryConfig(Strict):
    """`file` backend: one RFC 5322 .eml per recipient in <path>/<campaign>/<edition>/."""

    # the outbox folder
    path: str = "outbox"
    # messages per ledger batch
    batch_size: int = Field(default=500, ge=1, le=10_000)


class SmtpDeliveryConfig(Strict):
    """`smtp` backend. Credentials only from SMTP_USERNAME / SMTP_PASSWORD (environment)."""

    # SMTP server
    host: str = "localhost"
    # SMTP port (465 with security: tls)
    port: int = Field(default=587, ge=1, le=65535)
    # STARTTLS, implicit TLS, or none
    security: Literal["starttls", "tls", "none"] = "starttls"
    ca_file: str | None = None  # extra CA bundle to trust (a private relay, tests)
    # seconds for each connect or reply
    timeout: float = Field(default=30.0, gt=0, le=600)
    rate_limit: float | None = Field(default=None, gt=0, le=100_000)  # messages/s, all workers
    workers: int = Field(default=2, ge=1, le=32)  # connections, each reused for many messages
    # messages per ledger batch: a crash mid-batch leaves at most this many 'uncertain' per worker
    batch_size: int = Field(default=20, ge=1, le=10_000)


class SendGridDeliveryConfig(Strict):
    """`sendgrid` backend. The API key only from SENDGRID_API_KEY (environment)."""

    host: str = "https://api.sendgrid.com"  # EU region: https://api.eu.sendgrid.com
    # concurrent requests (at most 8 with exactly_once)
    workers: int = Field(default=4, ge=1, le=64)
    batch_size: int = Field(default=1000, ge=1, le=1000)  # personalizations per request
    # seconds for each request
    timeout: float = Field(default=30.0, gt=0, le=600)
    # SendGrid unsubscribe group of the emails
    asm_group_id: int | None = None
    # SendGrid validates requests and delivers nothing
    sandbox_mode: bool = False
    # Exactly-once mode (docs/operators.md "Interrupted sends"): every batch is scheduled
    # `hold_minutes` ahead under its own batch id, so a batch of unknown outcome can be
    # cancelled and resent.
    exactly_once: bool = False
    # exactly_once: how far ahead each batch is scheduled
    hold_minutes: int = Field(default=15, ge=11, le=24 * 60)

    _host = field_validator("host")(classmethod(lambda cls, v: check_absolute_url(v)))

    @model_validator(mode="after")
    def _few_unknown_batches(self) -> SendGridDeliveryConfig:
        # SendGrid keeps at most 10 batches cancelled at one time; a crash leaves at most
        # one unknown batch per worker, and a resume may still hold a few cancellations.
        if self.exactly_once and self.workers > 8:
            raise ValueError("exactly_once allows at most 8 workers (SendGrid cancels 10 batches)")
        return self


class DeliveryConfig(Strict):
    backend: str = "file"  # a name in publisher.deliver.BACKENDS; env PUBLISHER_DELIVERY wins
    # mailto address in List-Unsubscribe; default from_email
    unsubscribe_mailto: EmailAddress | None = None
    max_attempts: int = Field(default=5, ge=1, le=20)  # per batch, on 429/5xx/connection errors
    backoff_base: float = Field(default=0.5, ge=0, le=600)  # seconds; doubled per attempt
    # seconds; the longest wait between attempts
    backoff_max: float = Field(default=60.0, ge=0, le=3600)
    max_failed_batches: int = Field(default=3, ge=1, le=1000)  # then the edition is paused
    # settings of the `file` backend
    file: FileDeliveryConfig = FileDeliveryConfig()
    # settings of the `smtp` backend
    smtp: SmtpDeliveryConfig = SmtpDeliveryConfig()
    # settings of the `sendgrid` backend
    sendgrid: SendGridDeliveryConfig = SendGridDeliveryConfig()

    @property
    def effective_backend(self) -> str:
        return os.environ.get("PUBLISHER_DELIVERY") or self.backend


class SubscribersConfig(Strict):
    file: str | None = None  # CSV or JSON imported (upserted) before each run's sends
    # the sign-up form asks the browser for a proof of work (ALTCHA, self-hosted; needs JavaScript)
    proof_of_work: bool = False


# --- the welcome email (issue 21) --------------------------------------------------------


class WelcomeConfig(Strict):
    """Top-level `welcome:`: the email a person gets once, when they confirm their
    subscription. Without this block nobody gets one."""

    # the subject, as written (no template syntax: what is here is what people read)
    subject: OneLine = Field(min_length=1)
    # the preview line mail clients show, as written
    preheader: OneLine = ""
    # templates/<template>.mjml and .txt (a file in your templates/ folder wins)
    template: str = Field(default="welcome", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    # a campaign whose latest sent edition the welcome links to (its web copy)
    latest_edition: str | None = None


# --- broadcast senders (issue 21) ---------------------------------------------------------

ORGANISATION_SENDER = "organisation"  # the sender name of organisation.from_email/from_name


class SenderConfig(Strict):
    """One verified From address staff may choose for a broadcast (top-level `senders:`)."""

    # slug, the key stored with a broadcast ("organisation" is the organisation's own)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)
    # the From address: one your provider has verified for you
    from_email: EmailAddress
    # the name shown in From
    from_name: OneLine | None = None
    # Reply-To address, when replies go elsewhere
    reply_to: EmailAddress | None = None


# --- approval before a send (issue 21) ----------------------------------------------------


class ApprovalConfig(Strict):
    """Top-level `approval:`: which sends a second staff member approves first. The approver
    has the send permission and is not the one who asked for approval or edited it last; an
    edit after the approval voids it."""

    # each broadcast is approved before it can go
    broadcasts: bool = False
    # each digest edition is approved before its slot (held, and late, until it is)
    editions: bool = False


# --- outgoing webhooks (issue 22) ----------------------------------------------------------


class WebhooksConfig(Strict):
    """Top-level `webhooks:`: how the daemon (or `publisher webhooks deliver`) posts the
    events owners asked for in /admin. The endpoints themselves are set in /admin."""

    # how often the daemon looks for events to deliver
    every_seconds: float = Field(default=5.0, ge=0.5, le=3600)
    # deliveries posted at once
    workers: int = Field(default=8, ge=1, le=64)
    # seconds to connect and for each read of the answer
    timeout: float = Field(default=10.0, gt=0, le=60)
    # endpoints may also be http(s)://127.0.0.1 or localhost (tests, a receiver on this
    # host); other private addresses are refused all the same; otherwise only https://
    # to public addresses
    allow_private_addresses: bool = False


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
