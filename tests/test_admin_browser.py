"""A real browser (Debian's Chromium driven by Playwright) through the staff dashboard
against a real server: log in (a wrong password first), read the overview, preview a
campaign, send a test (it arrives in the outbox), pause and see the daemon skip the slot,
resume; then the refusals: a viewer's pause, a POST without CSRF token, an editor on the
staff page, the lock-out. Every page is screenshotted into the test's temp folder and
checked with axe-core: no serious or critical violation."""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime
from email.policy import default
from pathlib import Path

import pytest
from playwright.sync_api import expect

from publisher.schedule.daemon import Daemon
from publisher.sources.collect import collect_all
from publisher.store import audit
from publisher.store.schedule_state import get_slot, paused_campaigns
from publisher.store.sink import StoreSink
from publisher.subscribers.consent import add_by_staff
from tests.admin_support import (
    ADMIN_CONFIG,
    PASSWORD,
    STAFF,
    add_accounts,
    seed_edition,
    write_posts,
)
from tests.conftest import present
from tests.test_schedule import Recorder
from tests.test_web_browser import ARGS, AXE, CHROMIUM, Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium (make test does)"
    assert AXE.exists(), "run `npm ci` for axe-core (make test does)"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def new_page(browser, width: int = 1280):
    # bypass_csp: the dashboard allows no script at all, axe must be injected
    context = browser.new_context(bypass_csp=True, viewport={"width": width, "height": 900})
    return context.new_page()


