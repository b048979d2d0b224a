"""The newsroom's public pages: every published post of the built-in source (NEWSROOM)
whose address is `<public_url>/posts/<slug>` gets a static page, and the posts an index.

    posts/<slug>/index.html   the post: title, date, author, image, body, topics; its
                              <head> carries the canonical link, Open Graph and Twitter
                              tags and the feeds that carry it; a call to subscribe
    posts/index.html          every post, newest first (PER_PAGE of them)
    posts/page-<n>.html       the older ones, PER_PAGE a page ('.' is never in a slug)

Many small organisations have no other website: these pages are their site. A post that
links elsewhere (an external URL) or nowhere gets no page. A page whose post is no longer
published (retired) is removed on the next build. Pages are written by the one atomic
writer, only when their bytes change, so a web server's ETag stays put; given the last
build's memory, a page is rendered only when what it is made from changed
(publish.page_memory).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from jinja2 import Environment
from markupsafe import Markup

from publisher.config import PublisherConfig
from publisher.items import NEWSROOM, Item
from publisher.publish.archive import page_links
from publisher.publish.page_memory import PageMemory, digest, json_digest, template_digest
from publisher.publish.state import BuildState
from publisher.publish.writer import BackgroundWriter
from publisher.render.environment import BUILTIN_TEMPLATES, render_template, template_environment
from publisher.support.sanitize import sanitize_html, summarise
from publisher.support.screen import count
from publisher.support.slug import slugify

if TYPE_CHECKING:
    from publisher.publish.documents import FeedMeta

log = logging.getLogger(__name__)
# (feed, the ids of the items it selects): which feeds carry a post
Carried = Sequence[tuple["FeedMeta", frozenset[str]]]

POSTS_DIR = "posts"
PAGE_TEMPLATE = "posts/page.html"
INDEX_TEMPLATE = "posts/index.html"
PAGE_FILE = "index.html"
PER_PAGE = 30  # posts on one index page
DESCRIPTION_MAX = 200  # characters of a page's meta description (search results cut there)


@dataclass
class PostsReport:
    written: int = 0
    unchanged: int = 0  # not rendered (inputs unchanged), or rendered to the same bytes
    rendered: int = 0
    removed: int = 0
    left_out: list[str] = field(default_factory=list)  # newsroom items without a page, and why

    @property
    def note(self) -> str:
        parts = [f"posts: {count(self.written, 'page')} written, {self.unchanged} unchanged"]
        if self.removed:
            parts.append(f"{self.removed} removed")
        if self.left_out:
            parts.append(f"{count(len(self.left_out), 'item')} without a page")
        return ", ".join(parts)


@dataclass(frozen=True)
class Post:
    """A post that has a page: its item, slug and the address of its page."""

    item: Item
    slug: str
    href: str  # the page's address in its slash form (no redirect to follow)
    day: date | None = None  # the day it shows (in the organisation's zone), <time datetime>


def post_slug(item: Item, public_url: str) -> str | None:
    """The slug of a newsroom item published at `<public_url>/posts/<slug>`; None for any
    other item (another source, an external link, no link). A slug is one path segment as
    the one slug function writes it, so no item can name a file outside posts/."""
    prefix = public_url.rstrip("/") + f"/{POSTS_DIR}/"
    if item.source != NEWSROOM or not item.url.startswith(prefix):
        return None
    slug = item.url.removeprefix(prefix)
    return slug if slug and slugify(slug) == slug else None


def posts_of(items: Sequence[Item], public_url: str, report: PostsReport) -> list[Post]:
    """The items that get a page; a newsroom item under posts/ whose slug is not one, or
    is another's, is reported; the others (external or no link) have no page by design."""
    base = public_url.rstrip("/") + f"/{POSTS_DIR}/"
    posts: dict[str, Post] = {}
    for item in items:
        slug = post_slug(item, public_url)
        if slug is not None and slug not in posts:
            posts[slug] = Post(item, slug, f"{base}{slug}/")
        elif item.source == NEWSROOM and item.url.startswith(base):
            problem = "is another post's address" if slug else "is not a post address"
            report.left_out.append(f"item '{item.id}': '{item.url}' {problem}")
            log.warning("posts: item '%s': '%s' %s; no page", item.id, item.url, problem)
    return list(posts.values())


