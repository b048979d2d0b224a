"""The newsroom's public pages: each published post at `<public_url>/posts/<slug>` is a page
with its head (canonical, Open Graph, the feeds carrying it), a sanitised body and a call to
subscribe; posts that link elsewhere get none; a retired post's page goes; the index lists
the newest first; every link answers through `publisher serve`, under --root-path too."""

from __future__ import annotations

import difflib
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import uvicorn
from playwright.sync_api import expect

from publisher.config import load_config
from publisher.items import NEWSROOM, Item
from publisher.pipeline import build_feeds, write_newsroom_pages
from publisher.publish import posts as posts_module
from publisher.publish.feed_inputs import feed_meta, select_items
from publisher.publish.posts import write_post_pages
from publisher.store.items import retire_item, upsert_items
from publisher.web import create_app
from tests.conftest import FIXED_NOW
from tests.test_admin_browser import browser, new_page  # noqa: F401
from tests.test_archive_public import Links
from tests.test_web_browser import Checked
from tests.web_support import SECRET, Clock, free_port, serve

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
    - name: housing
      title: Housing
      description: Housing only.
      path: housing
      topics: [housing]
campaigns:
  - name: weekly
    title: Weekly
    subject: Weekly
    audience: []
delivery:
  backend: file
"""
HOSTILE = '"><script>alert(1)</script> & <b>bold</b>'
PHOTO = (  # an image the served folder holds (the newsroom's media are part A's)
    '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="630">'
    '<rect width="1200" height="630" fill="#1d4f91"/></svg>'
)
GOLDEN = Path(__file__).parent / "golden" / "posts"


def post(
    slug: str,
    *,
    days_ago: float = 1,
    title: str | None = None,
    url: str | None = None,
    body: str = "<p>The council voted <strong>7 to 2</strong>.</p>",
    image: bool = True,
    topics: tuple[str, ...] = ("labor",),
    source: str = NEWSROOM,
) -> Item:
    return Item(
        id=f"{source}:{slug}",
        title=title or slug.replace("-", " ").capitalize(),
        url=f"{PUBLIC}/posts/{slug}" if url is None else url,
        published=FIXED_NOW - timedelta(days=days_ago),
        source=source,
        summary=f"What {slug.replace('-', ' ')} means.",
        body_html=body,
        author="Ana Díaz",
        topics=topics,
        image=f"https://media.example.net/{slug}.jpg" if image else None,
        image_alt=f"Photo for {slug}" if image else None,
    )


class Head(HTMLParser):
    """<meta> contents by property or name, <link>s by rel, and the <title>."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.links: list[dict[str, str | None]] = []
        self.title, self._in_title = "", False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "meta" and (key := found.get("property") or found.get("name")):
            self.meta[key] = found.get("content") or ""
        elif tag == "link":
            self.links.append(found)
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def rel(self, rel: str) -> list[str]:
        return [str(link["href"]) for link in self.links if link.get("rel") == rel]


def page_of(project: Path, slug: str) -> str:
    return (project / "posts" / slug / "index.html").read_text(encoding="utf-8")


@pytest.fixture
def config(project: Path):
    (project / "schedules.yaml").write_text(CONFIG, encoding="utf-8")
    return load_config(project / "schedules.yaml")


def test_the_page_head_describes_the_post_for_sharing_and_feed_readers(config, project, store):
    item = post("rent-vote", title=HOSTILE)
    upsert_items(store, [item], now=FIXED_NOW)
    report = write_newsroom_pages(config, store, now=FIXED_NOW)
    assert (report.written, report.left_out) == (2, [])  # the page and the index
    html = page_of(project, "rent-vote")
    head = Head(html)
    assert head.title == f"{HOSTILE} · Test Org"
    assert head.meta["og:title"] == HOSTILE
    assert head.meta["og:url"] == item.url == f"{PUBLIC}/posts/rent-vote"
    assert head.rel("canonical") == [item.url]
    assert head.meta["og:type"] == "article"
    assert head.meta["og:site_name"] == "Test Org"
    assert head.meta["og:description"] == head.meta["description"] == "What rent vote means."
    assert head.meta["og:image"] == "https://media.example.net/rent-vote.jpg"
    assert head.meta["og:image:alt"] == "Photo for rent-vote"
    assert head.meta["twitter:card"] == "summary_large_image"
    # the feeds that carry the post (everything), not the housing feed, nor another post's
    feeds = f"{PUBLIC}/feeds/everything"
    assert head.rel("alternate") == [f"{feeds}.rss", f"{feeds}.atom", f"{feeds}.json"]
    # the hostile title is text everywhere: no tag of it survives, in the head or the body
    assert "<script>" not in html and "<b>bold" not in html
    assert html.count("&lt;script&gt;") >= 3  # <title>, <h1> and the index's link
    assert f'href="{PUBLIC}/subscribe"' in html
    assert '<time datetime="2026-11-24">24 November 2026</time>' in html
    assert "<bdi>Ana Díaz</bdi>" in html and "Topics: labor<" in html


