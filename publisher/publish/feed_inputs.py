"""What each feed is built from, out of the configuration and the store's rows: its
metadata, the items it selects, a campaign's sent editions as entries, and only the items a
validator or reader would accept (dates too far ahead not trusted). publisher.publish.feeds
builds the documents from them.
"""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from publisher.config import FeedConfig, PublisherConfig
from publisher.items import Item
from publisher.publish.documents import FeedMeta
from publisher.publish.entries import clean
from publisher.store.feeds_queries import SentEdition

if TYPE_CHECKING:
    from publisher.publish.feeds import FeedsReport

log = logging.getLogger("publisher.publish.feeds")  # as these were logged before the split
FUTURE_SLACK = timedelta(days=1)  # how far ahead of the build an item's date is trusted


def feed_meta(config: PublisherConfig, feed: FeedConfig) -> FeedMeta:
    org = config.organisation
    return FeedMeta(
        name=feed.name,
        title=feed.title,
        description=feed.description,
        link=feed.link or org.website,
        language=feed.language or org.language,
        path=feed.path,
        feeds_url=f"{org.public_url.rstrip('/')}/feeds",
        feed_id=f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, org.public_url + '#feed:' + feed.name)}",
        author=org.name,
        icon=org.logo,
        hub=config.feeds.websub_hub,
    )


def publishable(items: Iterable[Item], report: FeedsReport, now: datetime) -> list[Item]:
    """Leave out (and report) items a validator or reader would reject; untrusted dates
    (see trusted_dates) replaced."""
    out = []
    for item in items:
        reason = _unpublishable_reason(item)
        if reason:
            message = f"item '{item.id}' from {item.source}: {reason}; left out of feeds"
            log.warning(message)
            report.left_out.append(message)
        else:
            out.append(trusted_dates(item, now))
    return out


def trusted_dates(item: Item, now: datetime) -> Item:
    """A date more than FUTURE_SLACK after `now` (a typo, a clock years off: '2103') is not
    trusted: it would sort first and date the whole feed. The item is shown as published
    when the store first saw it, until its date is near."""
    limit = now + FUTURE_SLACK
    if item.published <= limit and (item.updated is None or item.updated <= limit):
        return item
    seen = min(item.first_seen or now, now)
    published = item.published if item.published <= limit else seen
    return replace(item, published=published, updated=None, day=None)


def _unpublishable_reason(item: Item) -> str | None:
    if not clean(item.title):
        return "no title"
    if not isinstance(item.published, datetime) or item.published.tzinfo is None:
        return "no date (or a date without time zone)"
    if item.url and not item.url.startswith(("https://", "http://")):  # "": no link
        return f"link '{item.url}' is not an absolute http(s) URL"
    return None


def select_items(feed: FeedConfig, items: Sequence[Item]) -> list[Item]:
    if feed.everything:
        return list(items)
    topics, kinds = set(feed.topics), set(feed.kinds)
    return [
        item
        for item in items
        if (not topics or topics.intersection(item.topics)) and (not kinds or item.kind in kinds)
    ]


def edition_items(
    config: PublisherConfig,
    editions: Sequence[SentEdition],
    titles: Mapping[tuple[str, int], Sequence[str]] | None = None,
) -> list[Item]:
    """A campaign's sent editions as feed entries linking to their web pages, each
    described by what it carried: `titles[(campaign, number)]`, its items' titles."""
    base = config.organisation.public_url.rstrip("/")
    out = []
    for edition in editions:
        url = f"{base}/archive/{edition.campaign}/{edition.number}.html"
        carried = [clean(t) for t in (titles or {}).get((edition.campaign, edition.number), ())]
        summary = "In this edition: " + "; ".join(carried) if carried else edition.subject
        listed = "".join(f"<li>{html.escape(t)}</li>" for t in carried)
        read = f'<p><a href="{html.escape(url)}">Read edition {edition.number} on the web</a></p>'
        out.append(
            Item(
                id=f"edition:{edition.campaign}:{edition.number}",
                title=edition.subject,
                url=url,
                published=edition.sent_at,
                source=f"campaign {edition.campaign}",
                kind="edition",
                summary=summary,
                body_html=f"<p>{html.escape(edition.subject)}</p>"
                + (f"<ul>{listed}</ul>" if listed else "")
                + read,
            )
        )
    return out
