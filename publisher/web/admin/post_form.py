"""The post editor's form: what was posted (kept as typed, so a refused save loses nothing),
checked into the store's PostFields, and the diffs the revisions and conflict pages show."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from publisher.items import KINDS
from publisher.sources.base import parse_topics
from publisher.sources.newsroom import post_problems
from publisher.store.posts import Post, PostFields
from publisher.support.sanitize import ALT_MAX, AUTHOR_MAX, SUMMARY_MAX, TITLE_MAX
from publisher.support.slug import slugify
from publisher.web.forms import many, text

__all__ = ["BODY_MAX", "FIELDS", "Draft", "diff_lines", "draft_of", "draft_from_form"]

BODY_MAX = 900_000  # characters: the route's body limit is 1 MiB
# the posted fields a draft carries, kept as typed (hidden fields of the session page too)
FIELDS = (
    "title", "summary", "body", "kind", "new_topics", "date", "author", "image", "image_alt",
    "external_url", "slug", "version",
)  # fmt: skip
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"  # <input type="datetime-local">


@dataclass
class Draft:
    """The editor's values as text, exactly what the form shows."""

    title: str = ""
    summary: str = ""
    body: str = ""
    kind: str = "article"
    topics: list[str] = field(default_factory=list)
    new_topics: str = ""
    date: str = ""
    author: str = ""
    image: str = ""
    image_alt: str = ""
    external_url: str = ""
    slug: str = ""
    version: str = ""

    def values(self) -> dict[str, str]:
        return {name: str(getattr(self, name)) for name in FIELDS}


def local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime(LOCAL_FORMAT)


def draft_of(post: Post, zone: ZoneInfo) -> Draft:
    f = post.fields
    return Draft(
        title=f.title, summary=f.summary, body=f.body, kind=f.kind, topics=list(f.topics),
        date=local(f.date, zone), author=f.author, image=f.image or "",
        image_alt=f.image_alt or "", external_url=f.external_url or "", slug=f.slug,
        version=str(post.version),
    )  # fmt: skip


def draft_from_form(form: FormData) -> Draft:
    """Every posted value, bounded, as typed (the body keeps its spaces and line breaks)."""
    body = form.get("body")
    return Draft(
        title=text(form, "title", TITLE_MAX),
        summary=text(form, "summary", SUMMARY_MAX),
        body=body[:BODY_MAX].replace("\r\n", "\n") if isinstance(body, str) else "",
        kind=text(form, "kind", 40) or "article",
        topics=[slugify(t) for t in many(form, "topics")[:50] if slugify(t)],
        new_topics=text(form, "new_topics", 1000),
        date=text(form, "date", 40),
        author=text(form, "author", AUTHOR_MAX),
        image=text(form, "image", 2000),
        image_alt=text(form, "image_alt", ALT_MAX),
        external_url=text(form, "external_url", 2000),
        slug=text(form, "slug", 200),
        version=text(form, "version", 20),
    )


def checked(draft: Draft, zone: ZoneInfo, now: datetime) -> tuple[PostFields | None, dict]:
    """The store's values of a draft, or None and what is wrong by field name."""
    problems = post_problems(
        title=draft.title, kind=draft.kind, image=draft.image, image_alt=draft.image_alt,
        external_url=draft.external_url,
    )  # fmt: skip
    when = now
    if draft.date:
        try:
            when = datetime.strptime(draft.date[:16], LOCAL_FORMAT).replace(tzinfo=zone)
        except ValueError:
            problems["date"] = "Give the date and time as the date field asks."
    try:
        topics = parse_topics(draft.topics + draft.new_topics.split(","))
    except ValueError as exc:
        problems["topics"] = str(exc)
        topics = ()
    if problems:
        return None, problems
    return PostFields(
        title=draft.title, body=draft.body, summary=draft.summary,
        kind=draft.kind if draft.kind in KINDS else "article", topics=topics,
        date=when.astimezone(UTC), author=draft.author, image=draft.image or None,
        image_alt=draft.image_alt or None, external_url=draft.external_url or None,
        slug=draft.slug,
    ), {}  # fmt: skip


def as_text(fields: PostFields, status: str | None = None) -> list[str]:
    """A post's values as lines to compare: one line per field, then the body's lines."""
    lines = [
        f"Title: {fields.title}",
        f"Summary: {fields.summary}",
        f"Kind: {fields.kind}",
        f"Topics: {', '.join(fields.topics)}",
        f"Date: {fields.date:%Y-%m-%d %H:%M} UTC",
        f"Author: {fields.author}",
        f"Image: {fields.image or ''}",
        f"Image description: {fields.image_alt or ''}",
        f"Link elsewhere: {fields.external_url or ''}",
        f"Slug: {fields.slug}",
    ]
    if status:
        lines.append(f"Status: {status}")
    return [*lines, "", *fields.body.splitlines()]


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "added", "removed", "same", "hunk"
    text: str


def diff_lines(before: list[str], after: list[str]) -> list[DiffLine]:
    """What changed from `before` to `after` (difflib; the template escapes the text)."""
    out: list[DiffLine] = []
    for line in difflib.unified_diff(before, after, lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "added", "-": "removed", "@": "hunk"}.get(line[:1], "same")
        out.append(DiffLine(kind, line))
    return out
