"""The content item: what every source produces and every later stage reads.

A plain frozen dataclass, so compose, render and publish stay pure and never touch the ORM.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import date, datetime

KINDS = ("article", "resource", "news", "action", "event")

# The built-in source of the posts staff write in /admin (issue 20): it needs no entry in
# schedules.yaml, and no configured source may take its name.
NEWSROOM = "newsroom"


@dataclass(frozen=True)
class Item:
    id: str  # stable for the life of the item: never derived from title, body or URL edits
    title: str
    url: str  # http(s), as an IRI ('a%20b', letters of any script kept); "": no link at all
    published: datetime  # timezone-aware, UTC
    source: str
    kind: str = "article"
    summary: str = ""
    body_html: str = ""
    author: str | None = None
    updated: datetime | None = None
    topics: tuple[str, ...] = ()
    image: str | None = None
    image_alt: str | None = None
    # The calendar day, when the source gave only a day ('date: 2026-12-04'): `published` is
    # then that day's start in the organisation's time zone, and every display shows this day
    # (in any zone). None: `published` is a full timestamp.
    day: date | None = None
    # When the store first saw the item (None before it is stored). Feed archives are cut in
    # this order, so an item that arrives backdated never reshuffles archives already written.
    first_seen: datetime | None = field(default=None, compare=False, hash=False)
    # Where in its source the item came from (a Markdown file relative to its folder), so a
    # deleted file retires its item. Not content: moving a file changes no reader's view.
    origin: str | None = field(default=None, compare=False, hash=False)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def content_hash(self) -> str:
        """Hash of everything a reader could see: an edit to any field changes it."""
        payload = {
            f.name: _jsonable(getattr(self, f.name))
            for f in fields(self)
            if f.name not in ("extra", "first_seen", "origin")
            # absent rather than null: items stored before `day` existed keep their hash
            and not (f.name == "day" and self.day is None)
        }
        raw = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(raw).hexdigest()


def _jsonable(value: object) -> object:
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value
