"""The content sections of schedules.yaml: sources and `collect:`, campaigns and
`schedule:`, feeds."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from publisher.config.cadence import (
    check_send_window,
    normalise_cadence,
    parse_time_of_day,
    positive_duration,
)
from publisher.config.fields import OneLine, Strict, Topic, check_absolute_url, check_timezone
from publisher.config.organisation import Organisation

# Longest campaign grace and collect/feeds interval: beyond these a value is a typo.
MAX_GRACE = timedelta(days=31)
MAX_EVERY = timedelta(days=31)
BROADCAST_CAMPAIGN = "~broadcast"  # broadcasts' editions' campaign key: no campaign has a "~"


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
