"""Every item reaches its digest (issue 18): an item enters the next edition when no edition
of the campaign carried it and it is recent enough, counted from when the store first saw it,
so backdated posts and feed entries that arrive after an edition are not lost; future-dated
entries wait for their date; the daemon collects right before composing a slot; the preview
and the dashboard say why each stored item is left out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from publisher.config import PublisherConfig, load_config
from publisher.pipeline import compose_campaign, next_selection
from publisher.schedule.daemon import make_daemon
from publisher.sources.collect import collect_all
from publisher.store import Store, open_store
from publisher.store.editions import edition_item_list
from publisher.store.sink import StoreSink
from publisher.store.subscribers import SubscriberInput, import_subscribers
from tests.conftest import FIXED_NOW, present, write_config

T0 = FIXED_NOW  # 2026-11-25 12:00 UTC: edition 1 is composed then
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


class PartnerFeed:
    """A partner's RSS feed on 127.0.0.1 whose entries the test changes between fetches;
    `failing` makes it answer 500."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, datetime]] = []  # (guid, title, date)
        self.failing = False
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = b"boom" if feed.failing else feed.body()
                self.send_response(500 if feed.failing else 200)
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
            f"<item><title>{title}</title><link>https://partner.example.org/{guid}</link>"
            f"<guid>https://partner.example.org/{guid}</guid>"
            f"<pubDate>{format_datetime(date)}</pubDate></item>"
            for guid, title, date in self.entries
        )
        return (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Partner</title>'
            f"<link>https://partner.example.org/</link><description>d</description>{items}"
            "</channel></rss>"
        ).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def partner() -> Iterator[PartnerFeed]:
    feed = PartnerFeed()
    yield feed
    feed.close()


def project_config(project: Path, feed_url: str | None = None, cadence: str = "") -> Path:
    feed = f"  - {{name: partner, type: feed, url: '{feed_url}'}}\n" if feed_url else ""
    return write_config(
        project,
        "sources:\n"
        "  - {name: posts, type: markdown, path: content, base_url: 'https://www.example.org/'}\n"
        f"{feed}"
        "campaigns:\n"
        "  - name: weekly\n"
        "    title: The Weekly\n"
        "    subject: 'The Weekly #{{ edition.number }}'\n"
        "    lookback_days: 14\n"
        "    timezone: UTC\n"
        f"{cadence}"
        "    sections:\n"
        "      - {name: posts, kinds: [article], max: 10, title: Posts}\n"
        "      - {name: news, kinds: [news], max: 10, title: News}\n"
        "delivery:\n  backend: file\n",
    )


def write_post(
    project: Path,
    slug: str,
    title: str,
    date: datetime,
    kind: str = "article",
    topics: str = "[labor]",
) -> None:
    (project / "content" / f"{slug}.md").write_text(
        f"---\ntitle: {title}\ndate: {date.isoformat()}\nkind: {kind}\ntopics: {topics}\n---\n"
        f"{title}, in full.\n",
        encoding="utf-8",
    )


def collect(config: PublisherConfig, store: Store, now: datetime) -> None:
    report = collect_all(config, StoreSink(store), now=now)
    assert not report.problems, report.problems


def titles(store: Store, edition_id: int) -> list[str]:
    return [item.title for _section, item in edition_item_list(store, edition_id)]


def test_a_backdated_post_added_after_an_edition_is_in_the_next_one_once(project, database_url):
    config = load_config(project_config(project))
    write_post(project, "first", "First post", T0 - DAY)
    store = open_store(database_url)
    collect(config, store, T0)
    first = present(compose_campaign(config, store, "weekly", now=T0))
    assert titles(store, first.id) == ["First post"]
    # Written yesterday, committed an hour after edition 1 went out: dated before it.
    write_post(project, "late", "Late post", T0 - DAY + HOUR)
    collect(config, store, T0 + HOUR)
    store.close()
    # a restart: a new process, the same database
    store, config = open_store(database_url), load_config(project / "schedules.yaml")
    try:
        collect(config, store, T0 + 7 * DAY)
        second = present(compose_campaign(config, store, "weekly", now=T0 + 7 * DAY))
        assert (second.number, titles(store, second.id)) == (2, ["Late post"])
        collect(config, store, T0 + 7 * DAY + HOUR)
        assert compose_campaign(config, store, "weekly", now=T0 + 7 * DAY + 2 * HOUR) is None
    finally:
        store.close()


