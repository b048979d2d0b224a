"""Feed entries: each item as an RSS <item>, an Atom <entry> and a JSON Feed object.

Pure, and made once per item and build: an item usually appears in several feeds (everything,
its topics, its kind), so its entries are serialised once and spliced into every document.
RSS and Atom entries are built with feedgen; ids derive from the item id alone.
"""

from __future__ import annotations

import hashlib
import html
import json
import mimetypes
import multiprocessing
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time, timezone

from feedgen.entry import FeedEntry
from lxml import etree

from publisher.items import Item
from publisher.support.sanitize import iri, strip_control_chars, summarise, uri

DC_NS = "http://purl.org/dc/elements/1.1/"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
# feedgen builds each RSS item detached from the document: without a registered prefix
# lxml would call content:encoded "ns0:encoded" there.
etree.register_namespace("content", CONTENT_NS)
# An item's full text goes into the feeds up to this size (UTF-8 bytes of its HTML); a
# longer one is replaced by its summary and a link to the whole text, so that one huge item
# cannot carry every document it is in past a validator's or reader's limit (the W3C
# validator takes 5 MB; 50 entries of 50 KB, escaped in RSS, stay well under that).
FEED_BODY_MAX = 50_000
RSS_INDENT = "    "  # entries sit in <rss><channel>
ATOM_INDENT = "  "  # entries sit in <feed>


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


def shown_moment(item: Item) -> datetime:
    """When the feeds say the item was published: a date-only item (Item.day) as the start
    of its day with the offset of the organisation's zone that day ('2026-12-04T00:00:00
    -05:00'), so a reader shows that calendar day; any other item in UTC."""
    if item.day is not None:
        offset = datetime.combine(item.day, time(0), UTC) - item.published
        try:
            return item.published.astimezone(timezone(offset))
        except ValueError:  # not a day start after all (an offset of a day or more)
            pass
    return item.published.astimezone(UTC)


def feed_content(body_html: str, summary: str, url: str) -> str:
    """The HTML a feed carries for an item: its body up to FEED_BODY_MAX, else its summary
    and a link to the whole text."""
    body = clean(body_html)
    if body and len(body.encode("utf-8", "surrogatepass")) <= FEED_BODY_MAX:
        return body
    shown = f"<p>{html.escape(summary)}</p>"
    if body and url:
        shown += f'<p><a href="{html.escape(url)}">Read the whole text</a></p>'
    return shown


@dataclass(frozen=True)
class Entry:
    """An item as every format shows it: cleaned once, whatever the number of feeds."""

    guid: str
    title: str
    url: str  # an IRI (Atom keeps it readable; RSS and JSON Feed get it as a URI); "": none
    summary: str  # plain text
    content: str  # sanitised HTML
    published: datetime
    updated: datetime
    author: str | None
    topics: tuple[str, ...]
    image: str | None


def prepare_entry(item: Item, guid: str) -> Entry:
    summary = summary_text(item)
    published = shown_moment(item)
    return Entry(
        guid=guid,
        title=clean(item.title),
        url=item.url,
        summary=summary,
        content=feed_content(item.body_html, summary, item.url),
        published=published,
        updated=max(published, item.updated or published),
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

    def rss(self, item: Item) -> bytes:
        cached = self._rss.get(item.id)
        if cached is None:
            element = self._feedgen_entry(item).rss_entry()
            author = self.entry(item).author
            if author:  # RSS <author> must be an email address: names go in dc:creator
                etree.SubElement(element, f"{{{DC_NS}}}creator").text = author
            cached = self._rss[item.id] = _fragment(element, RSS_INDENT)
        return cached

    def atom(self, item: Item) -> bytes:
        cached = self._atom.get(item.id)
        if cached is None:
            element = self._feedgen_entry(item).atom_entry()
            if item.image:
                _fix_enclosure(element, item.image)
            if item.url:  # Atom takes IRIs: the link as written, not escaped for RSS
                element.findall("link")[0].set("href", iri(item.url))
            cached = self._atom[item.id] = _fragment(element, ATOM_INDENT)
        return cached

    def json(self, item: Item) -> bytes:
        cached = self._json.get(item.id)
        if cached is None:
            data = json_item(self.entry(item))
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            cached = self._json[item.id] = text.encode()
        return cached

    def warm(self, items: Sequence[Item], *, workers: int, threshold: int = 2000) -> None:
        """Make the entries of many items ahead of rendering, split over `workers` processes
        (forked, so nothing is re-imported); below `threshold` items it is not worth it."""
        todo = list({item.id: item for item in items if item.id not in self._json}.values())
        forkable = "fork" in multiprocessing.get_all_start_methods()
        if workers < 2 or len(todo) < max(threshold, 2) or not forkable:
            return
        chunks = [todo[index::workers] for index in range(workers)]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers - 1, mp_context=context) as pool:
            futures = [pool.submit(_entries_of, self.guid_namespace, c) for c in chunks[1:]]
            for item in chunks[0]:  # this process takes its share meanwhile
                self.rss(item), self.atom(item), self.json(item)
            for future in futures:
                for item_id, rss, atom, json_entry in future.result():
                    self._rss[item_id], self._atom[item_id] = rss, atom
                    self._json[item_id] = json_entry


def _entries_of(guid_namespace: str, items: list[Item]) -> list[tuple[str, bytes, bytes, bytes]]:
    cache = EntryCache(guid_namespace)
    return [(item.id, cache.rss(item), cache.atom(item), cache.json(item)) for item in items]


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
    if entry.url:  # an item without a link has none; its guid is never a permalink
        out.link(href=uri(entry.url))
    if entry.image:
        out.link(href=uri(entry.image), rel="enclosure", type=image_type(entry.image))
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
    out: dict = {"id": entry.guid}
    if entry.url:
        out["url"] = uri(entry.url)
    out |= {
        "title": entry.title,
        "content_html": entry.content,
        "summary": entry.summary,
    }
    if entry.image:
        out["image"] = uri(entry.image)
    out["date_published"] = entry.published.isoformat()  # UTC, or a day's start (shown_moment)
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
        item.day.isoformat() if item.day else "",
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
