"""The sources' two seams: `Source`, what every source type implements, and `ItemSink`,
where collection puts what they found (the store, passed in by the pipeline)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Protocol

import httpx

from publisher.items import KINDS, Item
from publisher.support.sanitize import (
    ALT_MAX,
    AUTHOR_MAX,
    SUMMARY_MAX,
    TITLE_MAX,
    markup_text,
    plain_text,
    strip_control_chars,
)
from publisher.support.slug import slugify

# Dates outside this range are typing mistakes or hostile (year 9999 with an offset
# overflows); the item is rejected, not the source.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2199, 12, 31, tzinfo=UTC)
MAX_ID = 500  # the store's id column holds 512
MAX_URL = 2000
MAX_TOPICS = 50


@dataclass
class Problem:
    """Something a source could not read: reported, skipped, and collection goes on."""

    source: str
    where: str  # file path, file:line, URL, or CSV row
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.where}: {self.reason}"


@dataclass
class SourceMemory:
    """What a source remembers between runs (conditional-GET validators, disabled flag,
    a refused fetch: sources.fetch.remember_refusal)."""

    etag: str | None = None
    last_modified: str | None = None
    url: str | None = None
    disabled: bool = False
    disabled_reason: str | None = None
    refused_key: str | None = None  # what was fetched (url and limits) when refused
    refused_reason: str | None = None
    refused_at: datetime | None = None


@dataclass
class SourceResult:
    items: list[Item] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    memory: SourceMemory | None = None  # None: nothing to remember
    not_modified: bool = False
    # The origins (files) the source still has, when it can tell: stored items of this
    # source whose origin is not among them are retired. None: retire nothing.
    present: set[str] | None = None


@dataclass
class CollectContext:
    now: datetime
    memory: SourceMemory
    http: httpx.Client | None = None


class Source(Protocol):
    """A place items come from. ``collect`` never raises for bad input: it reports Problems."""

    name: str

    def target(self, memory: SourceMemory) -> str | None:
        """The URL `collect` will fetch (the one a permanent redirect led to, once there was
        one), for a remote source: those are fetched at once in a pool, at most `per_host`
        at a time to one host (sources.pool). None: a local source, read in the calling
        thread."""

    def collect(self, ctx: CollectContext) -> SourceResult: ...


class UpsertCounts(Protocol):
    """What storing one source's items did (publisher.store.items.UpsertResult)."""

    @property
    def inserted(self) -> int: ...

    @property
    def updated(self) -> int: ...

    @property
    def unchanged(self) -> int: ...

    @property
    def retired(self) -> int:
        """Collected again, but retired for good: left as it is."""


class ItemSink(Protocol):
    """Where collection (sources.collect) puts what the sources found, and what they
    remember between runs: the store (publisher.store.sink.StoreSink), which collection never
    imports."""

    def get_source_memory(self, name: str) -> SourceMemory: ...

    def save_source_memory(self, name: str, memory: SourceMemory, *, now: datetime) -> None: ...

    def upsert_items(self, items: Iterable[Item], *, now: datetime) -> UpsertCounts:
        """Insert new items, update edited ones, leave the rest untouched."""

    def retire_missing(self, source: str, present: set[str], *, now: datetime) -> list[str]:
        """Retire the source's items whose origin is not in `present`; their ids."""

    def record_source_run(
        self, name: str, problems: list[str], *, failed: bool, now: datetime
    ) -> None:
        """A source's health for the dashboard: its problems, and whether it failed."""


def parse_datetime(value: object, *, field_name: str = "date") -> datetime:
    """Front-matter/CSV/JSON dates: ISO 8601 strings, dates or datetimes -> aware UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        text = value.strip().replace("Z", "+00:00")
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{field_name} '{value[:60]}' is not an ISO 8601 date") from None
    elif value is None or value == "":
        raise ValueError(f"{field_name} is missing")
    else:
        raise ValueError(f"{field_name} must be a date, not {type(value).__name__}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return check_date(dt.astimezone(UTC), field_name)
    except OverflowError:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
        raise ValueError(f"{field_name} '{value}' is out of range") from None


def check_date(dt: datetime, field_name: str = "date") -> datetime:
    if not EARLIEST <= dt <= LATEST:
        raise ValueError(
            f"{field_name} {dt.date().isoformat()} is outside "
            f"{EARLIEST.year}-{LATEST.year}; fix the date"
        )
    return dt


def vet_item(item: Item) -> Item:
    """The last step of every source: text fields cleaned and trimmed, control characters
    gone, dates in range, ids and URLs of a size the store and readers take. Raises
    ValueError (the source reports it with where the item came from)."""
    if len(item.id) > MAX_ID:
        raise ValueError(f"id is {len(item.id)} characters long (at most {MAX_ID})")
    for name, url in (("url", item.url), ("image", item.image)):
        if url and len(url) > MAX_URL:
            raise ValueError(f"{name} is {len(url)} characters long (at most {MAX_URL})")
    title = plain_text(item.title, TITLE_MAX)
    if not title:
        raise ValueError("title is empty")
    check_date(item.published, "date")
    if item.updated is not None:
        check_date(item.updated, "updated")
    return replace(
        item,
        id=strip_control_chars(item.id),
        title=title,
        summary=plain_text(item.summary, SUMMARY_MAX),
        body_html=strip_control_chars(item.body_html),
        author=plain_text(item.author, AUTHOR_MAX) or None,
        image_alt=plain_text(item.image_alt, ALT_MAX) or None,
        topics=tuple(t for t in item.topics if t)[:MAX_TOPICS],
    )


def untyped_text(value: object, field_name: str, limit: int = SUMMARY_MAX) -> str | None:
    """A front-matter/export/JSON Feed text field, which declares no type: markup in it is
    removed (see sanitize.markup_text); a list or mapping is an error."""
    text = optional_text(value, field_name)
    return markup_text(text, limit) or None if text else None


def parse_topics(value: object) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        parts = value.replace(";", ",").split(",")
    elif isinstance(value, list | tuple):
        if not all(isinstance(v, str | int | float) for v in value):
            raise ValueError("topics must be a list of words, not of lists or mappings")
        parts = [str(v) for v in value]
    else:
        raise ValueError(f"topics must be a list or a comma-separated string, not {value!r}")
    return tuple(dict.fromkeys(slugify(p) for p in parts if p.strip()))


def check_kind(value: object, default: str) -> str:
    kind = str(value or default).strip().lower()
    if kind not in KINDS:
        raise ValueError(f"kind '{kind}' is not one of {', '.join(KINDS)}")
    return kind


def optional_text(value: object, field_name: str) -> str | None:
    """A scalar front-matter/CSV/JSON value as text; a list or mapping is an error."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{field_name} must be text, not a yes/no value")
    if isinstance(value, str | int | float):
        return strip_control_chars(str(value)).strip() or None
    raise ValueError(f"{field_name} must be text, not {type(value).__name__}")


def item_url(value: object, base_url: str | None, field_name: str = "url") -> str:
    """An item's (or image's) URL, made absolute; only http(s) links reach readers."""
    from urllib.parse import urljoin

    text = optional_text(value, field_name)
    if text is None:
        raise ValueError(f"{field_name} is missing")
    url = urljoin(base_url, text) if base_url else text
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"{field_name} '{text}' is not an http(s) URL")
    return url


def optional_url(value: object, base_url: str | None, field_name: str) -> str | None:
    """Like item_url, for a field that may be absent (an image): None when it is."""
    return item_url(value, base_url, field_name) if optional_text(value, field_name) else None