def test_a_backdated_feed_entry_fetched_after_an_edition_is_in_the_next_one_once(
    project, database_url, partner
):
    config = load_config(project_config(project, partner.url))
    partner.entries = [("one", "Partner story one", T0 - 3 * HOUR)]
    store = open_store(database_url)
    collect(config, store, T0)
    first = present(compose_campaign(config, store, "weekly", now=T0))
    assert titles(store, first.id) == ["Partner story one"]
    # The partner publishes an entry dated two hours before edition 1; we fetch it later.
    partner.entries.append(("two", "Partner story two", T0 - 2 * HOUR))
    collect(config, store, T0 + 6 * HOUR)
    store.close()
    store, config = open_store(database_url), load_config(project / "schedules.yaml")
    try:
        second = present(compose_campaign(config, store, "weekly", now=T0 + 7 * DAY))
        assert titles(store, second.id) == ["Partner story two"]
        collect(config, store, T0 + 7 * DAY + HOUR)  # fetched again: still never twice
        assert compose_campaign(config, store, "weekly", now=T0 + 8 * DAY) is None
    finally:
        store.close()


def test_a_future_dated_entry_is_held_until_its_date_then_sent(project, store, partner):
    config = load_config(project_config(project, partner.url))
    partner.entries = [
        ("now", "Out today", T0 - HOUR),
        ("soon", "Embargoed until Friday", T0 + 2 * DAY),
    ]
    collect(config, store, T0)
    first = present(compose_campaign(config, store, "weekly", now=T0))
    assert titles(store, first.id) == ["Out today"]
    held = dict(
        (item.title, why)
        for item, why in next_selection(config, store, "weekly", now=T0 + DAY).left_out
    )
    assert held == {"Embargoed until Friday": "held until its date, 2026-11-27 12:00 UTC"}
    assert compose_campaign(config, store, "weekly", now=T0 + DAY) is None  # still held
    collect(config, store, T0 + 2 * DAY + HOUR)
    second = present(compose_campaign(config, store, "weekly", now=T0 + 2 * DAY + HOUR))
    assert titles(store, second.id) == ["Embargoed until Friday"]