def write_post_pages(
    config: PublisherConfig,
    items: Sequence[Item],
    *,
    now: datetime,
    feeds: Sequence[tuple[FeedMeta, Sequence[Item]]] = (),
    search_path: tuple[Path, ...] = (BUILTIN_TEMPLATES,),
    state: BuildState | None = None,
) -> PostsReport:
    """Write a page for every post among `items` (newsroom items, retired ones left out by
    the caller), the index pages, and remove the pages of posts no longer among them.
    `feeds`: (feed, the items it selects) for the feeds' <link rel="alternate"> tags.
    `state`: what the last build rendered (publish.page_memory): a page whose inputs did
    not change is not rendered again; without it every page is.
    Nothing is written while there has never been a post (no posts/ folder appears)."""
    report = PostsReport()
    folder = config.resolve(POSTS_DIR)
    posts = _dated_posts(config, items, now, report)
    if not posts and not folder.is_dir():
        return report
    env = template_environment(search_path)
    carried = [(meta, frozenset(i.id for i in selected)) for meta, selected in feeds]
    pages = max(1, math.ceil(len(posts) / PER_PAGE))
    inputs = _Inputs(config, env, posts, carried)
    memory = PageMemory(folder, state)
    with BackgroundWriter(folder) as writer:  # fsyncs overlap rendering (see writer.py)
        for number, post in enumerate(posts):
            newer = posts[number - 1] if number else None
            older = posts[number + 1] if number + 1 < len(posts) else None
            fingerprint = inputs.of_page(post, newer, older)
            if not memory.fresh(f"{post.slug}/{PAGE_FILE}", fingerprint):
                context = page_context(config, post, newer, older, carried)
                html = render_template(env, PAGE_TEMPLATE, context)
                memory.write(writer, f"{post.slug}/{PAGE_FILE}", fingerprint, html)
        for page in range(1, pages + 1):
            fingerprint = inputs.of_index(page)
            if not memory.fresh(index_file(page), fingerprint):
                context = index_context(config, posts, page, carried)
                html = render_template(env, INDEX_TEMPLATE, context)
                memory.write(writer, index_file(page), fingerprint, html)
    report.written, report.rendered = len(writer.changed), memory.rendered
    report.unchanged = len(writer.unchanged) + memory.skipped
    _remove_retired(folder, {p.slug for p in posts}, pages, report)
    memory.save()
    return report


def _dated_posts(
    config: PublisherConfig, items: Sequence[Item], now: datetime, report: PostsReport
) -> list[Post]:
    """The posts among `items`, dated as the feeds date them, newest first."""
    from publisher.publish.feed_inputs import trusted_dates  # feedgen and lxml: only when needed

    tz = ZoneInfo(config.organisation.timezone)
    posts = []
    for post in posts_of(items, config.organisation.public_url, report):
        item = trusted_dates(post.item, now)  # as the feeds date it
        posts.append(replace(post, item=item, day=item.day or item.published.astimezone(tz).date()))
    posts.sort(key=lambda p: (p.item.published, p.item.id), reverse=True)  # newest first
    return posts


class _Inputs:
    """The fingerprints of the pages: everything page_context and index_context build a
    page from (and the templates, see page_memory.template_digest), digested once each."""

    def __init__(
        self, config: PublisherConfig, env: Environment, posts: Sequence[Post], carried: Carried
    ) -> None:
        from publisher.publish.entries import item_digest  # feedgen and lxml: only when needed

        org = json_digest(config.organisation.model_dump(mode="json"))
        self.page = digest(org, template_digest(env, PAGE_TEMPLATE))
        self.index = digest(org, template_digest(env, INDEX_TEMPLATE), str(len(posts)))
        self.posts = posts
        self.carried = [(json_digest(asdict(meta)), ids) for meta, ids in carried]
        self.shown = {
            p.slug: digest(p.slug, p.href, str(p.day), item_digest(p.item)) for p in posts
        }
        everything = {p.item.id for p in posts}  # an index names the feeds of every post
        self.index_feeds = [d for d, ids in self.carried if not everything.isdisjoint(ids)]

    def of_page(self, post: Post, newer: Post | None, older: Post | None) -> str:
        feeds = [d for d, ids in self.carried if post.item.id in ids]
        near = [self.shown[p.slug] if p else "" for p in (newer, older)]
        return digest(self.page, self.shown[post.slug], *near, "feeds", *feeds)

    def of_index(self, page: int) -> str:
        shown = self.posts[(page - 1) * PER_PAGE : page * PER_PAGE]
        listed = [self.shown[p.slug] for p in shown]
        return digest(self.index, str(page), *listed, "feeds", *self.index_feeds)


