"""A real browser (Debian's Chromium) on SQLite and PostgreSQL: an edition sent through the
file backend; one person unsubscribes through the email's link and another changes their
preferences through theirs, each on the real pages; then a staff member opens the edition
page and reads both numbers with where they come from, and that the numbers SendGrid's
webhook would give are not available with the file backend. axe-core on every page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from publisher.deliver import deliver_edition
from tests.admin_support import STAFF, add_accounts
from tests.conftest import FIXED_NOW
from tests.servers.data import add_edition, add_subscribers
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401
from tests.test_numbers import NUMBERS_CONFIG, _ids, _links
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser


def test_staff_read_where_each_number_comes_from(
    browser,  # noqa: F811
    project,
    store,
    tmp_path,
    guide_shot,
    monkeypatch,
):
    monkeypatch.delenv("PUBLISHER_DELIVERY", raising=False)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    page = new_page(browser)
    pages = Checked(page, shots)
    with serve(project, store, config_text=NUMBERS_CONFIG) as served:
        add_subscribers(store, FIXED_NOW, 3)
        edition = add_edition(store, FIXED_NOW)
        assert deliver_edition(served.config, store, edition, now=FIXED_NOW).sent == 3
        first, second, _third = _ids(store, 3)

        page.goto(_links(served.outbox, edition, first)[0])  # the email's unsubscribe link
        pages.check("unsubscribe-page")
        page.get_by_role("button", name="Unsubscribe").click()
        expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()

        page.goto(_links(served.outbox, edition, second)[1])  # the email's preferences link
        page.get_by_label("Pause email").select_option("4")
        page.get_by_role("button", name="Save preferences").click()
        expect(page.get_by_role("status")).to_have_text("Your preferences are saved.")
        pages.check("preferences-saved")

        log_in(page, served.url, STAFF["viewer"])
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        page.goto(f"{served.url}/admin/editions/{edition}")
        table = page.locator("#outcome-table")
        unsubscribed = table.locator('tr[data-outcome="unsubscribed"]')
        expect(unsubscribed.locator("td.count")).to_have_text("1")
        expect(unsubscribed.locator("td.source")).to_have_text("our unsubscribe page")
        changed = table.locator('tr[data-outcome="changed preferences"]')
        expect(changed.locator("td.count")).to_have_text("1")
        expect(changed.locator("td.source")).to_have_text("our preferences page")
        opens = table.locator('tr[data-outcome="unique opens"]')
        expect(opens.locator("td.count")).to_have_text("not available")
        expect(opens.locator("td.source")).to_contain_text("not available with the file backend")
        expect(opens.locator("td.source")).to_contain_text("unreliable")
        expect(page.locator("#numbers-backend")).to_contain_text(
            "This site sends with the file backend."
        )
        pages.check("edition-numbers")
        page.get_by_role("heading", name="What happened").scroll_into_view_if_needed()
        guide_shot(page, "numbers-edition")
