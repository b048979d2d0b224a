"""The broadcast pages over plain HTTP against a real server (issue 21): a viewer reads and
is refused every write; an editor without the send permission cannot send or schedule by
any request; the CSRF token is checked; every field is validated (hostile input never
reaches a header: subject and preheader one line, the button https:// only, the sender
one of the configured ones); a stale save is refused with the text kept; the live count
is the store's; an owner confirms and sends to exactly the audience, under its sender."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any

import httpx
import pytest

from publisher.sources.collect import collect_all
from publisher.store import audit, broadcasts
from publisher.store.approvals import grant_send
from publisher.store.sink import StoreSink
from publisher.store.staff import find_staff
from tests.admin_support import STAFF, add_accounts, csrf_of, log_in, write_posts
from tests.broadcast_support import (
    BROADCAST_CONFIG,
    LABOR,
    REACHED,
    a_broadcast,
    a_draft,
    seed_people,
    stored,
)
from tests.conftest import FIXED_NOW, present
from tests.web_support import serve


@pytest.fixture
def served(project, store):
    add_accounts(store)
    seed_people(store)
    with serve(project, store, config_text=BROADCAST_CONFIG) as running:
        yield running


def client(served) -> httpx.Client:
    return httpx.Client(base_url=served.url, follow_redirects=True, timeout=30)


def fields(csrf: str, **values: str) -> dict[str, Any]:
    base: dict[str, Any] = {
        "csrf": csrf, "name": "Council vote", "subject": "Vote tomorrow",
        "preheader": "At 7 pm", "sender": "action", "topics": ["labor"],
        "exclude": ["housing"], "body": "The council votes *tomorrow*.",
        "cta_label": "Email your councillor", "cta_url": "https://www.example.org/act",
        "do": "save",
    }  # fmt: skip
    return base | values


def test_a_viewer_reads_and_is_refused_every_write(served, store):
    broadcast = a_broadcast(store)
    with client(served) as http:
        log_in(http, STAFF["viewer"])
        listing = http.get("/admin/broadcasts")
        assert listing.status_code == 200 and "Council vote" in listing.text
        assert "New broadcast" not in listing.text
        page = http.get(f"/admin/broadcasts/{broadcast.id}")
        assert page.status_code == 200 and "Vote tomorrow" in page.text
        assert 'name="subject"' not in page.text and "Send now" not in page.text
        assert http.get("/admin/broadcasts/new").status_code == 403
        csrf = csrf_of(listing.text)  # a valid token of the viewer's session
        version = {"csrf": csrf, "version": "1"}
        writes = {
            "/admin/broadcasts/new": fields(csrf),
            f"/admin/broadcasts/{broadcast.id}": fields(csrf, version="1"),
            f"/admin/broadcasts/{broadcast.id}/test": {"csrf": csrf, "to": STAFF["viewer"]},
            f"/admin/broadcasts/{broadcast.id}/confirm": version,
            f"/admin/broadcasts/{broadcast.id}/send": version,
            f"/admin/broadcasts/{broadcast.id}/schedule": version | {"when": "later"},
            f"/admin/broadcasts/{broadcast.id}/cancel": version,
            f"/admin/broadcasts/{broadcast.id}/ask": version,
            f"/admin/broadcasts/{broadcast.id}/approve": version,
        }
        for path, data in writes.items():
            answer = http.post(path, data=data)
            assert answer.status_code == 403, path
            assert "may not do this" in answer.text
    assert broadcasts.list_broadcasts(store) == [broadcast]


def test_an_editor_without_the_send_permission_cannot_send(served, store):
    broadcast = a_broadcast(store)
    later = (FIXED_NOW + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    with client(served) as http:
        log_in(http, STAFF["editor"])
        page = http.get(f"/admin/broadcasts/{broadcast.id}")
        assert "You may not send" in page.text and "Send now" not in page.text
        csrf = csrf_of(page.text)
        base = {"csrf": csrf, "version": str(broadcast.version)}
        for path, data in {
            "confirm": base | {"when": "now"},
            "send": base,
            "schedule": base | {"when": "later", "send_at": later},
            "confirm ": base | {"when": "later", "send_at": later},
        }.items():
            answer = http.post(f"/admin/broadcasts/{broadcast.id}/{path.strip()}", data=data)
            assert answer.status_code == 403, path
            assert "may not send" in answer.text
    after = stored(store, broadcast.id)
    assert after == broadcast  # not sent, not scheduled, not even touched
    assert not (served.outbox).exists() or not list(served.outbox.rglob("*.eml"))


def test_forms_without_the_token_change_nothing(served, store):
    broadcast = a_broadcast(store)
    with client(served) as http:
        log_in(http, STAFF["owner"])
        for path in ("new", f"{broadcast.id}", f"{broadcast.id}/send", f"{broadcast.id}/cancel"):
            for token in ("", "forged"):
                answer = http.post(f"/admin/broadcasts/{path}", data=fields(token, version="1"))
                assert answer.status_code == 403 and "nothing was changed" in answer.text
    assert broadcasts.list_broadcasts(store) == [broadcast]


HOSTILE = {
    "subject": ("Vote\r\nBcc: everyone@example.net", "one line only"),
    "preheader": ("x\nReply-To: evil@example.net", "one line only"),
    "name": ("", "Name: required"),
    "cta_label": ("Act\r\nnow", "one line only"),
    "cta_url": ("http://www.example.org/act", "complete https:// address"),
    "sender": ("evil", "Choose one of the senders offered"),
    "topics": ("secret-list", "Choose only the topics offered"),
    "body": ("   ", "Write the message"),
    "items": ("no-such-item", "Pick at most"),
}


@pytest.mark.parametrize("field", list(HOSTILE))
def test_every_field_is_checked(served, store, field):
    value, why = HOSTILE[field]
    with client(served) as http:
        log_in(http, STAFF["editor"])
        csrf = csrf_of(http.get("/admin/broadcasts/new").text)
        answer = http.post("/admin/broadcasts/new", data=fields(csrf, **{field: value}))
        assert answer.status_code == 400 and why in answer.text
        assert "not saved" in answer.text
        if field != "name":
            assert "Council vote" in answer.text  # the other fields are kept as typed
    assert broadcasts.list_broadcasts(store) == []


def test_more_refusals_and_a_button_on_javascript(served, store):
    cases = [
        {"cta_url": "javascript:alert(1)"},
        {"cta_url": "https:///nohost"},
        {"cta_label": "", "cta_url": "https://www.example.org/act"},
        {"subject": "x" * 201},
        {"preheader": "tab\there"},
    ]
    with client(served) as http:
        log_in(http, STAFF["editor"])
        csrf = csrf_of(http.get("/admin/broadcasts/new").text)
        for case in cases:
            answer = http.post("/admin/broadcasts/new", data=fields(csrf, **case))
            assert answer.status_code == 400, case
    assert broadcasts.list_broadcasts(store) == []


def test_a_stale_save_is_refused_and_the_text_kept(served, store):
    with client(served) as http:
        log_in(http, STAFF["editor"])
        csrf = csrf_of(http.get("/admin/broadcasts/new").text)
        saved = http.post("/admin/broadcasts/new", data=fields(csrf))
        assert "Saved." in saved.text
        (broadcast,) = broadcasts.list_broadcasts(store)
        assert broadcast.draft.audience == LABOR and broadcast.draft.sender == "action"
        assert broadcast.created_by == STAFF["editor"]
        # someone else saves version 2; this editor's save from version 1 is refused
        broadcasts.update_broadcast(
            store, broadcast.id, a_draft(body="Their words."), version=1, by=STAFF["owner"],
            now=FIXED_NOW,
        )  # fmt: skip
        stale = http.post(
            f"/admin/broadcasts/{broadcast.id}", data=fields(csrf, body="My words.", version="1")
        )
        assert stale.status_code == 409 and "someone else changed this broadcast" in stale.text
        assert "My words." in stale.text and 'name="version" value="2"' in stale.text
        assert stored(store, broadcast.id).draft.body == "Their words."
        again = http.post(
            f"/admin/broadcasts/{broadcast.id}", data=fields(csrf, body="My words.", version="2")
        )
        assert again.status_code == 200 and "Saved." in again.text
    assert stored(store, broadcast.id).draft.body == "My words."
    actions = [row.action for row in audit.recent(store, limit=10)]
    assert actions.count("broadcast-save") == 2


def test_the_count_is_the_stores_and_the_button_without_script(served, store):
    expected = broadcasts.audience_count(store, LABOR, now=FIXED_NOW)
    assert expected == len(REACHED)
    with client(served) as http:
        log_in(http, STAFF["editor"])
        answer = http.get("/admin/broadcasts/count?topics=labor&exclude=housing&topics=nope")
        assert answer.json() == {"count": expected, "text": f"{expected} people"}
        everyone = http.get("/admin/broadcasts/count").json()["count"]
        assert everyone == broadcasts.audience_count(store, broadcasts.Audience(), now=FIXED_NOW)
        csrf = csrf_of(http.get("/admin/broadcasts/new").text)
        counted = http.post("/admin/broadcasts/new", data=fields(csrf, do="count"))
        assert f'<strong id="reach" aria-live="polite">{expected} people</strong>' in counted.text
    assert broadcasts.list_broadcasts(store) == []  # counting saves nothing


def test_an_owner_confirms_and_it_goes_to_the_audience_under_its_sender(served, store):
    broadcast = a_broadcast(store)
    with client(served) as http:
        log_in(http, STAFF["owner"])
        page = http.get(f"/admin/broadcasts/{broadcast.id}")
        csrf = csrf_of(page.text)
        base = {"csrf": csrf, "version": str(broadcast.version)}
        question = http.post(f"/admin/broadcasts/{broadcast.id}/confirm", data=base)
        assert question.status_code == 200
        assert "Send “Vote tomorrow” to 2 people following labor, except housing?" in question.text
        assert stored(store, broadcast.id).status == "draft"  # asked only
        stale = http.post(f"/admin/broadcasts/{broadcast.id}/send", data=base | {"version": "9"})
        assert stale.status_code == 409
        sent = http.post(f"/admin/broadcasts/{broadcast.id}/send", data=base)
        assert sent.status_code == 200
        served.wait_for_jobs(1)
        shown = http.get(f"/admin/broadcasts/{broadcast.id}")
        assert '<strong class="status">sent</strong>' in shown.text
        assert "outcomes and numbers" in shown.text
        assert f'<span class="counts">{len(REACHED)} sent</span>' in shown.text
        listing = http.get("/admin/broadcasts")
        assert f'<span class="outcome">{len(REACHED)} sent</span>' in listing.text
    mails = [
        message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in served.outbox.rglob("*.eml")
    ]
    assert sorted(str(m["To"]) for m in mails) == sorted(REACHED)
    assert {str(m["From"]) for m in mails} == {"Local Progress Action <action@example.org>"}
    assert {str(m["Subject"]) for m in mails} == {"Vote tomorrow"}
    actions = [row.action for row in audit.recent(store, limit=10)]
    assert "broadcast-send" in actions


def test_send_now_says_at_once_why_a_broadcast_cannot_go_and_claims_nothing(served, store):
    """Send now is claimed before the answer (deliver.broadcasts.send_broadcast_now, as the
    API's): a draft that cannot go is refused on the page, not in a background job."""
    broadcast = a_broadcast(store, sender="gone")  # a sender removed from the configuration
    with client(served) as http:
        log_in(http, STAFF["owner"])
        csrf = csrf_of(http.get(f"/admin/broadcasts/{broadcast.id}").text)
        base = {"csrf": csrf, "version": str(broadcast.version)}
        refused = http.post(f"/admin/broadcasts/{broadcast.id}/send", data=base)
        assert refused.status_code == 409
        assert "the sender &#39;gone&#39; is not configured" in refused.text
    assert stored(store, broadcast.id).status == "draft"
    assert not list(served.outbox.rglob("*.eml"))
    assert "broadcast-send" not in [row.action for row in audit.recent(store, limit=10)]


def test_schedule_in_the_future_only_then_cancel(served, store):
    broadcast = a_broadcast(store)
    with client(served) as http:
        log_in(http, STAFF["owner"])
        csrf = csrf_of(http.get(f"/admin/broadcasts/{broadcast.id}").text)
        base = {"csrf": csrf, "version": str(broadcast.version), "when": "later"}
        past = http.post(
            f"/admin/broadcasts/{broadcast.id}/schedule",
            data=base | {"send_at": "2026-11-01T09:00"},
        )
        assert past.status_code == 400
        question = http.post(
            f"/admin/broadcasts/{broadcast.id}/confirm", data=base | {"send_at": "2026-12-01T18:30"}
        )
        assert "Schedule “Vote tomorrow” for" in question.text and "2 people" in question.text
        done = http.post(
            f"/admin/broadcasts/{broadcast.id}/schedule",
            data=base | {"send_at": "2026-12-01T18:30"},
        )
        assert "Scheduled" in done.text
        scheduled = stored(store, broadcast.id)
        assert scheduled.status == "scheduled"
        assert scheduled.send_at is not None
        assert scheduled.send_at.isoformat() == "2026-12-01T23:30:00+00:00"  # 18:30 New York
        cancelled = http.post(f"/admin/broadcasts/{broadcast.id}/cancel", data={"csrf": csrf})
        assert "cancelled" in cancelled.text
    assert stored(store, broadcast.id).status == "draft"
    actions = [row.action for row in audit.recent(store, limit=10)]
    assert {"broadcast-schedule", "broadcast-cancel"} <= set(actions)


def test_items_are_searched_and_picked(served, store, project):
    write_posts(project)
    collect_all(served.config, StoreSink(store), now=FIXED_NOW)
    with client(served) as http:
        log_in(http, STAFF["editor"])
        csrf = csrf_of(http.get("/admin/broadcasts/new").text)
        found = http.post("/admin/broadcasts/new", data=fields(csrf, do="search", search="nurses"))
        assert found.status_code == 200 and "Nurses win their strike" in found.text
        assert "Rent board" not in found.text
        assert broadcasts.list_broadcasts(store) == []  # searching saves nothing
        (item_id,) = re.findall(r'name="items" value="([^"]+)"', found.text)
        saved = http.post("/admin/broadcasts/new", data=fields(csrf, items=item_id))
        assert "Saved." in saved.text
        assert re.search(rf'name="items" value="{re.escape(item_id)}" checked', saved.text)
        (broadcast,) = broadcasts.list_broadcasts(store)
        assert broadcast.draft.items == (item_id,)
        page = http.get(f"/admin/broadcasts/{broadcast.id}/preview")
        assert "Nurses win their strike" in page.text  # the item under the message


@pytest.fixture
def served_with_approval(project, store):
    add_accounts(store)
    seed_people(store)
    config = BROADCAST_CONFIG + "approval:\n  broadcasts: true\n"
    with serve(project, store, config_text=config) as running:
        yield running


def test_approval_asked_not_self_given_and_voided_by_an_edit(served_with_approval, store):
    served, broadcast = served_with_approval, a_broadcast(store)
    path = f"/admin/broadcasts/{broadcast.id}"
    with client(served) as http:
        log_in(http, STAFF["owner"])
        csrf = csrf_of(http.get(path).text)
        base = {"csrf": csrf, "version": str(broadcast.version)}
        refused = http.post(f"{path}/confirm", data=base | {"when": "now"})
        assert refused.status_code == 409 and "waits for approval" in refused.text
        assert http.post(f"{path}/send", data=base).status_code == 409
        asked = http.post(f"{path}/ask", data=base)
        assert "Approval asked" in asked.text
        own = http.post(f"{path}/approve", data=base)  # the owner asked: not theirs to give
        assert own.status_code == 403 and "Not approved" in own.text
        unsaid = http.post(f"{path}/refuse", data=base | {"reason": "  "})
        assert unsaid.status_code == 400 and "Say why it is refused." in unsaid.text
        own = http.post(f"{path}/refuse", data=base | {"reason": "no"})  # nor to refuse
        assert own.status_code == 403 and "Not refused" in own.text
    with client(served) as http:
        log_in(http, STAFF["editor"])  # edited it last, and has no send permission
        csrf = csrf_of(http.get(path).text)
        answer = http.post(f"{path}/approve", data={"csrf": csrf, "version": "1"})
        assert answer.status_code == 403
    editor = present(find_staff(store, STAFF["editor"]))
    grant_send(store, editor.id, by=STAFF["owner"], now=FIXED_NOW)
    with client(served) as http:
        log_in(http, STAFF["editor"])
        csrf = csrf_of(http.get(path).text)
        still = http.post(f"{path}/approve", data={"csrf": csrf, "version": "1"})
        assert still.status_code == 403  # they changed it last
    # the owner edits it (now they changed it last); the editor approves that version
    with client(served) as http:
        log_in(http, STAFF["owner"])
        csrf = csrf_of(http.get(path).text)
        http.post(path, data=fields(csrf, version="1", body="Changed by the owner."))
        assert stored(store, broadcast.id).version == 2
    with client(served) as http:
        log_in(http, STAFF["editor"])
        csrf = csrf_of(http.get(path).text)
        approved = http.post(f"{path}/approve", data={"csrf": csrf, "version": "2"})
        assert "Approved: it may go." in approved.text
    with client(served) as http:  # an edit after the approval voids it
        log_in(http, STAFF["owner"])
        csrf = csrf_of(http.get(path).text)
        http.post(path, data=fields(csrf, version="2", body="Changed again."))
        answer = http.post(f"{path}/send", data={"csrf": csrf, "version": "3"})
        assert answer.status_code == 409 and "waits for approval" in answer.text
    assert stored(store, broadcast.id).status == "draft"
    actions = [row.action for row in audit.recent(store, limit=30)]
    assert {"approval asked", "approved", "approval not allowed", "approval voided"} <= set(actions)


def test_a_send_that_stopped_is_resumed_from_the_page(served, store):
    broadcast = a_broadcast(store)
    # a send that stopped right after its claim (the process was killed): `sending`
    assert broadcasts.claim_broadcast(store, broadcast.id, by=STAFF["owner"], now=FIXED_NOW)
    path = f"/admin/broadcasts/{broadcast.id}"
    with client(served) as http:
        log_in(http, STAFF["editor"])
        csrf = csrf_of(http.get(path).text)
        refused = http.post(f"{path}/resume", data={"csrf": csrf})
        assert refused.status_code == 403 and "may not send" in refused.text
    with client(served) as http:
        log_in(http, STAFF["owner"])
        page = http.get(path)
        assert "Sending, or stopped" in page.text
        resumed = http.post(f"{path}/resume", data={"csrf": csrf_of(page.text)})
        assert "Resuming" in resumed.text
        served.wait_for_jobs(1)
        assert stored(store, broadcast.id).status == "sent"
        again = http.post(f"{path}/resume", data={"csrf": csrf_of(page.text)})
        assert again.status_code == 409 and "Nothing to resume" in again.text
    mails = [
        message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in served.outbox.rglob("*.eml")
    ]
    assert sorted(str(m["To"]) for m in mails) == sorted(REACHED)  # each once
    assert "broadcast-resume" in [row.action for row in audit.recent(store, limit=10)]


def test_a_test_goes_to_staff_or_configured_test_addresses_only(project, store):
    add_accounts(store)
    seed_people(store)
    config = BROADCAST_CONFIG + "test_addresses: [press-desk@example.org]\n"
    with serve(project, store, config_text=config) as running, client(running) as http:
        broadcast = a_broadcast(store)
        log_in(http, STAFF["editor"])
        page = http.get(f"/admin/broadcasts/{broadcast.id}")
        assert "press-desk@example.org" in page.text  # offered beside the staff
        csrf = csrf_of(page.text)
        path = f"/admin/broadcasts/{broadcast.id}/test"
        refused = http.post(path, data={"csrf": csrf, "to": "someone@example.net"})
        assert refused.status_code == 400
        sent = http.post(path, data={"csrf": csrf, "to": ["press-desk@example.org"]})
        assert sent.status_code == 200, sent.text
        mails = [
            message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in running.outbox.rglob("*.eml")
        ]
    assert [str(m["To"]) for m in mails] == ["press-desk@example.org"]
    assert str(mails[0]["Subject"]) == "[Test] Vote tomorrow"
    assert stored(store, broadcast.id).status == "draft"