def test_a_post_fixed_just_before_a_slot_is_what_the_slot_sends(project, store, partner):
    """The daemon collects right before composing: a typo fixed at 08:50 is fixed in the
    09:00 edition, even though the 08:30 collect stored the typo; a failing source is
    reported and the slot goes on."""
    path = project_config(project, partner.url, cadence="    cadence: 'daily: 09:00'\n")
    config = load_config(path)
    slot = datetime(2026, 11, 26, 9, 0, tzinfo=T0.tzinfo)
    import_subscribers(store, [SubscriberInput("ana@example.org", "Ana", (), None)], now=T0)
    write_post(project, "webinar", "Wage theft webnar on Thursday", slot - DAY)
    collect(config, store, slot - 30 * 60 * timedelta(seconds=1))  # the 08:30 collect
    write_post(project, "webinar", "Wage theft webinar on Thursday", slot - DAY)  # 08:50
    partner.failing = True
    clock = slot + timedelta(seconds=5)
    daemon = make_daemon(config, store, clock=lambda: clock)
    said = daemon.dispatch("weekly", slot, clock)
    assert said.startswith("sent weekly #1: 1 sent") and "1 problem(s) (problems: partner" in said
    [eml] = (project / "outbox" / "weekly" / "1").glob("*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    text = present(message.get_body(("plain",))).get_content()
    assert "Wage theft webinar on Thursday" in text and "webnar" not in text


# --- why each stored item is left out: the preview and the dashboard --------------------------

LEFT_OUT_CONFIG = """\
organisation:
  name: Test Org
  website: https://www.example.org
  public_url: {public_url}
  postal_address: 1 Main St, Springfield
  from_email: news@example.org
sources:
  - {{name: posts, type: markdown, path: content, base_url: 'https://www.example.org/'}}
campaigns:
  - name: weekly
    title: Weekly
    subject: "Weekly #{{{{ edition.number }}}}"
    audience: [labor, housing]
    lookback_days: 14
    sections:
      - {{name: posts, kinds: [article], max: 1, title: Posts}}
delivery:
  backend: file
"""
REASONS = {
    "Second article": "over the max of section 'posts' (1)",
    "A toolkit": "no section takes it (its kind or topics)",
    "Old article": "older than the lookback (14 days)",
    "Embargoed article": "held until its date, 2026-11-28 12:00 UTC",
    "Withdrawn article": "retired: retired by hand",
    "A garden story": "not in the audience's topics (labor, housing)",
}


def stock_every_reason(project: Path, store: Store, public_url: str) -> PublisherConfig:
    """Posts that the next edition at T0 leaves out for each reason, and one it carries."""
    from publisher.store.items import list_items, retire_item

    (project / "schedules.yaml").write_text(LEFT_OUT_CONFIG.format(public_url=public_url))
    config = load_config(project / "schedules.yaml")
    write_post(project, "ancient", "Ancient article", T0 - 41 * DAY)
    collect(config, store, T0 - 40 * DAY)  # beyond twice the lookback: not even listed
    write_post(project, "old", "Old article", T0 - 21 * DAY)
    collect(config, store, T0 - 20 * DAY)  # seen 20 days ago: older than the lookback
    write_post(project, "newest", "Newest article", T0 - HOUR)
    write_post(project, "second", "Second article", T0 - 2 * HOUR)
    write_post(project, "toolkit", "A toolkit", T0 - 3 * HOUR, kind="resource")
    write_post(project, "embargoed", "Embargoed article", T0 + 3 * DAY)
    write_post(project, "withdrawn", "Withdrawn article", T0 - 4 * HOUR)
    write_post(project, "garden", "A garden story", T0 - 5 * HOUR, topics="[gardens]")
    collect(config, store, T0 - HOUR)
    [withdrawn] = [i for i in list_items(store) if i.title == "Withdrawn article"]
    retire_item(store, withdrawn.id, now=T0 - HOUR)
    return config


def test_the_preview_lists_every_item_left_out_and_why(
    project, store, database_url, capsys, monkeypatch
):
    from publisher.cli import main

    stock_every_reason(project, store, "https://www.example.org/news")
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", database_url)
    main(["preview", "weekly", "--at", T0.isoformat(), "--config", str(project / "schedules.yaml")])
    out = capsys.readouterr().out
    assert "Newest article" in out and "left out: 6 item(s)" in out
    for title, reason in REASONS.items():
        assert f"{title} (posts:" in out and f"): {reason}" in out, title


def test_the_dashboard_lists_what_is_left_out_even_when_nothing_would_go_out(project, store):
    """Edition 1 carried the newest article, edition 2 the second: nothing would go out
    now, and the campaign page still says why each other stored item is not in it."""
    from lxml import html as lxml_html

    from tests.admin_support import STAFF, add_accounts, log_in, xpath_list
    from tests.web_support import serve

    add_accounts(store)
    with serve(project, store, config_text=LEFT_OUT_CONFIG) as served:
        stock_every_reason(project, store, served.config.organisation.public_url)
        # editions link to the archive: composed with an https public URL
        https = project / "https.yaml"
        https.write_text(LEFT_OUT_CONFIG.format(public_url="https://www.example.org/news"))
        config = load_config(https)
        for number in (1, 2):
            edition = present(compose_campaign(config, store, "weekly", now=T0 - HOUR / 2))
            assert edition.number == number
        import httpx

        with httpx.Client(base_url=served.url, follow_redirects=True, timeout=30) as http:
            log_in(http, STAFF["editor"])
            page = http.get("/admin/campaigns/weekly").text
    assert "Nothing new: no edition would go out now." in page
    tree = lxml_html.fromstring(page)
    items = [
        e
        for e in xpath_list(tree, '//li[@class="left-out"]')
        if isinstance(e, lxml_html.HtmlElement)
    ]
    listed = [" ".join(li.text_content().split()) for li in items]
    expected = {k: v for k, v in REASONS.items() if k != "Second article"}  # it went out
    assert len(listed) == len(expected)
    for title, reason in expected.items():
        assert any(line.startswith(title) and line.endswith(reason) for line in listed), title
