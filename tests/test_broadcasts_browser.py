"""A real browser (Debian's Chromium via Playwright) through the broadcast pages against a
real server, on SQLite and PostgreSQL (issue 21): an editor drafts an action alert to one
topic (the live count follows the audience), previews it at desktop and phone width and
as text, sends a test ("[Test] ..." in the outbox) and cannot send it; an owner schedules
it (a final confirmation naming the people and the audience), cancels, reschedules; at its
time (a fixed clock) it goes to exactly the followers of that topic minus the excluded,
paused and suppressed, each once, under the chosen sender. axe-core on every page."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from playwright.sync_api import expect

from publisher.deliver.broadcasts import send_due_broadcasts
from publisher.store import audit, broadcasts
from publisher.store.approvals import grant_send
from publisher.store.staff import find_staff
from tests.admin_support import STAFF, add_accounts
from tests.broadcast_support import BROADCAST_CONFIG, REACHED, a_broadcast, seed_people, stored
from tests.conftest import FIXED_NOW, present
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401 - the fixture
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser

BODY = "## Be there\n\nThe council votes on the rent freeze *tomorrow* at 7 pm."


def mails(outbox: Path) -> list:
    return [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(outbox.rglob("*.eml"))
    ]


def draft_alert(page, url: str) -> None:
    page.goto(f"{url}/admin/broadcasts")
    page.get_by_role("link", name="New broadcast").click()
    page.get_by_label("Name").fill("Council vote")
    page.get_by_label("Subject").fill("Vote tomorrow")
    page.get_by_label("Preheader").fill("The council decides at 7 pm")
    page.get_by_label("Sender").select_option("action")
    reach = page.locator("#reach")
    expect(reach).to_have_text("4 people")  # everyone: ana, bo, cy, flo (di paused, ed suppressed)
    page.get_by_role("group", name="Send to people following").get_by_label("Labor").check()
    expect(reach).to_have_text("3 people")  # ana, bo, flo (flo chose no topic: everything)
    page.get_by_role("group", name="Leave out people following").get_by_label("Housing").check()
    expect(reach).to_have_text(f"{len(REACHED)} people")
    page.get_by_label("Body").fill(BODY)
    page.get_by_label("Button label").fill("Email your councillor")
    page.get_by_label("Button address").fill("https://www.example.org/act")


def test_an_alert_drafted_tested_scheduled_and_sent_at_its_time(
    browser,  # noqa: F811
    project,
    store,
    tmp_path,
    guide_shot,
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    seed_people(store)
    editor, owner = new_page(browser), new_page(browser)
    with serve(project, store, config_text=BROADCAST_CONFIG) as served:
        pages = Checked(editor, shots)
        log_in(editor, served.url, STAFF["editor"])
        expect(editor.get_by_role("heading", name="Overview")).to_be_visible()
        editor.get_by_role("link", name="Broadcasts").click()
        expect(editor.get_by_role("heading", name="Broadcasts")).to_be_visible()
        pages.check("broadcasts-empty")
        draft_alert(editor, served.url)
        guide_shot(editor, "broadcasts-editor", full_page=True)
        pages.check("broadcast-new")
        editor.get_by_role("button", name="Save").click()
        expect(editor.get_by_role("status")).to_have_text("Saved.")
        (alert,) = broadcasts.list_broadcasts(store)
        assert alert.draft.audience.topics == ("labor",)
        assert alert.draft.audience.exclude == ("housing",)
        # the preview at two widths and as text
        for name in ("Preview at desktop width", "Preview at phone width"):
            frame = editor.frame_locator(f'iframe[title="{name}"]')
            expect(frame.get_by_text("The council votes on the rent freeze")).to_be_visible()
        editor.get_by_text("Text part").click()
        expect(editor.locator("pre.text-part")).to_contain_text("rent freeze")
        expect(editor.locator("p.may-not-send")).to_contain_text("You may not send")
        expect(editor.get_by_role("button", name="Send now…")).to_have_count(0)
        guide_shot(editor, "broadcasts-preview", full_page=True)
        pages.check("broadcast-saved")
        # a test to the editor: marked as a test, and nothing of the real send happens
        editor.get_by_role("button", name="Send test").click()
        expect(editor.get_by_role("status")).to_contain_text("The test was sent")
        (test,) = mails(served.outbox)
        assert str(test["Subject"]) == "[Test] Vote tomorrow"
        assert str(test["To"]) == STAFF["editor"]
        for old in served.outbox.rglob("*.eml"):
            old.unlink()

        # the owner schedules it, cancels, reschedules
        checked = Checked(owner, shots)
        log_in(owner, served.url, STAFF["owner"])
        expect(owner.get_by_role("heading", name="Overview")).to_be_visible()
        owner.goto(f"{served.url}/admin/broadcasts/{alert.id}")
        owner.get_by_label("Send at").fill("2026-11-25T18:00")
        owner.get_by_role("button", name="Schedule…").click()
        question = owner.get_by_role("heading", name="Schedule “Vote tomorrow”")
        expect(question).to_contain_text(
            f"to {len(REACHED)} people following labor, except housing?"
        )
        guide_shot(owner, "broadcasts-confirm")
        checked.check("broadcast-confirm")
        owner.get_by_role("button", name="Yes, schedule it").click()
        expect(owner.get_by_role("status")).to_contain_text("Scheduled")
        expect(owner.locator("strong.status")).to_have_text("scheduled")
        owner.get_by_role("button", name="Cancel the schedule").click()
        expect(owner.locator("strong.status")).to_have_text("draft")
        owner.get_by_label("Send at").fill("2026-11-25T19:00")
        owner.get_by_role("button", name="Schedule…").click()
        owner.get_by_role("button", name="Yes, schedule it").click()
        expect(owner.locator("span.send-at")).to_contain_text("25 Nov 2026, 19:00")
        checked.check("broadcast-scheduled")
        scheduled = stored(store, alert.id)
        assert scheduled.status == "scheduled"
        at = scheduled.send_at
        assert at is not None and at == FIXED_NOW.replace(hour=0) + timedelta(days=1)

        # its time comes (the fixed clock): the daemon's poll sends what is due, once
        assert send_due_broadcasts(served.config, store, now=at - timedelta(minutes=1)).sent == []
        report = send_due_broadcasts(served.config, store, now=at)
        assert report.sent == [(alert.id, "sent")]
        assert send_due_broadcasts(served.config, store, now=at).sent == []  # nobody twice
        sent = mails(served.outbox)
        assert sorted(str(m["To"]) for m in sent) == sorted(REACHED)
        assert {str(m["From"]) for m in sent} == {"Local Progress Action <action@example.org>"}
        assert {str(m["Reply-To"]) for m in sent} == {"organisers@example.org"}
        owner.goto(f"{served.url}/admin/broadcasts")
        row = owner.locator(f'tr[data-broadcast="{alert.id}"]')
        expect(row.locator("td.status")).to_have_text("sent")
        row.get_by_role("link", name="Outcomes and numbers").click()
        expect(owner.get_by_role("heading", level=1)).to_be_visible()
        checked.check("broadcast-edition")
    actions = [row.action for row in audit.recent(store, limit=20)]
    for step in ("broadcast-save", "broadcast-test", "broadcast-schedule", "broadcast-cancel"):
        assert step in actions, step


APPROVAL_CONFIG = BROADCAST_CONFIG + "approval:\n  broadcasts: true\n"


def test_a_second_staff_member_approves_and_it_goes_at_its_time(
    browser,  # noqa: F811
    project,
    store,
    tmp_path,
    guide_shot,
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    seed_people(store)
    editor_account = present(find_staff(store, STAFF["editor"]))
    grant_send(store, editor_account.id, by=STAFF["owner"], now=FIXED_NOW)
    alert = a_broadcast(store)  # drafted by the editor
    editor, owner = new_page(browser), new_page(browser)
    with serve(project, store, config_text=APPROVAL_CONFIG) as served:
        pages = Checked(editor, shots)
        log_in(editor, served.url, STAFF["editor"])
        expect(editor.get_by_role("heading", name="Overview")).to_be_visible()
        editor.goto(f"{served.url}/admin/broadcasts/{alert.id}")
        expect(editor.locator("p.approval-state")).to_contain_text("Not approved yet")
        editor.get_by_label("Send at").fill("2026-11-25T19:00")
        editor.get_by_role("button", name="Schedule…").click()
        expect(editor.locator("section.confirm")).to_contain_text(
            "It goes only once a second staff member has approved it."
        )
        editor.get_by_role("button", name="Yes, schedule it").click()
        expect(editor.locator("strong.status")).to_have_text("scheduled")
        editor.get_by_role("button", name="Ask for approval").click()
        expect(editor.get_by_role("status")).to_contain_text("Approval asked")
        expect(editor.get_by_role("button", name="Approve")).to_have_count(0)  # not their own
        pages.check("broadcast-asked")
        at = stored(store, alert.id).send_at
        assert at is not None
        # its time comes before anyone approved: it does not go, it stays scheduled
        held = send_due_broadcasts(served.config, store, now=at)
        assert held.sent == [] and len(held.problems) == 1
        assert stored(store, alert.id).status == "scheduled"
        assert mails(served.outbox) == []

        checked = Checked(owner, shots)
        log_in(owner, served.url, STAFF["owner"])
        expect(owner.get_by_role("heading", name="Overview")).to_be_visible()
        owner.get_by_role("link", name="Approvals").click()
        owner.get_by_role("link", name="Approve Council vote on its page").click()
        expect(owner.locator("p.approval-detail")).to_contain_text(
            f"Approval asked by {STAFF['editor']}"
        )
        guide_shot(owner, "broadcasts-approve")
        checked.check("broadcast-approve")
        # the owner refuses it first, saying why: it does not go, the editor sees why
        owner.get_by_label("Reason").fill("Name the councillor's office")
        owner.get_by_role("button", name="Refuse").click()
        expect(owner.get_by_role("status")).to_contain_text("Refused: it does not go")
        expect(owner.locator("p.approval-detail")).to_contain_text(
            f"Refused by {STAFF['owner']} at Wed 25 Nov 2026, 07:00 EST: "
            "Name the councillor's office"
        )
        checked.check("broadcast-refused")
        refused = send_due_broadcasts(served.config, store, now=at)
        assert refused.sent == [] and mails(served.outbox) == []
        editor.reload()
        expect(editor.locator("p.approval-detail")).to_contain_text("Name the councillor's office")
        editor.get_by_role("button", name="Ask for approval").click()
        expect(editor.get_by_role("status")).to_contain_text("Approval asked")
        owner.reload()
        owner.get_by_role("button", name="Approve").click()
        expect(owner.get_by_role("status")).to_contain_text("Approved")
        expect(owner.locator("p.approval-detail")).to_contain_text(f"Approved by {STAFF['owner']}")
        checked.check("broadcast-approved")

        report = send_due_broadcasts(served.config, store, now=at + timedelta(minutes=1))
        assert report.sent == [(alert.id, "sent")]
        sent = mails(served.outbox)
        assert sorted(str(m["To"]) for m in sent) == sorted(REACHED)
        assert {str(m["From"]) for m in sent} == {"Local Progress Action <action@example.org>"}
    actions = [row.action for row in audit.recent(store, limit=20)]
    assert {"approval asked", "approved", "approval refused", "broadcast-schedule"} <= set(actions)


def test_the_broadcast_pages_fit_a_phone(browser, project, store, tmp_path):  # noqa: F811
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    seed_people(store)
    long = "x" * 120
    alert = a_broadcast(store, name=f"Council {long}", subject=f"Vote {long}")
    page = new_page(browser, width=375)
    pages = Checked(page, shots)
    with serve(project, store, config_text=BROADCAST_CONFIG) as served:
        log_in(page, served.url, STAFF["owner"])
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        for path in ("broadcasts", "broadcasts/new", f"broadcasts/{alert.id}"):
            page.goto(f"{served.url}/admin/{path}")
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            assert page.evaluate("document.scrollingElement.scrollWidth") <= 375, path
            pages.check(path.replace("/", "-"))
        page.get_by_role("button", name="Send now…").click()
        expect(page.get_by_role("heading", name="Send “Vote")).to_be_visible()
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
        pages.check("broadcast-confirm-narrow")
