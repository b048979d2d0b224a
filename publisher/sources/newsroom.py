"""The built-in `newsroom` source (issue 20): posts written in /admin become Items here,
from plain values (this module never imports the store). A post links to its own public
page, `post_url(public_url, slug)`, unless it points elsewhere (its external URL). Its body
is rendered by the one Markdown renderer and sanitiser of Markdown files."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from publisher.items import KINDS, NEWSROOM, Item
from publisher.sources.base import item_url, parse_topics, vet_item
from publisher.sources.markdown import markdown_html
from publisher.support.sanitize import summarise

__all__ = ["item_id", "post_item", "post_problems", "post_url", "preview_html"]


def post_url(public_url: str, slug: str) -> str:
    """A post's public page (part B writes it at exactly this address)."""
    return public_url.rstrip("/") + "/posts/" + slug


def item_id(post_id: int) -> str:
    """The item id of a post: stable across edits of its title, slug or body."""
    return f"{NEWSROOM}:{post_id}"


def preview_html(body: str, public_url: str, slug: str = "") -> str:
    """What the editor's preview shows: the body exactly as the item will carry it."""
    return markdown_html(body, post_url(public_url, slug or "preview"))


def post_item(
    *,
    post_id: int,
    slug: str,
    title: str,
    body: str,
    published: datetime,
    public_url: str,
    summary: str = "",
    kind: str = "article",
    topics: Sequence[str] = (),
    author: str | None = None,
    image: str | None = None,
    image_alt: str | None = None,
    external_url: str | None = None,
    updated: datetime | None = None,
) -> Item:
    """The item of a published post. Raises ValueError for values no item may hold."""
    own = post_url(public_url, slug)
    body_html = markdown_html(body, own)
    return vet_item(
        Item(
            id=item_id(post_id),
            title=title,
            url=item_url(external_url, None) if external_url else own,
            published=published,
            updated=updated,
            source=NEWSROOM,
            kind=kind,
            summary=summary.strip() or summarise(body_html),
            body_html=body_html,
            author=author or None,
            topics=parse_topics(list(topics)),
            image=item_url(image, None, "image") if image else None,
            image_alt=image_alt or None,
        )
    )


def post_problems(
    *, title: str, kind: str, image: str | None, image_alt: str | None, external_url: str | None
) -> dict[str, str]:
    """What is wrong with an editor's values, by field name ({} when nothing is)."""
    problems: dict[str, str] = {}
    if not title.strip():
        problems["title"] = "A post needs a title."
    if kind not in KINDS:
        problems["kind"] = f"Choose one of: {', '.join(KINDS)}."
    if image and not image.startswith("https://"):
        problems["image"] = "The image must be an https:// address."
    if image and not (image_alt or "").strip():
        problems["image_alt"] = "Describe the image for people who cannot see it."
    if external_url and not external_url.startswith(("https://", "http://")):
        problems["external_url"] = "The link must be an http:// or https:// address."
    return problems
