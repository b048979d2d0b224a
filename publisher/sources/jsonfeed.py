"""JSON Feed 1.0/1.1 documents, validated with pydantic at the edge: the document first
(`"items": 5` is the feed's problem), then each item on its own (`"authors": ["Bob"]` or
`{"name": {}}` is that item's problem, reported with its index; the others are kept)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class _Model(BaseModel):
    # JSON Feed allows extensions (keys starting with "_") and readers ignore unknown keys.
    model_config = ConfigDict(extra="ignore")


class JsonAuthor(_Model):
    name: str | None = None
    url: str | None = None


class JsonItem(_Model):
    id: str | int | None = None
    url: str | None = None
    external_url: str | None = None
    title: str | None = None
    content_html: str | None = None
    content_text: str | None = None
    summary: str | None = None
    image: str | None = None
    banner_image: str | None = None
    date_published: str | None = None
    date_modified: str | None = None
    authors: list[JsonAuthor] | None = None
    author: JsonAuthor | None = None  # JSON Feed 1.0
    tags: list[str] | None = None

    @property
    def author_name(self) -> str | None:
        for author in [*(self.authors or []), *([self.author] if self.author else [])]:
            if author.name:
                return author.name
        return None


class JsonFeedDocument(_Model):
    version: str
    items: list[Any]  # each item is validated on its own


def describe(exc: ValidationError) -> str:
    """pydantic's errors as one line: where in the object, and what is wrong (never the
    value itself, which may be huge or hostile)."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "value"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