def log_in(page, url: str, who: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/admin/login")
    page.get_by_label("Email address").fill(who)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def status_of(page) -> str:
    return page.get_by_role("status").inner_text()


def slot(day: int) -> datetime:
    return datetime(2026, 11, day, 14, 0, tzinfo=UTC)  # 09:00 in New York


def test_editor_previews_tests_pauses_and_resumes(browser, project, store, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    write_posts(project)
    page = new_page(browser)
    pages = Checked(page, shots)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        collect_all(served.config, StoreSink(store), now=served.clock.now)
        add_by_staff(store, "ana@example.org", name=None, topics=["labor"], now=served.clock.now)
        page.goto(f"{served.url}/admin/")
        assert page.url.endswith("/admin/login")
        log_in(page, served.url, STAFF["editor"], "not the password")
        assert page.get_by_role("alert").inner_text() == "The address or the password is wrong."
        pages.check("login-wrong-password")
        log_in(page, served.url, STAFF["editor"])
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        row = page.locator('tr[data-campaign="weekly"]')
        assert row.locator("td.state").inner_text() == "active"
        assert "every day at 09:00" in row.inner_text()
        pages.check("overview")

        page.get_by_role("link", name="weekly", exact=True).click()
        assert page.locator("dd.subject").inner_text() == "Weekly #1"
        assert page.locator("li.chosen").all_inner_texts()[0].startswith("Nurses win their strike")
        assert page.locator("li.left-out").all_inner_texts()[0].startswith("Rent board meets")
        frame = page.frame_locator("iframe.preview")
        expect(frame.get_by_text("Nurses win their strike").first).to_be_visible()
        assert "Nurses win their strike" in page.locator("pre.text-part").text_content()
        pages.check("campaign")

        page.get_by_role("button", name="Send a test to me").click()
        assert status_of(page) == "A test of #1 was sent to edu@example.org."
        (sent,) = (served.outbox / "weekly" / "1").glob("test-*.eml")
        message = email.message_from_bytes(sent.read_bytes(), policy=default)
        assert message["To"].addresses[0].addr_spec == "edu@example.org"
        assert message["Subject"] == "Weekly #1"
        assert "Nurses win their strike" in present(message.get_body(("plain",))).get_content()
        pages.check("test-sent")

        page.get_by_role("button", name="Pause").click()
        assert status_of(page).startswith("Paused")
        assert page.locator("strong.state").inner_text().startswith("paused")
        assert paused_campaigns(store) == {"weekly"}
        pages.check("paused")
        # the daemon's own slot logic, with a fixed clock: the paused campaign's slot is skipped
        recorder = Recorder()
        daemon = Daemon(served.config, store, run_slot=recorder, clock=lambda: slot(26))
        assert daemon.dispatch("weekly", slot(26), slot(26)).startswith("paused")
        assert (
            recorder.runs == [] and present(get_slot(store, "weekly", slot(26))).status == "paused"
        )

        page.get_by_role("button", name="Resume").click()
        assert status_of(page) == "Resumed."
        assert daemon.dispatch("weekly", slot(27), slot(27)) == "sent run 1"
        assert recorder.runs == [("weekly", slot(27))]
        page.goto(f"{served.url}/admin/")
        assert page.locator('tr[data-campaign="weekly"] td.state').inner_text() == "active"

        edition_id = seed_edition(store)
        page.goto(f"{served.url}/admin/editions/{edition_id}")
        assert page.locator('tr[data-outcome="unique opens"] td.count').inner_text() == "3"
        pages.check("edition")
        page.get_by_role("link", name="Subscribers").click()
        pages.check("subscribers")
        page.get_by_label("Address or name").fill("ana@")
        page.get_by_role("button", name="Search").click()
        page.get_by_role("link", name="ana@example.org").click()
        assert "cli" in page.locator("#history-table").inner_text()
        pages.check("subscriber")
        page.get_by_role("link", name="Audit log").click()
        actions = page.locator("td.action").all_inner_texts()
        assert actions[:5] == ["resume", "pause", "test send", "login", "failed login"]
        pages.check("audit")
        page.get_by_role("button", name="Log out").click()
        assert page.url.endswith("/admin/login")
        pages.check("logged-out")
    assert len(list(shots.glob("*.png"))) == len(pages.seen) == 10


def test_refusals_lock_out_and_owner_pages(browser, project, store, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        viewer = new_page(browser, 390)
        checked = Checked(viewer, shots)
        log_in(viewer, served.url, STAFF["viewer"])
        viewer.get_by_role("link", name="weekly", exact=True).click()
        assert viewer.get_by_role("button", name="Pause").count() == 0
        checked.check("campaign-as-viewer")
        token = viewer.locator("form.logout input[name=csrf]").input_value()
        refused = viewer.request.post(
            f"{served.url}/admin/campaigns/weekly/pause", form={"csrf": token}
        )
        assert refused.status == 403 and paused_campaigns(store) == set()

        editor = new_page(browser)
        checked.page = editor
        log_in(editor, served.url, STAFF["editor"])
        no_csrf = editor.request.post(f"{served.url}/admin/campaigns/weekly/pause", form={})
        assert no_csrf.status == 403 and paused_campaigns(store) == set()
        answer = editor.goto(f"{served.url}/admin/staff")
        assert answer.status == 403
        expect(editor.get_by_role("heading", name="Not allowed")).to_be_visible()
        checked.check("staff-refused-to-editor")

        owner = new_page(browser)
        checked.page = owner
        log_in(owner, served.url, STAFF["owner"])
        owner.get_by_role("link", name="Staff", exact=True).click()
        owner.get_by_label("Email address").fill("new@example.org")
        owner.get_by_label("Role").select_option("editor")
        owner.get_by_role("button", name="Invite").click()
        assert status_of(owner) == "Invited new@example.org as editor: the link works for 3 days."
        checked.check("staff")
        owner.get_by_role("link", name="Subscribers").click()
        with owner.expect_download() as download:
            owner.get_by_role("button", name="Download subscribers.csv").click()
        assert Path(download.value.path()).read_text().startswith("email,name,topics,status")

        locked = new_page(browser)
        checked.page = locked
        for _ in range(5):
            log_in(locked, served.url, STAFF["viewer"], "wrong wrong wrong")
        log_in(locked, served.url, STAFF["viewer"])
        assert re.match("Too many failed attempts", locked.get_by_role("alert").inner_text())
        checked.check("locked-out")
    entries = audit.recent(store)
    assert [e.repeats for e in entries if e.action == "failed login"] == [5]
    actions = [e.action for e in entries]
    assert "export" in actions and "staff invited" in actions
    assert len(list(shots.glob("*.png"))) == 4
