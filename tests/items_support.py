"""The items page's test project: Markdown posts and a partner's RSS feed served on
127.0.0.1 (its entries and categories changed between collects), a campaign with one
section per topic, and the three staff accounts of tests/admin_support.py."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from publisher.config import PublisherConfig
from publisher.items import Item
from publisher.sources.collect import collect_all
from publisher.store import Store
from publisher.store.sink import StoreSink
from tests.conftest import FIXED_NOW

ITEMS_CONFIG = """\
organisation:
  name: Test Org
  website: https://www.example.org
  public_url: https://www.example.org/news
  postal_address: 1 Main St, Springfield
  from_email: news@example.org
  timezone: America/New_York
sources:
  - name: posts
    type: markdown
    path: content
    base_url: https://www.example.org/posts/
  - name: partner
    type: feed
    url: FEED_URL
campaigns:
  - name: weekly
    title: Weekly
    subject: "Weekly #{{{{ edition.number }}}}"
    audience: [labor, housing]
    lookback_days: 30
    cadence: "daily: 09:00"
    sections:
      - name: labor
        title: Labor
        type: list
        topics: [labor]
      - name: housing
        title: Housing
        type: list
        topics: [housing]
delivery:
  backend: file
  backoff_base: 0.01
  backoff_max: 0.05
"""


class PartnerFeed:
    """A partner's RSS feed on 127.0.0.1; `entries` (guid, title, date, categories) can be
    changed between fetches."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, datetime, list[str]]] = []
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = feed.body()
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/feed.xml"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def body(self) -> bytes:
        items = "".join(
            f"<item><title>{escape(title)}</title>"
            f"<link>https://partner.example.org/{guid}</link>"
            f"<guid>https://partner.example.org/{guid}</guid>"
            f"<pubDate>{format_datetime(date)}</pubDate>"
            + "".join(f"<category>{escape(c)}</category>" for c in categories)
            + "</item>"
            for guid, title, date, categories in self.entries
        )
        return (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Partner</title>'
            f"<link>https://partner.example.org/</link><description>d</description>{items}"
            "</channel></rss>"
        ).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def items_config(feed: PartnerFeed) -> str:
    return ITEMS_CONFIG.replace("FEED_URL", feed.url)


def write_post(
    project: Path, slug: str, title: str, topics: str = "[labor]", kind: str = "news",
    date: datetime = FIXED_NOW - timedelta(days=1),
) -> None:  # fmt: skip
    (project / "content" / f"{slug}.md").write_text(
        f"---\ntitle: '{title}'\ndate: {date.isoformat()}\nkind: {kind}\ntopics: {topics}\n"
        f"---\nThe story of {title.lower()}.\n",
        encoding="utf-8",
    )


def collect(config: PublisherConfig, store: Store, now: datetime = FIXED_NOW) -> None:
    report = collect_all(config, StoreSink(store), now=now)
    assert not report.problems, report.problems


def sample(n: int, **fields: object) -> Item:
    """Item n of source `fields.get('source', 'bulk')`, one hour older per n."""
    values: dict = {
        "id": f"bulk:{n:04d}", "title": f"Item {n}", "url": f"https://e.org/{n}",
        "published": FIXED_NOW - timedelta(hours=n), "source": "bulk", "kind": "news",
    }  # fmt: skip
    return Item(**(values | fields))
