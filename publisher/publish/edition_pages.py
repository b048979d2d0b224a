"""A stored digest edition's public pages: its archive page (the public copy, rendered for
nobody) with its feeds' <link> tags, its campaign's archive index (every edition but those
that reached nobody) and the archive's home page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from publisher.config import PublisherConfig
from publisher.publish.archive import (
    ArchiveEntry,
    write_edition_page,
    write_home_page,
    write_index_page,
)
from publisher.publish.media import write_media
from publisher.render.environment import search_path_for
from publisher.store import Store
from publisher.store.editions import NOT_REACHED, StoredEdition, list_editions

if TYPE_CHECKING:
    from publisher.publish.documents import FeedMeta

__all__ = ["edition_feeds", "write_archive_index", "write_edition_archive"]


def write_edition_archive(
    config: PublisherConfig, store: Store, stored: StoredEdition, public: str
) -> None:
    """The edition's public copy (render_public: the same edition, for nobody) and the
    indexes."""
    from publisher.publish.listing import alternate_link_tags

    org = config.organisation
    links = alternate_link_tags(edition_feeds(config, stored.campaign))
    write_edition_page(config.root, org, stored.campaign, stored.number, public, links)
    write_archive_index(config, store, stored.campaign)
    write_media(config, store)  # the images its page may show, for static hosting


def edition_feeds(config: PublisherConfig, campaign: str) -> list[FeedMeta]:
    """The campaign's edition feeds, for its archive pages."""
    from publisher.publish.feed_inputs import feed_meta  # feedgen and lxml: only when needed

    return [feed_meta(config, f) for f in config.feeds.feeds if f.campaign == campaign]


def write_archive_index(config: PublisherConfig, store: Store, campaign: str) -> None:
    """The campaign's archive index (every edition but those that reached nobody), then
    the archive's home page."""
    from publisher.publish.listing import alternate_link_tags, feed_links

    entries = [
        ArchiveEntry(e.number, e.subject, e.composed_at, e.item_count)
        for e in list_editions(store, campaign)
        if e.status not in NOT_REACHED
    ]
    feeds = edition_feeds(config, campaign)
    search_path = search_path_for(config.root)
    write_index_page(
        config.root,
        config.organisation,
        config.campaign(campaign),
        entries,
        head_links=alternate_link_tags(feeds),
        feed_links=[link for meta in feeds for link in feed_links(meta)],
        search_path=search_path,
    )
    write_home_page(config.root, config.organisation, config.campaigns, search_path=search_path)
