"""The feed build: every configured feed from the stored items and sent editions, with the
pages beside them (the newsroom's posts, the sent broadcasts' public copies, the images);
skipped when nothing feeds are made of changed since the last build."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from publisher.config import PublisherConfig
from publisher.config.models import BROADCAST_CAMPAIGN
from publisher.publish.media import write_media
from publisher.publish.newsroom import write_newsroom_pages
from publisher.store import Store
from publisher.store.editions import edition_item_list, list_editions
from publisher.store.items import list_items

if TYPE_CHECKING:
    import httpx

    from publisher.publish import FeedsReport
    from publisher.store.feeds_queries import SentEdition

__all__ = ["build_feeds"]

log = logging.getLogger(__name__)


def build_feeds(
    config: PublisherConfig, store: Store, *, now: datetime, http: httpx.Client | None = None
) -> FeedsReport:
    """Publish every configured feed from the stored items and sent editions (skipped, without
    loading items, when nothing feeds are made of changed since the last build)."""
    from publisher.publish import feeds_up_to_date, publish_feeds
    from publisher.publish.broadcasts import write_broadcast_pages
    from publisher.store.feeds_queries import (
        StoredBuildState,
        content_signature,
        sent_editions,
    )

    log.info("%s", write_newsroom_pages(config, store, now=now).note)  # change-only writes
    write_broadcast_pages(config, store)  # the sent broadcasts' public copies (issue 21)
    write_media(config, store)  # images beside the archive: the missing ones (issue 20)
    campaigns = {feed.editions_of for feed in config.feeds.feeds if feed.editions_of}
    signature = content_signature(store, campaigns)
    state = StoredBuildState(store, now=now)
    unchanged = feeds_up_to_date(config, signature, state)
    if unchanged is not None:
        return unchanged
    editions: dict[str, Sequence[SentEdition]] = {c: sent_editions(store, c) for c in campaigns}
    if BROADCAST_CAMPAIGN in editions:  # issue 21: linking to their public copies
        from publisher.publish.broadcasts import broadcast_entries

        editions[BROADCAST_CAMPAIGN] = broadcast_entries(editions[BROADCAST_CAMPAIGN])
    items = list_items(store)  # retired items are not among them
    return publish_feeds(
        config,
        items,
        editions,
        now=now,
        http=http,
        signature=signature,
        state=state,
        edition_titles=_edition_titles(store, editions),
    )


def _edition_titles(
    store: Store, editions: Mapping[str, Sequence[SentEdition]]
) -> dict[tuple[str, int], list[str]]:
    """(campaign, number) -> the titles of the items each sent edition carried."""
    titles: dict[tuple[str, int], list[str]] = {}
    for campaign, sent in editions.items():
        numbers = {e.number for e in sent}
        for summary in list_editions(store, campaign):
            if summary.number in numbers:
                carried = edition_item_list(store, summary.id)
                titles[(campaign, summary.number)] = [i.title for _, i in carried]
    return titles
