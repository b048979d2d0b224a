"""A sent broadcast's public copy (archive/broadcasts/<id>.html) and the broadcasts in a
feed (`broadcasts: true`), on SQLite and PostgreSQL (issue 21)."""

from __future__ import annotations

import pytest

from publisher.config import load_config
from publisher.deliver.broadcasts import send_broadcast
from publisher.errors import ConfigError
from publisher.pipeline import build_feeds
from publisher.render.alert import alert_url
from publisher.store.broadcasts import create_broadcast
from tests.conftest import FIXED_NOW, write_config
from tests.servers.data import add_subscribers
from tests.test_broadcasts import SENDERS, draft

FEEDS = """\
feeds:
  feeds:
    - name: alerts
      title: Test Org alerts
      description: Our action alerts
      path: alerts
      broadcasts: true
"""
NOW = FIXED_NOW


def test_a_sent_broadcast_has_a_public_copy_and_is_in_the_feed(store, project):
    config = load_config(write_config(project, SENDERS + FEEDS))
    add_subscribers(store, NOW, 3, topics=("housing",))
    sent = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    unsent = create_broadcast(store, draft(subject="Not yet"), by="ann@example.org", now=NOW)
    send_broadcast(config, store, sent.id, by="ann@example.org", now=NOW)
    build_feeds(config, store, now=NOW)
    page = project / "archive" / "broadcasts" / f"{sent.id}.html"
    html = page.read_text(encoding="utf-8")
    assert "The council votes on rent tomorrow" in html and "<strong>tomorrow</strong>" in html
    assert "token=" not in html and "%%" not in html and "Hello" not in html
    assert not (project / "archive" / "broadcasts" / f"{unsent.id}.html").exists()
    rss = (project / "feeds" / "alerts.rss").read_text(encoding="utf-8")
    assert "The council votes on rent tomorrow" in rss
    assert alert_url(config.organisation.public_url, sent.id) in rss
    assert "Not yet" not in rss


def test_a_feed_has_one_selector(project):
    both = FEEDS.replace("broadcasts: true", "broadcasts: true\n      everything: true")
    with pytest.raises(ConfigError, match="exactly one selector"):
        load_config(write_config(project, SENDERS + both))


def test_the_public_copy_is_what_was_sent_whatever_changes_after(store, project):
    """The public copy comes from the stored sent edition: an item of the broadcast edited
    after the send, the page written (or written again) later, and the sender gone from
    schedules.yaml change nothing; the personal parts of the email are left out."""
    from datetime import timedelta

    from publisher.items import Item
    from publisher.publish.broadcasts import write_broadcast_pages
    from publisher.store.items import upsert_items

    def post(title: str, at) -> Item:
        return Item(
            id="test:rally", title=title, url="https://www.example.org/rally",
            published=NOW - timedelta(hours=1), source="test", kind="article",
            summary=f"{title}: bring a friend",
        )  # fmt: skip

    config = load_config(write_config(project, SENDERS + FEEDS))
    add_subscribers(store, NOW, 2, topics=("housing",))
    upsert_items(store, [post("Rally at city hall", NOW)], now=NOW)
    sent = create_broadcast(store, draft(items=("test:rally",)), by="ann@example.org", now=NOW)
    send_broadcast(config, store, sent.id, by="ann@example.org", now=NOW)
    [eml, *_] = sorted((project / "outbox").rglob("*.eml"))
    assert "Rally at city hall" in eml.read_text(encoding="utf-8")
    # the item changes before the public copy is written; then it is written again later
    later = NOW + timedelta(days=1)
    upsert_items(store, [post("Rally moved to the park", later)], now=later)
    page = project / "archive" / "broadcasts" / f"{sent.id}.html"
    assert write_broadcast_pages(config, store) == 1
    first = page.read_text(encoding="utf-8")
    assert "Rally at city hall" in first and "Rally moved to the park" not in first
    assert "The council votes on rent tomorrow" in first and "<strong>tomorrow</strong>" in first
    for personal in ("Hello", "token=", "%%", "Unsubscribe", "preferences", "in your browser"):
        assert personal not in first, personal
    page.unlink()
    gone = load_config(write_config(project, FEEDS))  # the sender is no longer configured
    assert write_broadcast_pages(gone, store) == 1
    assert page.read_text(encoding="utf-8") == first