def index_file(page: int) -> str:
    return PAGE_FILE if page == 1 else f"page-{page}.html"


def index_href(posts_url: str, page: int) -> str:
    """The address of index page `page` (the first is the folder: posts/)."""
    return posts_url if page == 1 else posts_url + index_file(page)


def _remove_retired(folder: Path, slugs: set[str], pages: int, report: PostsReport) -> None:
    """Remove the page of every slug not published any more, and index pages past the
    last; only what this module writes (a slug's index.html, page-<n>.html): anything
    else put in posts/ by hand stays."""
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name not in slugs and slugify(entry.name) == entry.name:
            page = entry / PAGE_FILE
            if page.is_file():
                page.unlink()
                report.removed += 1
                log.info("posts: removed the page of %s (no longer published)", entry.name)
            if not any(entry.iterdir()):
                entry.rmdir()
        elif entry.is_file() and entry.name.startswith("page-") and entry.suffix == ".html":
            number = entry.stem.removeprefix("page-")
            if number.isdigit() and int(number) > pages:
                entry.unlink()
                report.removed += 1


def _links(config: PublisherConfig) -> dict[str, str]:
    links = page_links(config.organisation)
    links["posts"] = f"{config.organisation.public_url.rstrip('/')}/{POSTS_DIR}/"
    return links


def _feed_tags(
    carried: Carried, posts: Sequence[Item]
) -> tuple[list[Markup], list[tuple[str, str]]]:
    """The <link rel="alternate"> tags and (label, URL) links of the feeds that carry one
    of `posts`: a reader given the page's address finds the feed the post is in."""
    from publisher.publish.listing import alternate_link_tags, feed_links

    ids = {item.id for item in posts}
    carrying = [meta for meta, selected in carried if not ids.isdisjoint(selected)]
    tags = [Markup(tag) for tag in alternate_link_tags(carrying)]
    return tags, [link for meta in carrying[:1] for link in feed_links(meta)]


def _image(item: Item) -> str | None:
    """The item's image when it is an http(s) address (og:image, <img src>)."""
    image = item.image or ""
    return image if image.startswith(("https://", "http://")) else None


def page_context(
    config: PublisherConfig,
    post: Post,
    newer: Post | None,
    older: Post | None,
    carried: Carried,
) -> dict[str, Any]:
    """What templates/posts/page.html is given. The body is sanitised again (the one
    allow-list sanitiser): the store's copy already was, and a page is published for all."""
    org, item = config.organisation, post.item
    body = Markup(sanitize_html(item.body_html, item.url)) if item.body_html else None
    description = summarise(item.summary or item.body_html or item.title, DESCRIPTION_MAX)
    head_links, feed_links = _feed_tags(carried, [item])
    return {
        "org": org,
        "colours": org.colours,
        "tz": org.timezone,
        "item": item,
        "post": post,
        "body": body,
        "description": description,
        "image": _image(item),
        "image_alt": item.image_alt or "",
        "published_iso": item.published.isoformat(),
        "newer": newer,
        "older": older,
        "head_links": head_links,
        "feed_links": feed_links,
        "links": _links(config),
    }


def index_context(
    config: PublisherConfig,
    posts: Sequence[Post],
    page: int,
    carried: Carried,
) -> dict[str, Any]:
    """What templates/posts/index.html is given for index page `page`."""
    org, links = config.organisation, _links(config)
    shown = posts[(page - 1) * PER_PAGE : page * PER_PAGE]
    head_links, feed_links = _feed_tags(carried, [p.item for p in posts])
    pages = max(1, math.ceil(len(posts) / PER_PAGE))
    return {
        "org": org,
        "colours": org.colours,
        "tz": org.timezone,
        "posts": shown,
        "page": page,
        "canonical": index_href(links["posts"], page),
        "newer_page": index_href(links["posts"], page - 1) if page > 1 else None,
        "older_page": index_href(links["posts"], page + 1) if page < pages else None,
        "head_links": head_links,
        "feed_links": feed_links,
        "links": links,
    }
