"""Remote RSS 2.0 / Atom / JSON Feed, fetched politely: timeouts, conditional GET,
redirects followed (permanent ones remembered), 410 Gone disables the source."""

from __future__ import annotations

import calendar
import json
from datetime import UTC, datetime

import feedparser
import httpx

from publisher.config import FeedSourceConfig, PublisherConfig
from publisher.items import Item
from publisher.sanitize import html_to_text, sanitize_html, summarise
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
)

USER_AGENT = "publisher/0.1 (+https://github.com/publisher; feed collector)"


class FeedSource:
    def __init__(self, cfg: FeedSourceConfig, config: PublisherConfig) -> None:
        self.name = cfg.name
        self.url = cfg.url
        self.timeout = cfg.timeout
        self.default_kind = cfg.default_kind
        self.topics = tuple(cfg.topics)

    def collect(self, ctx: CollectContext) -> SourceResult:
        memory = ctx.memory
        if memory.disabled:
            reason = memory.disabled_reason or "disabled"
            return SourceResult(problems=[Problem(self.name, self.url, f"skipped: {reason}")])
        url = memory.url or self.url
        headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT}
        if memory.etag:
            headers["If-None-Match"] = memory.etag
        if memory.last_modified:
            headers["If-Modified-Since"] = memory.last_modified
        client = ctx.http or httpx.Client()
        try:
            response = client.get(url, headers=headers, timeout=self.timeout, follow_redirects=True)
        except httpx.HTTPError as exc:
            return SourceResult(problems=[Problem(self.name, url, f"unreachable: {exc}")])
        finally:
            if ctx.http is None:
                client.close()
        new_memory = SourceMemory(
            etag=memory.etag, last_modified=memory.last_modified, url=memory.url
        )
        if any(r.status_code in (301, 308) for r in response.history):
            new_memory.url = str(response.url)  # permanent redirect: use the new URL from now
        if response.status_code == 304:
            return SourceResult(memory=new_memory, not_modified=True)
        if response.status_code == 410:
            reason = f"410 Gone from {url}; source disabled (re-enable with a new URL)"
            new_memory.disabled, new_memory.disabled_reason = True, reason
            return SourceResult(memory=new_memory, problems=[Problem(self.name, url, reason)])
        if response.status_code >= 400:
            return SourceResult(
                problems=[Problem(self.name, url, f"HTTP {response.status_code}")],
            )
        new_memory.etag = response.headers.get("ETag")
        new_memory.last_modified = response.headers.get("Last-Modified")
        result = self.parse(response.content, str(response.url), response.headers)
        result.memory = new_memory if not result.problems or result.items else None
        return result

    def parse(self, content: bytes, url: str, headers: httpx.Headers | dict) -> SourceResult:
        ctype = headers.get("content-type", "")
        if "json" in ctype or content.lstrip()[:1] == b"{":
            return self._parse_json_feed(content, url)
        parsed = feedparser.parse(
            content, response_headers={**dict(headers), "content-location": url}
        )
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
        for index, entry in enumerate(parsed.entries):
            try:
                result.items.append(self._from_entry(entry, url))
            except ValueError as exc:
                result.problems.append(Problem(self.name, f"{url} entry {index + 1}", str(exc)))
        return result

    def _from_entry(self, entry: feedparser.FeedParserDict, feed_url: str) -> Item:
        title = html_to_text(entry.get("title", ""))
        if not title:
            raise ValueError("entry has no title")
        link = item_url(entry.get("link"), feed_url, "link")
        guid = entry.get("id") or link
        if not link or not guid:
            raise ValueError(f"entry '{title}' has no link or id")
        # Look keys up explicitly: feedparser's published/updated fallback mapping warns.
        updated = entry["updated_parsed"] if "updated_parsed" in entry else None
        stamp = (entry["published_parsed"] if "published_parsed" in entry else None) or updated
        if not stamp:
            raise ValueError(f"entry '{title}' has no date")
        published = datetime.fromtimestamp(calendar.timegm(stamp), UTC)
        content = entry.get("content") or []
        body = content[0].get("value", "") if content else entry.get("summary", "")
        body_html = sanitize_html(body, base_url=link)
        summary = summarise(entry.get("summary", "") or body_html)
        image = None
        for enclosure in entry.get("enclosures", []) or entry.get("media_content", []):
            if str(enclosure.get("type", "")).startswith("image/"):
                image = optional_url(enclosure.get("href") or enclosure.get("url"), link, "image")
                break
        topics = self.topics + parse_topics([t.get("term", "") for t in entry.get("tags", [])])
        return Item(
            id=f"{self.name}:{guid}",
            title=title,
            url=link,
            published=published,
            updated=datetime.fromtimestamp(calendar.timegm(updated), UTC) if updated else None,
            source=self.name,
            kind=self.default_kind,
            summary=summary,
            body_html=body_html,
            author=entry.get("author") or None,
            topics=tuple(dict.fromkeys(topics)),
            image=image,
        )

    def _parse_json_feed(self, content: bytes, url: str) -> SourceResult:
        result = SourceResult()
        try:
            doc = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            result.problems.append(Problem(self.name, url, f"malformed JSON feed: {exc}"))
            return result
        if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith(
            "https://jsonfeed.org/version/"
        ):
            result.problems.append(Problem(self.name, url, "not a JSON Feed (no version)"))
            return result
        for index, entry in enumerate(doc.get("items") or []):
            try:
                result.items.append(self._from_json_item(entry, url))
            except (ValueError, AttributeError, TypeError) as exc:
                result.problems.append(Problem(self.name, f"{url} item {index + 1}", str(exc)))
        return result

    def _from_json_item(self, entry: dict, feed_url: str) -> Item:
        title = html_to_text(str(entry.get("title") or ""))
        if not title:
            raise ValueError("item has no title")
        link = item_url(entry.get("url"), feed_url)
        guid = str(entry.get("id") or link or "")
        if not link or not guid:
            raise ValueError(f"item '{title}' has no url or id")
        published = parse_datetime(entry.get("date_published"), field_name="date_published")
        body = entry.get("content_html") or entry.get("content_text") or ""
        body_html = sanitize_html(str(body), base_url=link)
        authors = entry.get("authors") or ([entry["author"]] if entry.get("author") else [])
        return Item(
            id=f"{self.name}:{guid}",
            title=title,
            url=link,
            published=published,
            updated=parse_datetime(entry["date_modified"], field_name="date_modified")
            if entry.get("date_modified")
            else None,
            source=self.name,
            kind=check_kind(None, self.default_kind),
            summary=str(entry.get("summary") or summarise(body_html)),
            body_html=body_html,
            author=(authors[0].get("name") if authors else None),
            topics=tuple(dict.fromkeys(self.topics + parse_topics(entry.get("tags")))),
            image=optional_url(entry.get("image") or entry.get("banner_image"), link, "image"),
        )


# feedparser flags these, but the document itself parsed fine.
_HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_ACCEPT = (
    "application/feed+json, application/atom+xml, application/rss+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
