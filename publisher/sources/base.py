"""The one seam every source plugs into."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol

import httpx

from publisher.items import KINDS, Item
from publisher.slug import slugify


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
    """What a source remembers between runs (conditional-GET validators, disabled flag)."""

    etag: str | None = None
    last_modified: str | None = None
    url: str | None = None
    disabled: bool = False
    disabled_reason: str | None = None


@dataclass
class SourceResult:
    items: list[Item] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    memory: SourceMemory | None = None  # None: nothing to remember
    not_modified: bool = False


@dataclass
class CollectContext:
    now: datetime
    memory: SourceMemory
    http: httpx.Client | None = None


class Source(Protocol):
    """A place items come from. ``collect`` never raises for bad input: it reports Problems."""

    name: str

    def collect(self, ctx: CollectContext) -> SourceResult: ...


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
            raise ValueError(f"{field_name} '{value}' is not an ISO 8601 date") from None
    else:
        raise ValueError(f"{field_name} is missing")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_topics(value: object) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        parts = value.replace(";", ",").split(",")
    elif isinstance(value, list | tuple):
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
    if isinstance(value, str | int | float):
        return str(value).strip() or None
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