def test_a_post_without_an_image_is_a_summary_card(config, project):
    write_post_pages(config, [post("plain", image=False)], now=FIXED_NOW)
    head = Head(page_of(project, "plain"))
    assert head.meta["twitter:card"] == "summary"
    assert "og:image" not in head.meta and "og:image:alt" not in head.meta
    assert "<img" not in page_of(project, "plain")


def test_the_body_is_sanitised_again(config, project):
    hostile = (
        '<p>Kept <a href="javascript:alert(1)">link</a></p><script>alert(2)</script>'
        '<img src="x.jpg" onerror="alert(3)" alt="x"><iframe src="https://evil.example"></iframe>'
        '<p style="color:red" onclick="alert(4)">styled</p>'
        '<form action="https://evil.example/"><input name="password"></form>'
    )
    write_post_pages(config, [post("hostile", body=hostile)], now=FIXED_NOW)
    html = page_of(project, "hostile")
    for bad in ("javascript:", "<script", "alert(", "onerror", "<iframe", "onclick", "color:red",
                "<form", "<input", "evil.example"):  # fmt: skip
        assert bad not in html, bad
    assert "<p>Kept <a" in html and "<p>styled</p>" in html
    assert 'src="https://news.example.org/letters/posts/x.jpg"' in html  # made absolute


def test_posts_that_link_elsewhere_or_nowhere_get_no_page(config, project):
    items = [
        post("external", url="https://www.example.org/blog/external"),
        post("linkless", url=""),
        post("other-source", source="blog"),  # another source's item under posts/
        post("escape", url=f"{PUBLIC}/posts/../secrets"),
        post("nested", url=f"{PUBLIC}/posts/a/b"),
        replace(post("real"), id="newsroom:copy"),  # the same address twice: the first wins
    ]
    report = write_post_pages(config, items[:-1], now=FIXED_NOW)
    assert report.written == 0
    assert not (project / "posts").exists()  # never a post: no folder at all
    assert sorted(report.left_out) == [
        f"item 'newsroom:escape': '{PUBLIC}/posts/../secrets' is not a post address",
        f"item 'newsroom:nested': '{PUBLIC}/posts/a/b' is not a post address",
    ]
    assert not (project / "secrets").exists()
    report = write_post_pages(config, [post("real"), *items], now=FIXED_NOW)
    copy = f"item 'newsroom:copy': '{PUBLIC}/posts/real' is another post's address"
    assert report.left_out[-1] == copy
    assert sorted(p.name for p in (project / "posts").iterdir()) == ["index.html", "real"]


def test_a_retired_post_loses_its_page_on_the_next_build(config, project, store):
    upsert_items(store, [post("stays", days_ago=2), post("goes", days_ago=1)], now=FIXED_NOW)
    write_newsroom_pages(config, store, now=FIXED_NOW)
    assert page_of(project, "goes")
    assert "Goes" in page_of(project, "stays")  # the newer post's link
    (project / "posts" / "by-hand.txt").write_text("kept", encoding="utf-8")
    retire_item(store, "newsroom:goes", now=FIXED_NOW)
    report = write_newsroom_pages(config, store, now=FIXED_NOW)
    assert report.removed == 1
    assert not (project / "posts" / "goes").exists()
    assert "Goes" not in page_of(project, "stays")
    assert "Goes" not in (project / "posts" / "index.html").read_text(encoding="utf-8")
    assert (project / "posts" / "by-hand.txt").is_file()  # only what the build writes goes
    again = write_newsroom_pages(config, store, now=FIXED_NOW)
    assert (again.written, again.unchanged, again.removed) == (0, 2, 0)  # change-only


def test_every_feed_build_writes_the_pages_even_when_the_feeds_are_unchanged(
    config, project, store
):
    upsert_items(store, [post("rent-vote")], now=FIXED_NOW)
    build_feeds(config, store, now=FIXED_NOW)
    assert page_of(project, "rent-vote")
    (project / "posts" / "rent-vote" / "index.html").unlink()
    again = build_feeds(config, store, now=FIXED_NOW)
    assert again.written == 0  # the feeds were up to date: skipped
    assert "Rent vote" in page_of(project, "rent-vote")


def titles_in(html: str) -> list[str]:
    """The titles an index page lists, in its order."""
    return re.findall(r'<li><a href="[^"]*" dir="auto">([^<]*)</a>', html)


