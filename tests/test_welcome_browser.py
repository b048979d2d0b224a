"""The welcome email's admin page in a real browser (Debian's Chromium via Playwright), on
SQLite and PostgreSQL: a person confirms through the subscriber pages, the page then counts
one welcome sent, shows the configuration and the preview; axe-core finds no serious or
critical violation; screenshots for the staff guide."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from publisher.store.subscribers import find_subscriber
from tests.admin_support import STAFF, add_accounts
from tests.conftest import present
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401 (fixture)
from tests.test_web_browser import Checked
from tests.test_welcome import WELCOME, parse, welcome_config, welcomes
from tests.web_support import serve

pytestmark = pytest.mark.browser


def test_staff_see_the_welcome_sent_its_setup_and_preview(
    browser,  # noqa: F811
    project,
    store,
    tmp_path,
    guide_shot,
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    page = new_page(browser)
    pages = Checked(page, shots)
    with serve(project, store, config_text=welcome_config(WELCOME)) as served:
        # a person signs up and confirms in the browser, as a reader does
        page.goto(f"{served.url}/subscribe")
        page.get_by_label("Email address").fill("ana@example.org")
        page.get_by_label(re.compile("I agree to receive email")).check()
        before = len(served.jobs)
        page.get_by_role("button", name="Subscribe").click()
        expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
        served.wait_for_jobs(before + 1)
        (mail,) = served.confirmation_emails(1)
        text = present(parse(mail.read_bytes()).get_body(("plain",))).get_content()
        page.goto(present(re.search(r"(http://\S+/confirm\?token=\S+)", text)).group(1))
        before = len(served.jobs)
        page.get_by_role("button", name="Confirm my subscription").click()
        expect(page.get_by_role("heading", name="You are subscribed")).to_be_visible()
        served.wait_for_jobs(before + 1)
        ana = present(find_subscriber(store, email="ana@example.org"))
        assert [p.name for p in welcomes(served.outbox)] == [f"{ana.id}.eml"]

        log_in(page, served.url, STAFF["viewer"])
        page.get_by_role("link", name="Welcome email").click()
        expect(page.get_by_role("heading", name="Welcome email", level=1)).to_be_visible()
        expect(page.locator("dd.subject")).to_have_text("Welcome to Test Org")
        expect(page.locator('[data-count="sent"]')).to_have_text("1")
        expect(page.locator('[data-count="failed"]')).to_have_text("0")
        preview = page.frame_locator("iframe[title='Preview of the welcome email']")
        expect(preview.get_by_text("Hello friend,")).to_be_visible()
        expect(preview.get_by_role("link", name="Unsubscribe")).to_have_attribute(
            "href", re.compile(r"/unsubscribe\?token=preview$")
        )
        pages.check("welcome")
        guide_shot(page, "welcome-page", full_page=True)
        page.get_by_text("Text part").click()
        expect(page.locator("pre.text-part")).to_contain_text("What to expect from us")
        pages.check("welcome-text-part")
        guide_shot(page, "welcome-text-part")
