"""The newsroom's posts (written in /admin) as items and public pages: a published post is
an item of the built-in `newsroom` source from its date on, at once (no collect needed), and
its page under posts/ is written from that item."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from publisher.config import PublisherConfig
from publisher.items import Item
from publisher.publish.archive import write_home_page
from publisher.render.environment import search_path_for
from publisher.sources import newsroom
from publisher.store import Store, posts
from publisher.store.feeds_queries import StoredBuildState
from publisher.store.items import (
    UpsertResult,
    list_items,
    retire_item,
    unretire_item,
    upsert_items,
)

if TYPE_CHECKING:
    from publisher.publish.posts import PostsReport

__all__ = ["POST_RETIRED", "publish_posts", "write_newsroom_pages"]

log = logging.getLogger(__name__)


def publish_posts(
    config: PublisherConfig, store: Store, *, now: datetime, pages: bool = False
) -> UpsertResult:
    """The newsroom's posts into items at once (no collect needed): published posts dated
    up to `now` are upserted; the items of drafts, retired posts and posts moved into the
    future are retired (and brought back when the post is published again). `pages`: also
    rewrite the public post pages when an item changed (the web, after a save; the daemon's
    feed build writes them otherwise)."""
    posts.mark_due_published(store, now=now)
    changed = False
    stored = posts.newsroom_items(store)
    live = []
    for post in posts.list_posts(store):
        key = newsroom.item_id(post.id)
        if post.status in posts.LIVE and post.fields.date <= now:
            if (stored.get(key) or "").startswith(POST_RETIRED):
                unretire_item(store, key, now=now)  # not one an editor retired by hand
                changed = True
            try:
                live.append(_post_item(config, post))
            except ValueError as exc:  # e.g. a date no item may have: the others go on
                log.warning("post %s is not published: %s", post.id, exc)
        elif key in stored and stored[key] is None:
            retire_item(store, key, now=now, reason=f"{POST_RETIRED} {post.status}")
            changed = True
    result = upsert_items(store, live, now=now)
    if pages and (changed or result.written):
        write_newsroom_pages(config, store, now=now)
    return result


POST_RETIRED = "the post is"  # the reason of an item retired because of its post


def _post_item(config: PublisherConfig, post: posts.Post) -> Item:
    f = post.fields
    return newsroom.post_item(
        post_id=post.id, slug=f.slug, title=f.title, body=f.body, published=f.date,
        public_url=config.organisation.public_url, summary=f.summary, kind=f.kind,
        topics=f.topics, author=f.author, image=f.image, image_alt=f.image_alt,
        external_url=f.external_url,
    )  # fmt: skip


class _PostPagesState(StoredBuildState):
    """The post pages' memory between builds (publish.page_memory), beside the feeds'."""

    NAME = "posts"


def write_newsroom_pages(config: PublisherConfig, store: Store, *, now: datetime) -> PostsReport:
    """The newsroom's public pages (posts/) from its stored items, then the archive's home
    page (it links to the posts); the web calls this after a post is saved or retired."""
    from publisher.items import NEWSROOM
    from publisher.publish.feed_inputs import feed_meta, select_items
    from publisher.publish.posts import POSTS_DIR, write_post_pages

    items = list_items(store, source=NEWSROOM)  # retired items are not among them
    feeds = [
        (feed_meta(config, feed), select_items(feed, items))
        for feed in config.feeds.feeds
        if not feed.editions_of
    ]
    search_path = search_path_for(config.root)
    state = _PostPagesState(store, now=now)  # what the last build rendered, from what
    report = write_post_pages(
        config, items, now=now, feeds=feeds, search_path=search_path, state=state
    )
    if config.resolve(POSTS_DIR).joinpath("index.html").is_file():
        write_home_page(config.root, config.organisation, config.campaigns, search_path=search_path)
    return report