def test_the_index_lists_posts_newest_first_a_page_at_a_time(config, project, monkeypatch):
    monkeypatch.setattr(posts_module, "PER_PAGE", 2)
    items = [post(f"post-{n}", days_ago=n) for n in (3, 1, 5, 2, 4)]  # stored in any order
    write_post_pages(config, items, now=FIXED_NOW)
    folder = project / "posts"
    first = (folder / "index.html").read_text(encoding="utf-8")
    assert titles_in(first) == ["Post 1", "Post 2"]
    assert titles_in((folder / "page-2.html").read_text(encoding="utf-8")) == ["Post 3", "Post 4"]
    last = (folder / "page-3.html").read_text(encoding="utf-8")
    assert titles_in(last) == ["Post 5"]
    assert f'href="{PUBLIC}/posts/page-2.html">Older posts' in first
    assert f'href="{PUBLIC}/posts/page-2.html">Newer posts' in last
    assert "Older posts" not in last
    report = write_post_pages(config, items[:3], now=FIXED_NOW)
    assert report.removed == 3  # post-2 and post-4's pages, and page-3.html
    assert not (folder / "page-3.html").exists()


def test_every_link_of_the_posts_answers_through_publisher_serve(project, store):
    with serve(project, store, config_text=CONFIG) as served:
        items = [
            post("rent-vote", days_ago=1),
            post("housing-win", topics=("housing",)),
            post("تصويت-الإيجارات", days_ago=3),  # an address in another script (an IRI)
        ]
        upsert_items(store, items, now=FIXED_NOW)
        build_feeds(served.config, store, now=FIXED_NOW)  # writes the posts' pages too

        def local(url: str) -> str:
            return served.url + url.removeprefix(PUBLIC)

        answer = httpx.get(local(f"{PUBLIC}/posts/rent-vote"))
        assert (answer.status_code, answer.headers["location"]) == (307, "./rent-vote/")
        answer = httpx.get(local(f"{PUBLIC}/posts/rent-vote"), follow_redirects=True)
        assert answer.status_code == 200
        assert "'unsafe-inline'" in answer.headers["content-security-policy"]  # its style
        assert "script-src" not in answer.headers["content-security-policy"]
        assert "no-store" not in answer.headers.get("cache-control", "")
        answer = httpx.get(local(f"{PUBLIC}/posts/تصويت-الإيجارات"), follow_redirects=True)
        assert answer.status_code == 200 and len(answer.history) == 1  # one relative redirect
        seen: dict[str, int] = {}
        queue = [f"{PUBLIC}/posts/", f"{PUBLIC}/posts/rent-vote"]
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
                    else:  # the organisation's website and the images: never ours
                        assert urlsplit(absolute).netloc != urlsplit(PUBLIC).netloc, absolute
        assert {u: s for u, s in seen.items() if s != 200} == {}
        for path in ("/subscribe", "/archive/", "/feeds/", "/posts/housing-win/",
                     "/posts/تصويت-الإيجارات/",
                     "/feeds/everything.json", "/feeds/housing.atom"):  # fmt: skip
            assert f"{PUBLIC}{path}" in seen, path
        home = httpx.get(local(f"{PUBLIC}/archive/")).text
        assert f"{PUBLIC}/posts/" in Links(home).links


@contextmanager
def serve_under(project: Path, store, prefix: str) -> Iterator[str]:
    """`publisher serve --root-path <prefix>` behind a proxy that strips the prefix: the
    app is reached at the server's root, its public_url ends with the prefix."""
    port = free_port()
    (project / "schedules.yaml").write_text(
        CONFIG.replace(PUBLIC, f"http://127.0.0.1:{port}{prefix}"), encoding="utf-8"
    )
    config = load_config(project / "schedules.yaml")
    app = create_app(config, store, secret_key=SECRET, now=Clock())
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", root_path=prefix)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # the server's own flag, polled; the deadline only fails
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_posts_are_served_under_a_root_path(project, store):
    with serve_under(project, store, "/news") as url:
        config = load_config(project / "schedules.yaml")
        upsert_items(store, [post("rent-vote", url=f"{url}/news/posts/rent-vote")], now=FIXED_NOW)
        write_newsroom_pages(config, store, now=FIXED_NOW)
        answer = httpx.get(f"{url}/posts/rent-vote")  # what the proxy passes on
        assert (answer.status_code, answer.headers["location"]) == (307, "./rent-vote/")
        answer = httpx.get(f"{url}/posts/rent-vote", follow_redirects=True)
        assert answer.status_code == 200
        assert Head(answer.text).rel("canonical") == [f"{url}/news/posts/rent-vote"]
        assert "'unsafe-inline'" in answer.headers["content-security-policy"]
        index = httpx.get(f"{url}/posts/")
        assert index.status_code == 200 and f"{url}/news/posts/rent-vote/" in index.text


