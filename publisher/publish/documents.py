"""Feed documents from items: pure functions of (feed metadata, page of items).

RSS 2.0 and Atom 1.0 entries are built with feedgen, JSON Feed 1.1 as plain dicts. Every
entry is built and serialised once per item and build (an item usually appears in several
feeds: everything, its topics, its kind), then spliced into each document's header, which
is also made by feedgen. Nothing here reads the clock: a document's date is its newest
item's, so an unchanged feed serialises to the same bytes.
"""

from __future__ import annotations

import hashlib
import html
import json
import mimetypes
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from lxml import etree

from publisher.items import Item
from publisher.sanitize import strip_control_chars, summarise

# Part of every document fingerprint: bump it when the output format changes so that the
# next build rewrites documents an older version produced.
FORMAT_VERSION = "1"
GENERATOR = "publisher"
ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
DC_NS = "http://purl.org/dc/elements/1.1/"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
# feedgen builds each RSS item detached from the document: without a registered prefix
# lxml would call content:encoded "ns0:encoded" there.
etree.register_namespace("content", CONTENT_NS)
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
    Archives never link forward, so an archive stays byte-identical once full.
    """

    number: int | None
    items: tuple[Item, ...]  # newest first
    updated: datetime
    prev_archive: int | None


def plan_pages(items: Sequence[Item], limit: int, *, empty_updated: datetime) -> list[Page]:
    """Cut a feed's items into full archive pages (oldest first) and a current page.

    Archive k holds items (k-1)*limit .. k*limit-1 in publication order, so a page never
    changes once written unless one of its own items is edited. The subscription document
    holds the newest 1..limit items not yet in a full archive page.
    """
    oldest_first = sorted(items, key=lambda item: (item.published, item.id))
    archived = (len(oldest_first) - 1) // limit if oldest_first else 0
    pages = []
    for index in range(archived):
        chunk = oldest_first[index * limit : (index + 1) * limit]
        pages.append(_page(index + 1, chunk, index or None, empty_updated))
    current = oldest_first[archived * limit :]
    pages.append(_page(None, current, archived or None, empty_updated))
    return pages


def _page(number: int | None, chunk: list[Item], prev: int | None, empty: datetime) -> Page:
    updated = max((item_updated(item) for item in chunk), default=empty)
    return Page(number, tuple(reversed(chunk)), updated, prev)


def item_updated(item: Item) -> datetime:
    return max(item.published, item.updated or item.published)


def item_guid(namespace: str, item_id: str) -> str:
    """An opaque URI derived only from the item id: edits to title, body or URL keep it."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, namespace + '#' + item_id)}"


def clean(text: str | None) -> str:
    return strip_control_chars(text or "").strip()


def summary_text(item: Item) -> str:
    return clean(item.summary) or summarise(clean(item.body_html)) or clean(item.title)


def image_type(url: str) -> str:
    guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
    return guessed if guessed and guessed.startswith("image/") else "image/jpeg"


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Entry:
    """An item as every format shows it: cleaned once, whatever the number of feeds."""

    guid: str
    title: str
    url: str
    summary: str  # plain text
    content: str  # sanitised HTML
    published: datetime
    updated: datetime
    author: str | None
    topics: tuple[str, ...]
    image: str | None


def prepare_entry(item: Item, guid: str) -> Entry:
    summary = summary_text(item)
    return Entry(
        guid=guid,
        title=clean(item.title),
        url=item.url,
        summary=summary,
        content=clean(item.body_html) or f"<p>{html.escape(summary)}</p>",
        published=item.published,
        updated=item_updated(item),
        author=clean(item.author) or None,
        topics=tuple(topic for topic in map(clean, item.topics) if topic),
        image=item.image or None,
    )


class EntryCache:
    """Each item's RSS <item>, Atom <entry> and JSON Feed object, made once per build."""

    def __init__(self, guid_namespace: str) -> None:
        self.guid_namespace = guid_namespace
        self._prepared: dict[str, Entry] = {}
        self._feedgen: dict[str, FeedEntry] = {}
        self._rss: dict[str, bytes] = {}
        self._atom: dict[str, bytes] = {}
        self._json: dict[str, bytes] = {}

    def guid(self, item: Item) -> str:
        return self.entry(item).guid

    def entry(self, item: Item) -> Entry:
        found = self._prepared.get(item.id)
        if found is None:
            guid = item_guid(self.guid_namespace, item.id)
            found = self._prepared[item.id] = prepare_entry(item, guid)
        return found

    def _feedgen_entry(self, item: Item) -> FeedEntry:
        found = self._feedgen.get(item.id)
        if found is None:
            found = self._feedgen[item.id] = feed_entry(self.entry(item))
        return found

    def rss(self, item: Item, indent: str) -> bytes:
        cached = self._rss.get(item.id)
        if cached is None:
            element = self._feedgen_entry(item).rss_entry()
            author = self.entry(item).author
            if author:  # RSS <author> must be an email address: names go in dc:creator
                etree.SubElement(element, f"{{{DC_NS}}}creator").text = author
            cached = self._rss[item.id] = _fragment(element, indent)
        return cached

    def atom(self, item: Item, indent: str) -> bytes:
        cached = self._atom.get(item.id)
        if cached is None:
            element = self._feedgen_entry(item).atom_entry()
            if item.image:
                _fix_enclosure(element, item.image)
            cached = self._atom[item.id] = _fragment(element, indent)
        return cached

    def json(self, item: Item) -> bytes:
        cached = self._json.get(item.id)
        if cached is None:
            data = json_item(self.entry(item))
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            cached = self._json[item.id] = text.encode()
        return cached


