"""The published pages in a real browser, under the real Content-Security-Policy: the
archive copy keeps its inline styles, and a feed opened in a browser reads as a page."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from publisher.pipeline import build_feeds, compose_campaign
from publisher.store.items import upsert_items
from tests.test_archive_public import CONFIG
from tests.test_render_fixtures import item
from tests.web_support import serve

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if os.environ.get("PUBLISHER_SKIP_BROWSER") == "1":  # only by explicit choice
    pytest.skip("PUBLISHER_SKIP_BROWSER=1", allow_module_level=True)


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium (make test does)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_context().new_page()  # the server's CSP applies: no bypass
        browser.close()


def test_archive_pages_are_styled_and_feeds_read_as_pages(project, store, fixed_now, page):
    with serve(project, store, config_text=CONFIG) as served:
        upsert_items(store, [item("first-post", days_ago=1)], now=fixed_now)
        compose_campaign(served.config, store, "weekly", now=fixed_now)
        build_feeds(served.config, store, now=fixed_now)

        page.goto(served.url + "/archive/weekly/1.html")
        heading = page.get_by_role("heading", name="Weekly", exact=True)
        assert heading.evaluate("h => getComputedStyle(h).fontSize") == "26px"  # inline CSS
        assert page.get_by_role("link", name="Subscribe").count() == 1
        assert page.get_by_role("link", name="Unsubscribe").count() == 0

        page.goto(served.url + "/archive/")
        assert page.get_by_role("link", name="Weekly").count() == 1
        assert page.locator("main").evaluate("m => getComputedStyle(m).maxWidth") == "600px"

        for feed in ("everything.rss", "editions/weekly.atom"):
            page.goto(f"{served.url}/feeds/{feed}")
            assert page.get_by_role("heading", level=1).count() == 1, feed
            assert page.get_by_role("link", name="every feed").count() == 1, feed
        page.goto(served.url + "/feeds/everything.rss")
        assert page.get_by_role("link", name="First post").count() == 1