def assert_golden(name: str, data: str) -> None:
    path = GOLDEN / name
    if os.environ.get("PUBLISHER_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data, encoding="utf-8")
    expected = path.read_text(encoding="utf-8") if path.exists() else ""
    if data != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True), data.splitlines(keepends=True), name, "rendered"
        )
        pytest.fail(f"{name} differs (PUBLISHER_REGEN_GOLDEN=1 regenerates it):\n{''.join(diff)}")


def test_a_post_page_matches_its_golden_file(config, project):
    """A right-to-left title on a left-to-right site, a day-only date, an image, neighbours."""
    items = [
        post("older", days_ago=3),
        post(
            "rent-vote",
            days_ago=2,
            title="تصويت مجلس المدينة على الإيجارات",
            body='<p>The council voted.</p><p><a href="https://www.example.org/minutes">Minutes</a></p>',
        ),
        post("newer", days_ago=1, image=False),
    ]
    items[1] = replace(items[1], day=date(2026, 11, 23))
    feeds = [(feed_meta(config, f), select_items(f, items)) for f in config.feeds.feeds]
    write_post_pages(config, items, now=FIXED_NOW, feeds=feeds)
    assert_golden("rent-vote.html", page_of(project, "rent-vote"))


@pytest.mark.browser
def test_a_post_page_in_a_browser_on_a_phone_and_a_desktop(
    browser,  # noqa: F811
    project,
    store,
    tmp_path,
    guide_shot,
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with serve(project, store, config_text=CONFIG.replace(PUBLIC, "{public_url}")) as served:
        base = f"{served.url}/posts"
        body = "".join(
            f"<p>Paragraph {n} of what the council decided, and why.</p>" for n in (1, 2)
        )
        items = [
            replace(post("rent-vote", title="The council votes on rents", body=body),
                    url=f"{base}/rent-vote", image=f"{base}/rent-vote/photo.svg",
                    image_alt="Tenants fill the council chamber"),
            replace(post("older-news", days_ago=3, image=False), url=f"{base}/older-news"),
        ]  # fmt: skip
        upsert_items(store, items, now=FIXED_NOW)
        build_feeds(served.config, store, now=FIXED_NOW)
        (project / "posts" / "rent-vote" / "photo.svg").write_text(PHOTO, encoding="utf-8")

        strict = browser.new_context().new_page()  # the server's CSP applies: no bypass
        strict.goto(f"{base}/rent-vote")
        expect(strict.get_by_role("heading", name="The council votes on rents")).to_be_visible()
        assert strict.locator("main").evaluate("m => getComputedStyle(m).maxWidth") == "600px"
        image = strict.get_by_role("img", name="Tenants fill the council chamber")
        expect(image).to_be_visible()
        assert image.evaluate("i => i.naturalWidth") == 1200  # loaded under img-src 'self'

        for width, name in ((375, "phone"), (1280, "desktop")):
            page = new_page(browser, width)
            pages = Checked(page, shots)
            page.goto(f"{base}/rent-vote")
            expect(page.get_by_role("link", name="Subscribe")).to_be_visible()
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width, f"{name}: {overflow}px wide"
            shown = page.get_by_role("img", name="Tenants fill the council chamber")
            assert shown.evaluate("i => i.getBoundingClientRect().width") <= width
            pages.check(f"post-{name}")
            guide_shot(page, f"post-page-{name}", full_page=True)
            page.get_by_role("link", name="Older news").click()
            expect(page.get_by_role("heading", name="Older news")).to_be_visible()
            page.get_by_role("link", name="All posts").first.click()
            expect(page.get_by_role("heading", name="Posts")).to_be_visible()
            pages.check(f"posts-{name}")
            if name == "desktop":
                guide_shot(page, "posts-index")


def test_the_api_creates_under_a_root_path(project, store):
    """Behind a proxy that strips /news, POST /api/v1/subscribers still reaches its handler
    (the direct path table reads the path as the router does, without the prefix)."""
    from publisher.store.api_keys import create_key
    from publisher.store.subscribers import find_subscriber

    _, key = create_key(store, "site", kind="scoped", created_by="test", now=FIXED_NOW,
                        scopes=["subscribers:write", "subscribers:import"])  # fmt: skip
    body = {"email": "ada@example.org", "topics": [], "consent": {"text": "Ticked"}}
    with serve_under(project, store, "/news") as url:
        answer = httpx.post(
            f"{url}/api/v1/subscribers", json=body, headers={"Authorization": f"Bearer {key}"}
        )
    assert answer.status_code == 201, answer.text
    found = find_subscriber(store, email="ada@example.org")
    assert found is not None and found.status == "active"
