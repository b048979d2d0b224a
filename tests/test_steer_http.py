"""The campaign page's steering over plain HTTP against a real server (issue 21): staff
without the send permission are refused by every direct POST (nothing changes); an owner's
"Send now" names the edition, the count (paused and suppressed left out) and the audience,
then sends through the pipeline in the background, each person once, and the next slot
finds nothing new; skip, move and undo reach the store and the audit log."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from publisher.pipeline import run_campaign_slot
from publisher.store import audit
from publisher.store.editions import list_editions
from publisher.store.slot_overrides import get_override
from publisher.web.admin import steer
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts, csrf_of, log_in
from tests.conftest import FIXED_NOW, present
from tests.steer_support import REACHED, collect, outbox_recipients, seed
from tests.web_support import serve

NEXT_SLOT = FIXED_NOW.replace(hour=14)  # daily 09:00 New York: 14:00 UTC
ROUTES = ["send-now", "send/resume", "send/uncertain", "slot/skip", "slot/move", "slot/undo"]


@pytest.fixture
def served(project, store):
    add_accounts(store)
    seed(project, store)
    with serve(project, store, config_text=ADMIN_CONFIG) as running:
        collect(running, store)
        yield running


def client(served) -> httpx.Client:
    return httpx.Client(base_url=served.url, follow_redirects=True, timeout=30)


def wait_for_send(name: str = "weekly") -> None:
    """The background send runs in this process (the server's thread): wait for it."""
    thread = steer._SENDS.get(name)
    if thread is not None:
        thread.join(60)
        assert not thread.is_alive()


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_staff_without_the_send_permission_are_refused_by_every_post(served, store, role):
    with client(served) as http:
        log_in(http, STAFF[role])
        page = http.get("/admin/campaigns/weekly")
        assert "Send the next edition now" not in page.text
        assert "needs the permission to send" in page.text
        token = csrf_of(page.text)
        form = {"csrf": token, "number": "1", "to": "2026-11-25T10:00", "checked": "yes",
                "slot": NEXT_SLOT.isoformat()}  # fmt: skip
        for route in ROUTES:
            answer = http.post(f"/admin/campaigns/weekly/{route}", data=form)
            assert answer.status_code == 403, route
            assert "may not send" in answer.text or "may not do this" in answer.text
        assert http.get("/admin/campaigns/weekly/send-now").status_code == 403
    assert list_editions(store, "weekly") == []
    assert get_override(store, "weekly", NEXT_SLOT) is None
    assert not list((served.outbox).rglob("*.eml"))
    assert not {"send now", "skip slot", "move slot"} & {e.action for e in audit.recent(store)}


def test_send_now_confirms_the_count_then_sends_each_person_once(served, store):
    with client(served) as http:
        log_in(http, STAFF["owner"])
        page = http.get("/admin/campaigns/weekly/send-now")
        assert "Send Weekly #1 to 3 people following labor, housing?" in page.text
        assert list_editions(store, "weekly") == []  # nothing composed by looking
        answer = http.post(
            "/admin/campaigns/weekly/send-now", data={"csrf": csrf_of(page.text), "number": "1"}
        )
        assert "Sending #1 now" in answer.text
        wait_for_send()
        campaign = http.get("/admin/campaigns/weekly").text
        assert '#1</a>, <span class="outcome">sent</span>' in campaign
        # a second confirmation of the same number (a reload, a double click) sends nothing
        again = http.post(
            "/admin/campaigns/weekly/send-now", data={"csrf": csrf_of(campaign), "number": "1"}
        )
        assert "is no longer the next edition" in again.text
    wait_for_send()
    assert outbox_recipients(served.outbox) == REACHED
    [edition] = list_editions(store, "weekly")
    assert edition.status == "sent"
    # the next scheduled slot finds nothing new: nobody gets the same item twice
    outcome = run_campaign_slot(served.config, store, "weekly", NEXT_SLOT, now=NEXT_SLOT)
    assert outcome.status == "skipped" and outcome.detail.startswith("nothing new")
    assert outbox_recipients(served.outbox) == REACHED
    actions = [e.action for e in audit.recent(store)]
    assert actions[:2] == ["send now finished", "send now"]


def test_skip_move_and_undo_reach_the_store_and_the_audit_log(served, store):
    with client(served) as http:
        log_in(http, STAFF["owner"])
        page = http.get("/admin/campaigns/weekly").text
        answer = http.post("/admin/campaigns/weekly/slot/skip", data={"csrf": csrf_of(page)})
        assert "Skipped: Wed 25 Nov 2026 09:00 EST: skipped" in answer.text
        assert present(get_override(store, "weekly", NEXT_SLOT)).action == "skip"
        answer = http.post(
            "/admin/campaigns/weekly/slot/move",
            data={"csrf": csrf_of(page), "to": "2026-11-25T16:45"},
        )
        assert "moved to Wed 25 Nov 2026 16:45 EST" in answer.text
        moved = present(get_override(store, "weekly", NEXT_SLOT))
        assert moved.moved_to == FIXED_NOW.replace(hour=21, minute=45)
        refused = http.post(
            "/admin/campaigns/weekly/slot/move",
            data={"csrf": csrf_of(page), "to": "2026-11-27T08:00"},
        )
        assert "Nothing was done: the new time must be before the following slot" in refused.text
        answer = http.post(
            "/admin/campaigns/weekly/slot/undo",
            data={"csrf": csrf_of(page), "slot": NEXT_SLOT.isoformat()},
        )
        assert "Undone" in answer.text
    assert get_override(store, "weekly", NEXT_SLOT) is None
    actions = [e.action for e in audit.recent(store)][:3]
    assert actions == ["undo slot change", "move slot", "skip slot"]
    assert FIXED_NOW + timedelta(hours=2) == NEXT_SLOT
