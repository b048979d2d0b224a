"""Feed documents from items: pure functions of (feed metadata, page of items).

Each document is a header made by feedgen (RSS 2.0, Atom 1.0) or json (JSON Feed 1.1) with
the entries of publish.entries spliced in. Nothing here reads the clock: a document's date
is its newest item's, so an unchanged feed serialises to the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from feedgen.feed import FeedGenerator
from lxml import etree

from publisher.items import Item
from publisher.publish.entries import DC_NS, EntryCache, clean, item_updated

# Part of every document fingerprint: bump it when the output format changes so that the
# next build rewrites documents an older version produced.
FORMAT_VERSION = "2"
CURRENT = 0  # Page.next_archive of the newest archive: the subscription document
GENERATOR = "publisher"
ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"


@dataclass(frozen=True)
class FeedMeta:
    """Everything a document header needs, resolved from configuration."""

    name: str
    title: str
    description: str
    link: str  # the site page the feed is about
    language: str
    path: str  # under the output directory, without extension
    feeds_url: str  # <public_url>/feeds: where the output directory is served
    feed_id: str  # stable identity shared by the subscription document and its archives
    author: str  # the organisation: every entry has an author with a name
    icon: str | None = None
    hub: str | None = None

    def relpath(self, extension: str, number: int | None = None) -> str:
        if number is None:
            return f"{self.path}.{extension}"
        return f"{self.path}/archive/{number}.{extension}"

    def url(self, extension: str, number: int | None = None) -> str:
        return f"{self.feeds_url}/{self.relpath(extension, number)}"


@dataclass(frozen=True)
class Page:
    """One document: the subscription document (number None) or archive `number` (1 oldest).

    `prev_archive` is the next older archive (RFC 5005 `prev-archive`, JSON Feed `next_url`).
    `next_archive` (archives only) is the next newer one, or `CURRENT` for the newest
    archive: the entries that follow it are in the subscription document. So every archive
    links a neighbour (RFC 5005 section 4; the W3C validator warns about one that does not),
    and a full archive changes once more, when the archive after it appears.
    """

    number: int | None
    items: tuple[Item, ...]  # newest first
    updated: datetime
    prev_archive: int | None
    next_archive: int | None = None


def plan_pages(items: Sequence[Item], limit: int, *, empty_updated: datetime) -> list[Page]:
    """Cut a feed's items into full archive pages (oldest first) and a current page.

    Archive k holds items (k-1)*limit .. k*limit-1 in the order the store first saw them
    (then publication order), so a page never changes once written unless one of its own
    items is edited: an item that arrives backdated lands in the subscription document,
    where readers see it as new. The subscription document holds the 1..limit items not
    yet in a full archive page. Each page lists its items newest published first.
    """
    oldest_first = sorted(items, key=_arrival_order)
    archived = (len(oldest_first) - 1) // limit if oldest_first else 0
    pages = []
    for index in range(archived):
        chunk = oldest_first[index * limit : (index + 1) * limit]
        newer = index + 2 if index + 2 <= archived else CURRENT
        pages.append(_page(index + 1, chunk, index or None, empty_updated, newer))
    current = oldest_first[archived * limit :]
    pages.append(_page(None, current, archived or None, empty_updated))
    return pages


def _arrival_order(item: Item) -> tuple[datetime, datetime, str]:
    return (item.first_seen or item.published, item.published, item.id)


def _page(
    number: int | None,
    chunk: list[Item],
    prev: int | None,
    empty: datetime,
    newer: int | None = None,
) -> Page:
    updated = max((item_updated(item) for item in chunk), default=empty)
    newest_first = sorted(chunk, key=lambda item: (item.published, item.id), reverse=True)
    return Page(number, tuple(newest_first), updated, prev, newer)


# --- documents ----------------------------------------------------------------------------


def _header(meta: FeedMeta, page: Page, extension: str, mime: str) -> FeedGenerator:
    generator = FeedGenerator()
    generator.id(meta.feed_id)
    generator.title(clean(meta.title))
    generator.description(clean(meta.description))
    generator.link(href=meta.url(extension, page.number), rel="self", type=mime)
    for rel, href in _paging_links(meta, page, extension):
        generator.link(href=href, rel=rel, type=None if rel == "hub" else mime)
    generator.link(href=meta.link, rel="alternate")  # last: feedgen's RSS <link> is the last
    generator.language(meta.language)
    generator.author({"name": clean(meta.author)})
    generator.updated(page.updated)
    generator.generator(GENERATOR)
    if meta.icon:
        generator.logo(meta.icon)
    return generator


def _paging_links(meta: FeedMeta, page: Page, extension: str) -> list[tuple[str, str]]:
    """WebSub hub and RFC 5005 links: current, prev-archive and next-archive."""
    links = [("hub", meta.hub)] if meta.hub else []
    if page.number is not None:
        links.append(("current", meta.url(extension)))
    if page.prev_archive is not None:
        links.append(("prev-archive", meta.url(extension, page.prev_archive)))
    if page.next_archive is not None:
        newer = None if page.next_archive == CURRENT else page.next_archive
        links.append(("next-archive", meta.url(extension, newer)))
    return links


def _header_extra(meta: FeedMeta, page: Page, extension: str, indent: str) -> bytes:
    """What feedgen cannot write: fh:archive, and in RSS the atom:links besides self."""
    elements = []
    if extension == "rss":
        for rel, href in _paging_links(meta, page, extension):
            attributes = {"href": href, "rel": rel}
            if rel != "hub":
                attributes["type"] = FORMATS["rss"].mime
            link = etree.Element(f"{{{ATOM_NS}}}link", attributes, nsmap={"atom": ATOM_NS})
            elements.append(link)
    if page.number is not None:
        elements.append(etree.Element(f"{{{HISTORY_NS}}}archive", nsmap={"fh": HISTORY_NS}))
    parts = [etree.tostring(element, encoding="unicode") for element in elements]
    text = "".join(f"{indent}{part}\n" for part in parts)
    return text.replace(f' xmlns:atom="{ATOM_NS}"', "").encode()


def _splice(skeleton: bytes, closing: bytes, extra: bytes, entries: list[bytes]) -> bytes:
    head, _, tail = skeleton.rpartition(closing)
    indent = head[len(head.rstrip(b" ")) :]
    return head.rstrip(b" ") + extra + b"".join(entries) + indent + closing + tail


STYLESHEET_FILE = "feed.xsl"  # at the top of the output folder (publish.feeds writes it)


def _with_stylesheet(document: bytes, meta: FeedMeta, page: Page, extension: str) -> bytes:
    """The xml-stylesheet instruction after the declaration: a browser shows the feed as a
    page, a feed reader ignores it. Relative, so it works wherever feeds/ is served."""
    depth = meta.relpath(extension, page.number).count("/")
    href = "../" * depth + STYLESHEET_FILE
    declaration, newline, rest = document.partition(b"\n")
    instruction = f'<?xml-stylesheet type="text/xsl" href="{href}"?>'.encode()
    return declaration + newline + instruction + newline + rest


def render_rss(meta: FeedMeta, page: Page, cache: EntryCache) -> bytes:
    generator = _header(meta, page, "rss", FORMATS["rss"].mime)
    generator.register_extension("dc", _DcNamespace, _DcNamespace, atom=False)
    extra = _header_extra(meta, page, "rss", "    ")
    entries = [cache.rss(item) for item in page.items]
    document = _splice(generator.rss_str(pretty=True), b"</channel>", extra, entries)
    return _with_stylesheet(document, meta, page, "rss")


def render_atom(meta: FeedMeta, page: Page, cache: EntryCache) -> bytes:
    generator = _header(meta, page, "atom", FORMATS["atom"].mime)
    extra = _header_extra(meta, page, "atom", "  ")
    entries = [cache.atom(item) for item in page.items]
    document = _splice(generator.atom_str(pretty=True), b"</feed>", extra, entries)
    return _with_stylesheet(document, meta, page, "atom")


def render_json(meta: FeedMeta, page: Page, cache: EntryCache) -> bytes:
    head: dict = {
        "version": JSONFEED_VERSION,
        "title": clean(meta.title),
        "home_page_url": meta.link,
        "feed_url": meta.url("json"),  # archives name the feed they belong to
        "description": clean(meta.description),
        "language": meta.language,
        "authors": [{"name": clean(meta.author)}],
    }
    if meta.icon:
        head["icon"] = meta.icon
    if meta.hub:
        head["hubs"] = [{"type": "WebSub", "url": meta.hub}]
    if page.prev_archive is not None:
        head["next_url"] = meta.url("json", page.prev_archive)
    if page.number is not None:
        # JSON Feed has no archive links of its own: RFC 5005's, as an extension object.
        head["_rfc5005"] = {
            rel: href for rel, href in _paging_links(meta, page, "json") if rel != "hub"
        }
    text = json.dumps(head, ensure_ascii=False, indent=2)[:-2]  # reopen the object
    entries = [cache.json(item) for item in page.items]
    items = b"[\n    " + b",\n    ".join(entries) + b"\n  ]" if entries else b"[]"
    return text.encode() + b',\n  "items": ' + items + b"\n}\n"


class _DcNamespace:
    """Declares xmlns:dc on the RSS root so entries' dc:creator needs no declaration."""

    def extend_ns(self) -> dict[str, str]:
        return {"dc": DC_NS}

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        return feed

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        return feed


@dataclass(frozen=True)
class FeedFormat:
    extension: str
    mime: str
    label: str
    render: Callable[[FeedMeta, Page, EntryCache], bytes]


# The one registry of output formats; everything else iterates over it.
FORMATS: dict[str, FeedFormat] = {
    "rss": FeedFormat("rss", "application/rss+xml", "RSS", render_rss),
    "atom": FeedFormat("atom", "application/atom+xml", "Atom", render_atom),
    "json": FeedFormat("json", "application/feed+json", "JSON Feed", render_json),
}
