"""A real browser (Debian's Chromium) walks approval, on SQLite and PostgreSQL (issue 21): an
owner grants the send permission to an editor on the staff page; with `approval: editions:
true` the daemon holds the slot's edition (nothing sent, the overview and the Approvals page
say it waits); the owner refuses it with a reason on the Approvals page (nothing goes; the
overview and the campaign page say who refused it and why); the editor, a second staff
member, approves it on the campaign page after all; the daemon's next tick sends it, once.
axe-core on every page; guide shots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from publisher.schedule.daemon import make_daemon
from publisher.store import audit
from publisher.store import schedule_state as state
from publisher.store.editions import list_editions
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts, write_posts
from tests.conftest import present
from tests.servers.data import add_subscribers
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser

APPROVAL_CONFIG = ADMIN_CONFIG + "approval:\n  editions: true\n"
SLOT = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # daily 09:00 in New York


def test_a_second_staff_member_approves_the_held_edition_and_it_goes_once(
    browser,  # noqa: F811
    project,
    store,
    tmp_path,
    guide_shot,
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    write_posts(project)
    add_subscribers(store, SLOT - timedelta(days=1), 3, topics=("labor",))
    with serve(project, store, config_text=APPROVAL_CONFIG) as served:
        owner = new_page(browser)
        pages = Checked(owner, shots)
        log_in(owner, served.url, STAFF["owner"])
        owner.get_by_role("link", name="Staff", exact=True).click()
        owner.get_by_role("button", name="Grant the send permission to edu@example.org").click()
        expect(owner.get_by_role("status")).to_have_text("edu@example.org may now send.")
        expect(
            owner.get_by_role("button", name="Take the send permission of edu@example.org")
        ).to_be_visible()
        pages.check("send-permission-granted")
        guide_shot(owner, "approval-send-permission", full_page=True)

        # the slot comes: the daemon composes the edition and holds it
        clock = SLOT + timedelta(seconds=5)
        daemon = make_daemon(served.config, store, clock=lambda: clock)
        said = daemon.dispatch("weekly", SLOT, clock)
        assert said.startswith("held weekly #1 waits for approval"), said
        outbox = served.outbox / "weekly" / "1"
        assert not list(outbox.glob("*.eml"))

        editor = new_page(browser)
        pages = Checked(editor, shots)
        log_in(editor, served.url, STAFF["editor"])
        expect(editor.get_by_role("link", name="weekly #1 waits for approval")).to_be_visible()
        pages.check("overview-waiting")
        editor.get_by_role("link", name="Approvals", exact=True).click()
        expect(editor.locator('tr[data-approval="weekly #1"]')).to_contain_text("the schedule")
        pages.check("approvals-page")
        guide_shot(editor, "approval-waiting", full_page=True)

        # the owner disagrees: refused with a reason, nothing goes, everyone sees why
        owner.get_by_role("link", name="Approvals", exact=True).click()
        row = owner.locator('tr[data-approval="weekly #1"]')
        row.get_by_label("Reason").fill("The lead story is out of date")
        row.get_by_role("button", name="Refuse weekly #1").click()
        expect(owner.get_by_role("status")).to_have_text(
            "Refused weekly #1: it is not sent. Reason: The lead story is out of date"
        )
        expect(row.locator("p.refused")).to_contain_text(
            f"Refused by {STAFF['owner']} at Wed 25 Nov 2026"
        )
        expect(row).to_contain_text("The lead story is out of date")
        Checked(owner, shots).check("approvals-refused")
        guide_shot(owner, "approval-refused", full_page=True)
        assert daemon.release_approved(SLOT + timedelta(seconds=30)) == []
        assert not list(outbox.glob("*.eml"))
        editor.get_by_role("link", name="Overview", exact=True).click()
        refused = f"weekly #1 was refused by {STAFF['owner']}: The lead story is out of date"
        editor.get_by_role("link", name=refused).click()
        expect(editor.locator("p.refused")).to_contain_text("The lead story is out of date")
        expect(editor.get_by_text("is composed and is not sent until")).to_be_visible()
        pages.check("campaign-refused")
        editor.get_by_role("button", name="Approve this edition").click()
        expect(editor.get_by_role("status")).to_have_text(
            "Approved weekly #1: it goes at its slot as it is now."
        )
        expect(editor.locator("p.approved")).to_contain_text("approved by edu@example.org")
        pages.check("campaign-approved")
        guide_shot(editor, "approval-approved", full_page=True)

        # the daemon's next tick sends it, once
        clock = SLOT + timedelta(minutes=1)
        [ran] = daemon.release_approved(clock)
        assert ran.startswith("sent weekly #1: 3 sent"), ran
        assert daemon.release_approved(clock + timedelta(minutes=1)) == []
        assert len(list(outbox.glob("*.eml"))) == 3
        assert [(e.number, e.status) for e in list_editions(store, "weekly")] == [(1, "sent")]
        assert present(state.get_slot(store, "weekly", SLOT)).status == "sent"
        editor.get_by_role("link", name="Approvals", exact=True).click()
        expect(editor.get_by_text("Nothing waits for approval.")).to_be_visible()
    actions = [(e.actor, e.action) for e in audit.recent(store)]
    assert (STAFF["owner"], "send permission granted") in actions
    assert (STAFF["editor"], "approved") in actions
    assert (STAFF["owner"], "approval refused") in actions
