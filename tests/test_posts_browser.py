"""A real browser (Debian's Chromium via Playwright) writing posts in /admin against a real
server, on SQLite and PostgreSQL: write a post with topics and an image with its alt text,
see the live and the no-script preview, publish it and find it in the next digest's
preview at once; fix a typo and see the fix there at once; read the revisions; two
browsers editing one post (the second save refused, its text kept); a session ending
mid-edit (the text survives the log-in); a viewer reads only. axe-core on every page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from publisher.store import posts
from publisher.store.items import list_items
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts
from tests.conftest import FIXED_NOW
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401 - the fixture
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser

BODY = "## Strike news\n\nThe nurses *won* thier strike after nine days."


@pytest.fixture
def shots(tmp_path):
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


def test_editor_writes_previews_publishes_and_fixes_a_typo(
    browser,  # noqa: F811
    project,
    store,
    shots,
    guide_shot,
):
    add_accounts(store)
    page = new_page(browser)
    pages = Checked(page, shots)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        log_in(page, served.url, STAFF["editor"])
        page.get_by_role("link", name="Posts", exact=True).click()
        expect(page.get_by_role("heading", name="Posts")).to_be_visible()
        pages.check("posts-empty")
        page.get_by_role("link", name="Write a post").click()
        expect(page.get_by_label("Author")).to_have_value(STAFF["editor"])
        page.get_by_label("Title").fill("Nurses win their strike")
        page.get_by_label("Body").fill(BODY)
        page.get_by_label("Labor").check()
        page.get_by_label("New topics").fill("Health care")
        page.get_by_label("Kind").select_option("news")
        page.get_by_label("Image", exact=True).fill("https://www.example.org/picket.jpg")
        page.get_by_label("Image description (alt text)").fill("Nurses on the picket line")
        # with script: the preview follows the typing
        live = page.locator(".preview-body")
        expect(live.get_by_role("heading", name="Strike news")).to_be_visible()
        expect(live.locator("em")).to_have_text("won")
        pages.check("post-new")
        page.get_by_label("Date").fill("2026-12-01T09:00")  # later: the button schedules
        expect(page.get_by_role("button", name="Schedule")).to_be_visible()
        page.get_by_label("Date").fill("2026-11-25T06:30")
        expect(page.get_by_role("button", name="Publish", exact=True)).to_be_visible()
        # the Preview button: the page again, the rendered body beside the form, nothing saved
        page.get_by_role("button", name="Preview").click()
        expect(live.get_by_role("heading", name="Strike news")).to_be_visible()
        expect(page.get_by_label("Title")).to_have_value("Nurses win their strike")
        assert posts.list_posts(store) == []
        guide_shot(page, "posts-editor", full_page=True)
        pages.check("post-preview")
        page.get_by_role("button", name="Publish", exact=True).click()
        expect(page.get_by_role("status")).to_have_text(
            "Published: it is in the next digest's preview and the feeds now."
        )
        expect(page.locator("strong.status")).to_have_text("published")
        pages.check("post-published")
        (post,) = posts.list_posts(store)
        assert post.fields.topics == ("labor", "health-care")
        assert post.fields.image_alt == "Nurses on the picket line"

        page.goto(f"{served.url}/admin/campaigns/weekly")
        expect(page.locator("li.chosen").first).to_contain_text("Nurses win their strike")
        frame = page.frame_locator("iframe.preview")
        expect(frame.get_by_text("thier strike").first).to_be_visible()
        guide_shot(page, "posts-in-digest")

        page.goto(f"{served.url}/admin/posts/{post.id}")
        page.get_by_label("Body").fill(BODY.replace("thier", "their"))
        page.get_by_role("button", name="Publish", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("Published")
        page.goto(f"{served.url}/admin/campaigns/weekly")
        expect(frame.get_by_text("their strike").first).to_be_visible()
        assert "thier" not in page.locator("pre.text-part").text_content()
        (item,) = list_items(store)
        assert "their strike" in item.body_html

        page.goto(f"{served.url}/admin/posts/{post.id}")
        page.get_by_role("link", name="Revisions").click()
        newest = page.locator('section.revision[data-version="2"]')
        expect(newest.locator("del")).to_contain_text("thier")
        expect(newest.locator("ins")).to_contain_text("their")
        guide_shot(page, "posts-revisions")
        pages.check("post-revisions")
        page.locator('section.revision[data-version="1"]').get_by_role(
            "button", name="Restore this version"
        ).click()
        expect(page.get_by_role("status")).to_contain_text("restored")
        assert posts.get_post(store, post.id).version == 3
        page.get_by_role("link", name="Posts", exact=True).click()
        page.get_by_label("Status").select_option("published")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("#posts-table tbody tr")).to_have_count(1)
        pages.check("posts-list")


def test_two_browsers_edit_one_post(browser, project, store, shots, guide_shot):  # noqa: F811
    add_accounts(store)
    fields = posts.PostFields(title="Rent board meets", body="On Tuesday.", date=FIXED_NOW)
    post = posts.create_post(store, fields, status="published", by=STAFF["owner"], now=FIXED_NOW)
    first, second = new_page(browser), new_page(browser)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        for page, who in ((first, STAFF["owner"]), (second, STAFF["editor"])):
            log_in(page, served.url, who)
            expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            page.goto(f"{served.url}/admin/posts/{post.id}")
        first.get_by_label("Body").fill("On Wednesday, not Tuesday.")
        first.get_by_role("button", name="Publish", exact=True).click()
        expect(first.get_by_role("status")).to_contain_text("Published")
        second.get_by_label("Body").fill("On Tuesday at 7 pm.")
        second.get_by_role("button", name="Publish", exact=True).click()
        expect(second.get_by_role("heading", name="Not saved")).to_be_visible()
        expect(second.locator("section.conflict ins")).to_contain_text("On Wednesday")
        expect(second.get_by_label("Body")).to_have_value("On Tuesday at 7 pm.")
        guide_shot(second, "posts-conflict")
        Checked(second, shots).check("post-conflict")
        assert posts.get_post(store, post.id).fields.body == "On Wednesday, not Tuesday."
        # having seen their change, this editor saves on purpose: now over version 2
        second.get_by_role("button", name="Publish", exact=True).click()
        expect(second.get_by_role("status")).to_contain_text("Published")
        assert posts.get_post(store, post.id).fields.body == "On Tuesday at 7 pm."


def test_the_text_survives_a_session_ending_mid_edit(browser, project, store, shots):  # noqa: F811
    add_accounts(store)
    fields = posts.PostFields(title="Rent board meets", body="On Tuesday.", date=FIXED_NOW)
    post = posts.create_post(store, fields, status="draft", by=STAFF["owner"], now=FIXED_NOW)
    page = new_page(browser)
    pages = Checked(page, shots)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        log_in(page, served.url, STAFF["editor"])
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        page.goto(f"{served.url}/admin/posts/{post.id}")
        page.get_by_label("Body").fill("A long text typed over lunch.")
        served.clock.advance(hours=13)  # the session (12 hours) ends meanwhile
        page.get_by_role("button", name="Save draft").click()
        expect(page.get_by_role("heading", name="Your session has ended")).to_be_visible()
        expect(page.get_by_label("Body")).to_have_value("A long text typed over lunch.")
        pages.check("post-session-ended")
        with page.context.expect_page() as opened:
            page.get_by_role("link", name="Log in again").click()
        login = opened.value
        log_in(login, served.url, STAFF["editor"])
        expect(login.get_by_role("heading", name="Overview")).to_be_visible()
        login.close()
        page.get_by_role("button", name="Back to the editor with my text").click()
        expect(page.get_by_label("Body")).to_have_value("A long text typed over lunch.")
        expect(page.get_by_role("status")).to_contain_text("Nothing is saved yet")
        page.get_by_role("button", name="Save draft").click()
        expect(page.get_by_role("status")).to_have_text("Saved as a draft.")
    assert posts.get_post(store, post.id).fields.body == "A long text typed over lunch."


def test_a_viewer_reads_posts_without_a_form(browser, project, store, shots):  # noqa: F811
    add_accounts(store)
    fields = posts.PostFields(title="Rent board meets", body="On *Tuesday*.", date=FIXED_NOW)
    post = posts.create_post(store, fields, status="published", by=STAFF["owner"], now=FIXED_NOW)
    page = new_page(browser)
    pages = Checked(page, shots)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        log_in(page, served.url, STAFF["viewer"])
        page.get_by_role("link", name="Posts", exact=True).click()
        expect(page.get_by_role("link", name="Write a post")).to_have_count(0)
        page.get_by_role("link", name="Rent board meets").click()
        expect(page.locator(".preview-body em")).to_have_text("Tuesday")
        expect(page.get_by_role("button", name="Publish", exact=True)).to_have_count(0)
        pages.check("post-viewer")
        page.goto(f"{served.url}/admin/posts/{post.id}/revisions")
        expect(page.get_by_role("button", name="Restore this version")).to_have_count(0)
        pages.check("post-revisions-viewer")