def _fix_enclosure(entry: etree._Element, image: str) -> None:
    """feedgen 1.0 drops rel and type from entry links (it reads them from the new element,
    not the link data), so the image would pose as a second alternate link."""
    links = entry.findall("link")
    enclosure = links[-1]  # added after the alternate link
    enclosure.set("rel", "enclosure")
    enclosure.set("type", image_type(image))


def _fragment(element: etree._Element, indent: str) -> bytes:
    # Indenting touches only whitespace between child elements, never text content.
    etree.indent(element, space="  ", level=len(indent) // 2)
    data = etree.tostring(element, encoding="UTF-8")
    # Namespace declarations lxml repeats on a detached element are declared once on the
    # document root instead, so each entry reads the same as in a document built whole.
    for declaration in _REPEATED_DECLARATIONS:
        data = data.replace(declaration, b"", 1)
    return indent.encode() + data + b"\n"


_REPEATED_DECLARATIONS = (
    f' xmlns:content="{CONTENT_NS}"'.encode(),
    f' xmlns:dc="{DC_NS}"'.encode(),
)


def feed_entry(entry: Entry) -> FeedEntry:
    out = FeedEntry()
    out.guid(entry.guid, permalink=False)
    out.title(entry.title)
    out.link(href=entry.url)
    if entry.image:
        out.link(href=entry.image, rel="enclosure", type=image_type(entry.image))
    out.published(entry.published)
    out.updated(entry.updated)
    if entry.author:
        out.author(name=entry.author)
    # RSS description is HTML: the plain-text summary is escaped so '<' stays text.
    out.description(html.escape(entry.summary, quote=False))
    out.content(entry.content, type="html")
    out.summary(entry.summary)  # Atom summary, type text
    if entry.topics:
        out.category([{"term": topic} for topic in entry.topics])
    return out


def json_item(entry: Entry) -> dict:
    out: dict = {
        "id": entry.guid,
        "url": entry.url,
        "title": entry.title,
        "content_html": entry.content,
        "summary": entry.summary,
    }
    if entry.image:
        out["image"] = entry.image
    out["date_published"] = utc_iso(entry.published)
    if entry.updated != entry.published:
        out["date_modified"] = utc_iso(entry.updated)
    if entry.author:
        out["authors"] = [{"name": entry.author}]
    if entry.topics:
        out["tags"] = list(entry.topics)
    return out


def item_digest(item: Item) -> str:
    """A cheap hash of everything a reader of a feed could see (Item.content_hash is the
    store's, via JSON: several times slower, and this runs for every item on every build)."""
    parts = (
        item.id,
        item.title,
        item.url,
        item.published.isoformat(),
        item.updated.isoformat() if item.updated else "",
        item.kind,
        item.summary,
        item.body_html,
        item.author or "",
        "\x1e".join(item.topics),
        item.image or "",
        item.image_alt or "",
    )
    raw = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


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
    """WebSub hub and RFC 5005 links. Archives never link forward (next-archive), so an
    archive stays byte-identical once it is full."""
    links = [("hub", meta.hub)] if meta.hub else []
    if page.number is not None:
        links.append(("current", meta.url(extension)))
    if page.prev_archive is not None:
        links.append(("prev-archive", meta.url(extension, page.prev_archive)))
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


def render_rss(meta: FeedMeta, page: Page, cache: EntryCache) -> bytes:
    generator = _header(meta, page, "rss", FORMATS["rss"].mime)
    generator.register_extension("dc", _DcNamespace, _DcNamespace, atom=False)
    extra = _header_extra(meta, page, "rss", "    ")
    entries = [cache.rss(item, "    ") for item in page.items]
    return _splice(generator.rss_str(pretty=True), b"</channel>", extra, entries)


def render_atom(meta: FeedMeta, page: Page, cache: EntryCache) -> bytes:
    generator = _header(meta, page, "atom", FORMATS["atom"].mime)
    extra = _header_extra(meta, page, "atom", "  ")
    entries = [cache.atom(item, "  ") for item in page.items]
    return _splice(generator.atom_str(pretty=True), b"</feed>", extra, entries)


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
