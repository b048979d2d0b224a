"""The public copy: an edition's archive page is nobody's copy, the indexes invite people to
subscribe, and every link of the archive answers through `publisher serve`."""

from __future__ import annotations

from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx
import pytest

from publisher.pipeline import build_feeds, compose_campaign, send_edition
from publisher.store.items import upsert_items
from tests.conftest import ROOT, present
from tests.servers.data import add_subscribers
from tests.test_render_fixtures import item
from tests.web_support import serve

PUBLIC = "https://news.example.org/letters"
CONFIG = f"""\
organisation:
  name: Test Org
  website: https://www.example.org
  public_url: {PUBLIC}
  postal_address: 1 Main St, Springfield
  from_email: news@example.org
  timezone: America/New_York
feeds:
  output_dir: feeds
  feeds:
    - name: everything
      title: Everything
      description: All of it.
      path: everything
      everything: true
    - name: weekly-editions
      title: Weekly editions
      description: Every edition of Weekly, as sent.
      link: {PUBLIC}/archive/weekly/
      path: editions/weekly
      campaign: weekly
campaigns:
  - name: weekly
    title: Weekly
    subject: "Weekly for %%NAME%%"
    preheader: The same words every week.
    audience: []
    sections:
      - name: posts
        type: list
        title: Posts
        kinds: [article, resource, news]
        max: 6
delivery:
  backend: file
"""


class Links(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _publish(project, store, now):
    """One edition composed, sent to one subscriber, and the feeds built."""
    items = [
        item("first-post", days_ago=1),
        item("second-post", days_ago=2, title="Second & <last> post"),
    ]
    upsert_items(store, items, now=now)
    add_subscribers(store, now, 1)
    return items


def test_the_archive_copy_has_no_personal_part_and_no_dead_link(project, store, fixed_now):
    with serve(project, store, config_text=CONFIG) as served:
        config = served.config
        items = _publish(project, store, fixed_now)
        record = present(compose_campaign(config, store, "weekly", now=fixed_now))
        send_edition(config, store, record.id, now=fixed_now + timedelta(minutes=1))
        build_feeds(config, store, now=fixed_now + timedelta(minutes=2))

        def local(url: str) -> str:
            return served.url + url.removeprefix(PUBLIC)

        page = httpx.get(local(f"{PUBLIC}/archive/weekly/1.html"))
        assert page.status_code == 200
        assert "'unsafe-inline'" in page.headers["content-security-policy"]  # email styles
        html = page.text
        shown = "".join(Links(html).text)
        for personal in ("Hello", "View this email in your browser", "token=", "%%",
                         "Unsubscribe", "preferences", "Person 0"):  # fmt: skip
            assert personal not in html, personal
        for title in ("First post", "Second & <last> post", "Subscribe", "Feeds"):
            assert title in shown, title
        assert f"{PUBLIC}/subscribe" in Links(html).links

        index = httpx.get(local(f"{PUBLIC}/archive/weekly/")).text
        assert f"{PUBLIC}/subscribe" in Links(index).links
        assert f"{PUBLIC}/feeds/editions/weekly.rss" in Links(index).links

        seen: dict[str, int] = {}
        queue = [f"{PUBLIC}/archive/", f"{PUBLIC}/feeds/", f"{PUBLIC}/archive/weekly/1.html"]
        while queue:
            url = queue.pop()
            if url in seen:
                continue
            answer = httpx.get(local(url), follow_redirects=True)
            seen[url] = answer.status_code
            if answer.headers.get("content-type", "").startswith("text/html"):
                for link in Links(answer.text).links:
                    absolute = urljoin(url, link).split("#")[0]
                    if absolute.startswith(PUBLIC + "/"):
                        queue.append(absolute)
                    else:  # the organisation's website and the items: never the archive's
                        assert urlsplit(absolute).netloc != urlsplit(PUBLIC).netloc, absolute
        assert {u: s for u, s in seen.items() if s != 200} == {}
        for path in ("/subscribe", "/archive/weekly/", "/feeds/everything.atom",
                     "/feeds/editions/weekly.json", "/feeds/index.opml"):  # fmt: skip
            assert f"{PUBLIC}{path}" in seen, path

        # the editions feed describes what the edition carried, not the fixed preheader
        feed = feedparser.parse(httpx.get(local(f"{PUBLIC}/feeds/editions/weekly.rss")).content)
        (entry,) = feed.entries
        assert entry.link == f"{PUBLIC}/archive/weekly/1.html"
        assert all(i.title in unescape(entry.summary) for i in items), entry.summary
        assert "The same words every week" not in entry.summary


def test_the_archive_and_feed_indexes_are_pages(project, store, fixed_now):
    with serve(project, store, config_text=CONFIG) as served:
        _publish(project, store, fixed_now)
        compose_campaign(served.config, store, "weekly", now=fixed_now)
        build_feeds(served.config, store, now=fixed_now)
        for path, expected in (("/archive/", "Weekly"), ("/feeds/", "Weekly editions")):
            answer = httpx.get(served.url + path)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"].startswith("text/html")
            assert expected in "".join(Links(answer.text).text)
            assert f"{PUBLIC}/subscribe" in Links(answer.text).links
        assert httpx.get(served.url + "/feeds", follow_redirects=True).status_code == 200


def test_a_template_broken_only_for_the_public_copy_is_caught_before_storing(
    project, store, fixed_now
):
    from publisher.config import load_config
    from publisher.errors import TemplateError
    from publisher.render.checks import check_templates
    from publisher.store.editions import list_editions

    (project / "schedules.yaml").write_text(CONFIG, encoding="utf-8")
    (project / "templates").mkdir()
    builtin = (ROOT / "templates" / "digest.mjml").read_text(encoding="utf-8")
    broken = builtin.replace("{% if not public %}", "{% if not public %}{% else %}{{ nope }}", 1)
    (project / "templates" / "digest.mjml").write_text(broken, encoding="utf-8")
    config = load_config(project / "schedules.yaml")
    problems = check_templates(config)
    assert [p for p in problems if "nope" in p], problems
    _publish(project, store, fixed_now)
    with pytest.raises(TemplateError, match="nope"):
        compose_campaign(config, store, "weekly", now=fixed_now)
    assert list_editions(store, "weekly") == []


def test_nothing_published_yet_is_a_page_not_plain_text(project, store):
    with serve(project, store, config_text=CONFIG) as served:
        for path in ("/archive/", "/feeds/", "/archive/weekly/9.html"):
            answer = httpx.get(served.url + path)
            assert answer.status_code == 404, path
            assert answer.headers["content-type"].startswith("text/html"), path
            assert "Nothing is published at this address." in answer.text
