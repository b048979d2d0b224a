"""A real browser (Debian's Chromium driven by Playwright) through the items page, on SQLite
and PostgreSQL: an editor searches and filters, retires a post and sees it leave the
campaign's preview, brings it back, corrects a feed item's topics and sees it move to
another section. Every page is screenshotted and checked with axe-core (no serious or
critical violation); the guide's screenshots are taken on the way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from publisher.store.item_search import item_entry
from tests.admin_support import STAFF, add_accounts
from tests.conftest import FIXED_NOW
from tests.items_support import PartnerFeed, collect, items_config, write_post
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401 - the fixture
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser

FEED_ITEM = "partner:https://partner.example.org/tenants/1"


@pytest.fixture
def partner() -> Iterator[PartnerFeed]:
    feed = PartnerFeed()
    feed.entries = [("tenants/1", "Tenants union signs 300 members", FIXED_NOW, ["Labor"])]
    yield feed
    feed.close()


def section_items(page, section: str) -> list[str]:
    """The campaign page's chosen items of one section of the next edition."""
    found = page.locator(f'xpath=//p[.="{section}:"]/following-sibling::ol[1]/li')
    return [text.split(" (")[0] for text in found.all_inner_texts()]


def test_an_editor_searches_retires_brings_back_and_corrects_topics(
    browser,  # noqa: F811 - the fixture
    project,
    store,
    partner,
    tmp_path,
    guide_shot,
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    write_post(project, "strike", "Nurses win their strike", "[labor]")
    write_post(project, "rent", "Rent board meets Tuesday", "[housing]", kind="event")
    page = new_page(browser)
    pages = Checked(page, shots)
    with serve(project, store, config_text=items_config(partner)) as served:
        collect(served.config, store)
        log_in(page, served.url, STAFF["editor"])
        page.get_by_role("link", name="Items", exact=True).click()
        expect(page.get_by_role("heading", name="Items")).to_be_visible()
        expect(page.locator("td.title")).to_have_count(3)
        pages.check("items")
        guide_shot(page, "items-list", full_page=True)

        # search, then filter: the URL keeps the filter
        page.get_by_label("Search items").fill("STRIKE")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("td.title")).to_have_text(["Nurses win their strike"])
        assert "q=STRIKE" in page.url
        page.get_by_label("Search items").fill("")
        page.get_by_label("Source").select_option("partner")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("td.title")).to_have_text(["Tenants union signs 300 members"])
        page.get_by_role("link", name="Clear the filters").click()
        page.get_by_label("Kind").select_option("event")
        page.get_by_label("Status").select_option("live")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("td.title")).to_have_text(["Rent board meets Tuesday"])
        assert "kind=event" in page.url and "status=live" in page.url
        pages.check("items-filtered")

        # retire a post: it leaves the campaign's next edition; bring it back
        page.get_by_role("link", name="Clear the filters").click()
        page.get_by_role("link", name="Nurses win their strike").click()
        expect(page.get_by_role("heading", name="Nurses win their strike")).to_be_visible()
        expect(page.locator("li[data-campaign=weekly]")).to_have_text(
            "weekly: in the next edition, section labor"
        )
        pages.check("item")
        guide_shot(page, "items-item", full_page=True)
        page.get_by_role("button", name="Retire").click()
        expect(page.get_by_role("status")).to_have_text(
            "Retired: it is left out of every edition and feed."
        )
        expect(page.locator("dd.status")).to_contain_text("retired")
        pages.check("item-retired")
        item_url = page.url.split("?")[0]
        page.get_by_role("link", name="weekly", exact=True).click()  # its campaign
        expect(page.get_by_role("heading", name="Campaign weekly")).to_be_visible()
        assert "Nurses win their strike" not in section_items(page, "labor")
        expect(
            page.locator("li.left-out").filter(has_text="Nurses win their strike")
        ).to_contain_text("retired")
        page.goto(item_url)
        page.get_by_role("button", name="Bring back").click()
        expect(page.get_by_role("status")).to_have_text(
            "Brought back: editions and feeds may carry it again."
        )
        page.goto(f"{served.url}/admin/campaigns/weekly")
        assert section_items(page, "labor") == [
            "Tenants union signs 300 members",
            "Nurses win their strike",
        ]

        # the feed's item belongs with housing: correct its topics
        page.get_by_role("link", name="Items", exact=True).click()
        page.get_by_role("link", name="Tenants union signs 300 members").click()
        page.get_by_label("labor", exact=True).uncheck()
        page.get_by_label("housing", exact=True).check()
        page.get_by_label("Other topics").fill("Tenants")
        page.get_by_role("button", name="Save topics").click()
        expect(page.get_by_role("status")).to_have_text(
            "Topics saved: housing, tenants. Collecting again keeps them."
        )
        expect(page.locator("dd.source-topics")).to_contain_text("labor")  # the feed's own
        expect(page.locator("li[data-campaign=weekly]")).to_have_text(
            "weekly: in the next edition, section housing"
        )
        pages.check("item-topics")
        feed_item_url = page.url.split("?")[0]
        guide_shot(page, "items-topics", full_page=True)
        page.goto(f"{served.url}/admin/campaigns/weekly")
        assert section_items(page, "labor") == ["Nurses win their strike"]
        assert section_items(page, "housing") == [
            "Tenants union signs 300 members",
            "Rent board meets Tuesday",
        ]
        # the partner edits the entry: the correction stays
        partner.entries = [("tenants/1", "Tenants union signs 350 members", FIXED_NOW, ["Labor"])]
        collect(served.config, store)
        page.reload()
        assert section_items(page, "housing")[0] == "Tenants union signs 350 members"
        entry = item_entry(store, FEED_ITEM)
        assert entry is not None and entry.item.topics == ("housing", "tenants")
        pages.check("campaign")

        # a narrow screen: the long id and link wrap instead of widening the page
        narrow = new_page(browser, 375)
        pages.page = narrow
        log_in(narrow, served.url, STAFF["viewer"])
        narrow.goto(feed_item_url)
        expect(narrow.get_by_role("heading", name="Tenants union signs 350")).to_be_visible()
        expect(narrow.locator("dd.id")).to_have_text(FEED_ITEM)
        expect(narrow.get_by_role("button", name="Retire")).to_have_count(0)
        width = narrow.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, width
        pages.check("item-as-viewer")
    assert len(pages.seen) == 7
