"""Remote RSS 2.0 / Atom / JSON Feed, fetched politely and within limits (sources.fetch):
conditional GET, redirects followed (permanent ones remembered), 410 Gone disables the source.

Each entry is read as the feed declares it: a text/plain field stays text, an HTML one is
sanitised; links (item links, and links inside the content, `#comments` too) resolve against
the item's own URL; an item without a link uses its id when that is an http(s) URL and is
reported otherwise; a second entry with an id already seen is reported. One bad entry is
reported with its index, the others are kept.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import feedparser
import httpx
from pydantic import ValidationError

from publisher.config import FeedSourceConfig, PublisherConfig
from publisher.items import Item
from publisher.sources.base import (
    CollectContext,
    Problem,
    SourceMemory,
    SourceResult,
    check_kind,
    item_url,
    optional_url,
    parse_datetime,
    parse_topics,
    vet_item,
)
from publisher.sources.fetch import (
    FetchError,
    Refused,
    fetch,
    fetch_key,
    limits_of,
    refusal_in_force,
    remember_refusal,
)
from publisher.sources.jsonfeed import JsonFeedDocument, JsonItem, describe
from publisher.sources.network import guarded_client
from publisher.support.bounded import LimitError, load_json
from publisher.support.sanitize import (
    AUTHOR_MAX,
    TITLE_MAX,
    markup_text,
    plain_text,
    sanitize_html,
    summarise,
    text_to_html,
)

USER_AGENT = "publisher/0.1 (+https://github.com/publisher; feed collector)"
SUMMARY_LIMIT = 280  # a feed's summary, like one derived from the body


class FeedSource:
    def __init__(self, cfg: FeedSourceConfig, config: PublisherConfig) -> None:
        self.name = cfg.name
        self.url = cfg.url
        self.limits = limits_of(cfg)
        self.fetch_key = fetch_key(cfg)  # a refused fetch is not repeated while this holds
        self.default_kind = cfg.default_kind
        self.topics = parse_topics(cfg.topics)  # "Labor Rights" -> labor-rights, like tags

    def target(self, memory: SourceMemory) -> str:
        """The URL fetched: the one a permanent redirect led to, once there was one. A feed
        is remote: fetched in the pool with the other remote sources (sources.pool)."""
        return memory.url or self.url

    def collect(self, ctx: CollectContext) -> SourceResult:
        memory = ctx.memory
        if memory.disabled:
            reason = memory.disabled_reason or "disabled"
            return SourceResult(problems=[Problem(self.name, self.url, f"skipped: {reason}")])
        url = self.target(memory)
        skipped = refusal_in_force(memory, self.fetch_key, ctx.now)
        if skipped:
            return SourceResult(problems=[Problem(self.name, url, skipped)])
        headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT}
        if memory.etag:
            headers["If-None-Match"] = memory.etag
        if memory.last_modified:
            headers["If-Modified-Since"] = memory.last_modified
        client = ctx.http or guarded_client()
        try:
            response = fetch(client, url, headers, self.limits)
        except Refused as exc:  # would be refused again: remembered for a while
            refused = remember_refusal(memory, self.fetch_key, str(exc), ctx.now)
            return SourceResult(memory=refused, problems=[Problem(self.name, url, str(exc))])
        except FetchError as exc:
            return SourceResult(problems=[Problem(self.name, url, str(exc))])
        finally:
            if ctx.http is None:
                client.close()
        new_memory = SourceMemory(
            etag=memory.etag, last_modified=memory.last_modified, url=memory.url
        )
        if response.permanent_redirect:
            new_memory.url = response.url  # permanent redirect: use the new URL from now
        if response.status == 304:
            return SourceResult(memory=new_memory, not_modified=True)
        if response.status == 410:
            reason = f"410 Gone from {url}; source disabled (re-enable with a new URL)"
            new_memory.disabled, new_memory.disabled_reason = True, reason
            return SourceResult(memory=new_memory, problems=[Problem(self.name, url, reason)])
        if response.status >= 400:
            return SourceResult(problems=[Problem(self.name, url, f"HTTP {response.status}")])
        new_memory.etag = response.headers.get("ETag")
        new_memory.last_modified = response.headers.get("Last-Modified")
        result = self.parse(response.content, response.url, response.headers)
        # Kept even when every entry was rejected: the next fetch is then a 304 and the
        # same problems are not reported again until the feed changes.
        result.memory = new_memory
        return result

    def parse(self, content: bytes, url: str, headers: httpx.Headers | dict) -> SourceResult:
        ctype = headers.get("content-type", "")
        if "json" in ctype or content.lstrip()[:1] == b"{":
            return self._parse_json_feed(content, url)
        try:
            # No base URL and no rewriting by feedparser: relative links are resolved here,
            # each against its own item's URL (feedparser would use the feed's).
            parsed = feedparser.parse(
                content, response_headers=dict(headers), resolve_relative_uris=False
            )
        except Exception as exc:  # noqa: BLE001 - a parser crash is this feed's problem only
            reason = f"malformed feed ({exc.__class__.__name__}: {exc})"
            return SourceResult(problems=[Problem(self.name, url, reason)])
        result = SourceResult()
        if parsed.bozo and not isinstance(parsed.get("bozo_exception"), _HARMLESS):
            # Reported, but whatever entries feedparser could still recover are kept.
            reason = f"malformed feed: {parsed.get('bozo_exception', 'not a feed')}"
            result.problems.append(Problem(self.name, url, reason))
            if not parsed.entries:
                return result
        if not parsed.get("version") and not parsed.entries:
            result.problems.append(Problem(self.name, url, "not an RSS, Atom or JSON feed"))
            return result
        self._add_entries(result, url, parsed.entries, self._from_entry, "entry")
        return result

    def _add_entries(
        self,
        result: SourceResult,
        url: str,
        entries: list[Any],
        convert: Callable[[Any, str], Item],
        label: str,
    ) -> None:
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries, start=1):
            where = f"{url} {label} {index}"
            try:
                item = vet_item(convert(entry, url))
            except (ValueError, TypeError) as exc:
                result.problems.append(Problem(self.name, where, str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - one entry never stops the others
                reason = f"cannot be read ({exc.__class__.__name__}: {exc})"
                result.problems.append(Problem(self.name, where, reason))
                continue
            if item.id in seen:
                reason = f"duplicate id '{item.id}' ({label} {seen[item.id]} has it too); skipped"
                result.problems.append(Problem(self.name, where, reason))
                continue
            seen[item.id] = index
            result.items.append(item)

    def _from_entry(self, entry: feedparser.FeedParserDict, feed_url: str) -> Item:
        title = _typed_text(entry, "title", TITLE_MAX)
        if not title:
            raise ValueError("entry has no title")
        link = _entry_link(entry, feed_url, title)
        guid = entry.get("id") or link
        published, updated = _entry_dates(entry, title)
        body_html = _entry_body(entry, link)
        summary = _typed_text(entry, "summary", SUMMARY_LIMIT) or summarise(body_html)
        image = None
        for enclosure in entry.get("enclosures", []) or entry.get("media_content", []):
            if str(enclosure.get("type", "")).startswith("image/"):
                image = optional_url(enclosure.get("href") or enclosure.get("url"), link, "image")
                break
        terms = [str(t.get("term") or "") for t in entry.get("tags", []) if isinstance(t, dict)]
        topics = self.topics + parse_topics(terms)
        author = entry.get("author_detail", {}).get("name") or entry.get("author")
        return Item(
            id=f"{self.name}:{guid}",
            title=title,
            url=link,
            published=published,
            updated=updated,
            source=self.name,
            kind=self.default_kind,
            summary=summary,
            body_html=body_html,
            author=markup_text(author, AUTHOR_MAX) or None,
            topics=tuple(dict.fromkeys(topics)),
            image=image,
        )

    def _parse_json_feed(self, content: bytes, url: str) -> SourceResult:
        result = SourceResult()
        try:
            doc = JsonFeedDocument.model_validate(load_json(content))
        except LimitError as exc:
            result.problems.append(Problem(self.name, url, f"JSON feed refused: {exc}"))
            return result
        except ValidationError as exc:
            reason = f"not a JSON Feed: {describe(exc)}"
            result.problems.append(Problem(self.name, url, reason))
            return result
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            result.problems.append(Problem(self.name, url, f"malformed JSON feed: {exc}"))
            return result
        if not doc.version.startswith("https://jsonfeed.org/version/"):
            result.problems.append(Problem(self.name, url, "not a JSON Feed (no version)"))
            return result
        self._add_entries(result, url, doc.items, self._from_json_item, "item")
        return result

    def _from_json_item(self, raw: object, feed_url: str) -> Item:
        try:
            entry = JsonItem.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(describe(exc)) from None
        # JSON Feed text fields are plain text, but feeds put markup in them: it is removed.
        title = markup_text(entry.title, TITLE_MAX)
        if not title:
            raise ValueError("item has no title")
        guid = str(entry.id) if entry.id is not None else None
        link = _link_or_guid(entry.url, guid, feed_url, title)
        published = parse_datetime(
            entry.date_published or entry.date_modified, field_name="date_published"
        )
        if entry.content_html:
            body_html = sanitize_html(entry.content_html, base_url=link)
        else:
            body_html = text_to_html(entry.content_text or "")
        return Item(
            id=f"{self.name}:{guid or link}",
            title=title,
            url=link,
            published=published,
            updated=parse_datetime(entry.date_modified, field_name="date_modified")
            if entry.date_modified
            else None,
            source=self.name,
            kind=check_kind(None, self.default_kind),
            summary=markup_text(entry.summary, SUMMARY_LIMIT) or summarise(body_html),
            body_html=body_html,
            author=markup_text(entry.author_name, AUTHOR_MAX) or None,
            topics=tuple(dict.fromkeys(self.topics + parse_topics(entry.tags))),
            image=optional_url(entry.image or entry.banner_image, link, "image"),
        )


def _typed_text(entry: feedparser.FeedParserDict, key: str, limit: int) -> str:
    """A title or summary as the feed typed it: text/plain is kept literally (`a&lt;b` is
    "a<b"), HTML and XHTML are reduced to their text."""
    value = entry.get(key) or ""
    detail = entry.get(f"{key}_detail") or {}
    if detail.get("type") == "text/plain":
        return plain_text(value, limit)
    return markup_text(value, limit)


def _entry_link(entry: feedparser.FeedParserDict, feed_url: str, title: str) -> str:
    """The entry's link, relative ones resolved against the feed; without one, the guid if
    it is an absolute http(s) URL (feedparser copies an RSS guid into `link`, unresolved)."""
    # An RSS guid copied into `link` leaves `links` empty: only real link elements count.
    links = [x for x in entry.get("links") or [] if x.get("rel", "alternate") == "alternate"]
    link = entry.get("link")
    if link and links:
        return item_url(link, feed_url, "link")
    return _link_or_guid(None, entry.get("id"), feed_url, title)


def _link_or_guid(link: str | None, guid: str | None, feed_url: str, title: str) -> str:
    if link:
        return item_url(link, feed_url, "link")
    if guid and guid.startswith(("https://", "http://")):
        return item_url(guid, None, "id")
    shown = f"'{guid[:80]}'" if guid else "none"
    raise ValueError(
        f"'{title[:80]}' has no link and its id ({shown}) is not an http(s) URL; skipped"
    )


def _entry_dates(entry: feedparser.FeedParserDict, title: str) -> tuple[datetime, datetime | None]:
    # Look keys up explicitly: feedparser's published/updated fallback mapping warns.
    updated = entry["updated_parsed"] if "updated_parsed" in entry else None
    stamp = (entry["published_parsed"] if "published_parsed" in entry else None) or updated
    if not stamp:
        raise ValueError(f"entry '{title[:80]}' has no (readable) date")
    return _from_struct(stamp), _from_struct(updated) if updated else None


def _from_struct(stamp: time.struct_time) -> datetime:
    try:
        return datetime.fromtimestamp(calendar.timegm(stamp), UTC)
    except (OverflowError, ValueError, OSError):
        raise ValueError(f"date {time.strftime('%Y-%m-%d', stamp)} is out of range") from None


def _entry_body(entry: feedparser.FeedParserDict, link: str) -> str:
    content = entry.get("content") or []
    part = content[0] if content else entry.get("summary_detail") or {}
    value = part.get("value", "") if content else entry.get("summary", "")
    if part.get("type") == "text/plain":
        return text_to_html(value or "")
    return sanitize_html(value or "", base_url=link)


# feedparser flags these, but the document itself parsed fine.
_HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_ACCEPT = (
    "application/feed+json, application/atom+xml, application/rss+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
