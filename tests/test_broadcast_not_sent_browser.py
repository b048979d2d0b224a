"""A real browser through /admin's "Not sent" answer (409) when send now is refused, reached
the way staff reach it, on SQLite and PostgreSQL: the approval rule holds a broadcast
nobody approved yet (the owner clicks "Send now…"), and a broadcast already claimed by
another tab (two pages confirmed the same send; the second "Yes, send it now" is refused).
Each time the page says why, nothing more is sent, and its link leads back to the
overview. axe-core on every page."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from playwright.sync_api import expect

from publisher.deliver import approval
from publisher.store.staff import find_staff
from tests.admin_support import STAFF, add_accounts
from tests.broadcast_support import BROADCAST_CONFIG, REACHED, a_broadcast, seed_people, stored
from tests.conftest import FIXED_NOW, present
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401 - the fixture
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser

APPROVAL_CONFIG = BROADCAST_CONFIG + "approval:\n  broadcasts: true\n"


def recipients(outbox: Path) -> list[str]:
    return sorted(
        str(message_from_bytes(path.read_bytes(), policy=policy.default)["To"])
        for path in outbox.rglob("*.eml")
    )


def refused_send(page, button: str) -> None:
    """Click `button` and see the 409 "Not sent" page it answers."""
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name=button).click()
    assert answer.value.status == 409
    expect(page.get_by_role("heading", level=1, name="Not sent")).to_be_visible()


def approve_by_two(store, broadcast_id: int) -> None:
    """The editor (who drafted it) asks; the owner approves: the rule is met."""
    current = present(approval.broadcast_version(store, broadcast_id))
    editor = present(find_staff(store, STAFF["editor"]))
    owner = present(find_staff(store, STAFF["owner"]))
    approval.ask(store, current, editor, now=FIXED_NOW, ip=None)
    approval.approve(store, current, owner, now=FIXED_NOW, ip=None)


def test_send_now_refused_says_why_and_leads_back(browser, project, store, tmp_path):  # noqa: F811
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    seed_people(store)
    alert = a_broadcast(store)  # drafted by the editor
    first, second = new_page(browser), new_page(browser)
    with serve(project, store, config_text=APPROVAL_CONFIG) as served:
        pages = Checked(first, shots)
        log_in(first, served.url, STAFF["owner"])
        expect(first.get_by_role("heading", name="Overview")).to_be_visible()
        # the approval rule: nobody approved it yet, so send now is refused
        first.get_by_role("link", name="Broadcasts").click()
        first.get_by_role("link", name="Council vote").click()
        expect(first.locator("p.approval-state")).to_contain_text("Not approved yet")
        refused_send(first, "Send now…")
        expect(first.get_by_role("main")).to_contain_text("waits for approval")
        pages.check("not-sent-approval")
        first.get_by_role("link", name="Back to the overview").click()
        expect(first.get_by_role("heading", name="Overview")).to_be_visible()
        assert stored(store, alert.id).status == "draft"
        assert recipients(served.outbox) == []

        # approved, then confirmed in two tabs: the first sends, the second is refused
        approve_by_two(store, alert.id)
        log_in(second, served.url, STAFF["owner"])
        expect(second.get_by_role("heading", name="Overview")).to_be_visible()
        question = re.compile("Send “Vote tomorrow” to")
        for page in (first, second):
            page.goto(f"{served.url}/admin/broadcasts/{alert.id}")
            page.get_by_role("button", name="Send now…").click()
            expect(page.get_by_role("heading", name=question)).to_be_visible()
        first.get_by_role("button", name="Yes, send it now").click()
        expect(first.get_by_role("status")).to_be_visible()
        refused_send(second, "Yes, send it now")
        expect(second.get_by_role("main")).to_contain_text(
            re.compile(r"This broadcast is (sending|sent)\.")
        )
        Checked(second, shots).check("not-sent-claimed")
        second.get_by_role("link", name="Back to the overview").click()
        expect(second.get_by_role("heading", name="Overview")).to_be_visible()
        # the first tab's send finishes after its answer: everyone reached once, no more
        served.wait_for_jobs(1)
        first.goto(f"{served.url}/admin/broadcasts/{alert.id}")
        expect(first.locator("strong.status")).to_have_text("sent")
        assert recipients(served.outbox) == sorted(REACHED)
