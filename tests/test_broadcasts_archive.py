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
