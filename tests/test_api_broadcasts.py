"""Broadcasts through the API on the app `publisher serve` runs (uvicorn in a thread), on
SQLite and PostgreSQL, every answer validated against the served OpenAPI document: written
and saved over a version with the editor's checks, previewed, counted, tested to staff only;
scheduled, cancelled and sent with the send scope only; a send reaches exactly its audience
once and honours the approval rule (refused, then allowed once a second staff member
approves)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from publisher.deliver import approval
from publisher.store import audit, broadcasts
from publisher.store.staff import find_staff
from tests.admin_support import STAFF, add_accounts
from tests.api_support import api_server, make_key
from tests.broadcast_support import (
    BROADCAST_CONFIG,
    LABOR,
    REACHED,
    a_draft,
    seed_people,
    stored,
)
from tests.conftest import FIXED_NOW, present

DRAFT: dict[str, object] = {
    "name": "Council vote", "subject": "Vote tomorrow", "preheader": "The council decides at 7 pm",
    "sender": "action", "topics": ["labor"], "exclude": ["housing"],
    "body": "## Be there\n\nThe council votes *tomorrow*.",
    "cta_label": "Email your councillor", "cta_url": "https://www.example.org/act",
}  # fmt: skip
ACTOR = "api key: Organising tool"


def mails(outbox: Path) -> list[EmailMessage]:
    return [
        message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted(outbox.rglob("*.eml"))
    ]


def test_broadcasts_are_written_checked_read_previewed_and_counted(project, store):
    seed_people(store)
    with api_server(project, store, config_text=BROADCAST_CONFIG) as (served, api):
        key = make_key(store, served, "campaigns:read", "campaigns:write", name="Organising tool")
        made = api.call("POST", "/broadcasts", key, json=DRAFT)
        assert made.status_code == 201, made.text
        b = made.json()
        assert (b["status"], b["version"], b["updated_by"]) == ("draft", 1, ACTOR)
        assert b["url"].endswith(f"/api/v1/broadcasts/{b['id']}")
        path = f"/broadcasts/{b['id']}"
        assert api.call("GET", path, key).json()["subject"] == "Vote tomorrow"
        saved = api.call("PUT", path, key, json=DRAFT | {"subject": "Vote today", "version": 1})
        assert saved.status_code == 200 and saved.json()["version"] == 2
        stale = api.call("PUT", path, key, json=DRAFT | {"version": 1})
        assert stale.status_code == 409 and "version" in stale.json()["detail"]
        assert stored(store, b["id"]).draft.subject == "Vote today"
        preview = api.call("GET", path + "/preview", key).json()
        assert preview["subject"] == "Vote today"
        assert "The council votes <em>tomorrow</em>" in preview["html"]
        assert "Email your councillor" in preview["text"]
        count = api.call("GET", path + "/audience", key).json()
        assert count == {"topics": ["labor"], "exclude": ["housing"], "count": len(REACHED)}
        assert count["count"] == broadcasts.audience_count(store, LABOR, now=FIXED_NOW)
        assert api.call("GET", "/broadcasts/999", key).status_code == 404
    actions = [e.action for e in audit.recent(store) if e.actor == ACTOR]
    assert {"api: broadcast created", "api: broadcast saved"} <= set(actions)


def test_the_editors_checks_refuse_what_must_not_go_out(project, store):
    with api_server(project, store, config_text=BROADCAST_CONFIG) as (served, api):
        key = make_key(store, served, "campaigns:write")
        refusals: dict[str, dict[str, object]] = {
            "subject": {"subject": "Vote\r\nBcc: everyone@example.net"},
            "sender": {"sender": "nobody-configured"},
            "topics": {"topics": ["cats"]},
            "cta_url": {"cta_url": "http://www.example.org/act"},
            "items": {"items": ["no-such-item"]},
        }
        for field, change in refusals.items():
            answer = api.call("POST", "/broadcasts", key, json=DRAFT | change)
            assert answer.status_code == 422, (field, answer.text)
            assert field in [e["field"] for e in answer.json()["errors"]], answer.json()
        unknown = api.call("POST", "/broadcasts", key, json=DRAFT | {"colour": "red"})
        assert unknown.status_code == 422
    assert broadcasts.list_broadcasts(store) == []


def test_scopes_a_reader_cannot_write_a_writer_cannot_send(project, store):
    with api_server(project, store, config_text=BROADCAST_CONFIG) as (served, api):
        reader = make_key(store, served, "campaigns:read")
        writer = make_key(store, served, "campaigns:write")
        assert api.call("POST", "/broadcasts", reader, json=DRAFT).status_code == 403
        made = api.call("POST", "/broadcasts", writer, json=DRAFT).json()
        path = f"/broadcasts/{made['id']}"
        assert api.call("GET", path, writer).status_code == 403
        for verb, body in (
            ("send", {"version": 1}),
            ("schedule", {"version": 1, "send_at": "2026-12-24T09:00:00Z"}),
            ("cancel", None),
        ):
            refused = api.call("POST", f"{path}/{verb}", writer, json=body)
            assert refused.status_code == 403, verb
            assert refused.json()["detail"] == "This key does not have the send scope."
        assert api.call("PUT", path, reader, json=DRAFT | {"version": 1}).status_code == 403
        assert api.call("POST", f"{path}/test", reader, json={"to": ["a@b.org"]}).status_code == 403
    assert stored(store, made["id"]).status == "draft"
    assert not mails(served.outbox)


def test_paged_newest_first_and_an_idempotent_create_makes_one(project, store):
    with api_server(project, store, config_text=BROADCAST_CONFIG) as (served, api):
        key = make_key(store, served, "campaigns:read", "campaigns:write")
        once = {"Idempotency-Key": "alert-1"}
        first = api.call("POST", "/broadcasts", key, json=DRAFT, headers=once)
        again = api.call("POST", "/broadcasts", key, json=DRAFT, headers=once)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
        for n in range(4):
            api.call("POST", "/broadcasts", key, json=DRAFT | {"name": f"Alert {n}"})
        seen, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = api.call("GET", "/broadcasts", key, params=params).json()
            seen += [b["name"] for b in page["items"]]
            if (cursor := page["next_cursor"]) is None:
                break
    assert seen == ["Alert 3", "Alert 2", "Alert 1", "Alert 0", "Council vote"]


def test_a_send_reaches_exactly_the_audience_once(project, store):
    seed_people(store)
    with api_server(project, store, config_text=BROADCAST_CONFIG) as (served, api):
        key = make_key(store, served, "campaigns:read", "send", name="Organising tool")
        made = broadcasts.create_broadcast(store, a_draft(), by=STAFF["editor"], now=FIXED_NOW)
        path = f"/broadcasts/{made.id}"
        stale = api.call("POST", f"{path}/send", key, json={"version": 7})
        assert stale.status_code == 409
        once = {"Idempotency-Key": "send-1"}
        sent = api.call("POST", f"{path}/send", key, json={"version": 1}, headers=once)
        assert sent.status_code == 202, sent.text
        assert sent.json()["status"] == "sending"
        assert sent.json()["url"].endswith(f"/api/v1/broadcasts/{made.id}")
        served.wait_for_jobs(1)
        replay = api.call("POST", f"{path}/send", key, json={"version": 1}, headers=once)
        assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
        again = api.call("POST", f"{path}/send", key, json={"version": 2})
        assert again.status_code == 409 and "sent" in again.json()["detail"]
        shown = api.call("GET", path, key).json()
        assert shown["status"] == "sent" and shown["counts"]["sent"] == len(REACHED)
    got = mails(served.outbox)
    assert sorted(str(m["To"]) for m in got) == sorted(REACHED)  # each once, nobody else
    assert {str(m["Subject"]) for m in got} == {"Vote tomorrow"}
    assert {str(m["From"]) for m in got} == {"Local Progress Action <action@example.org>"}
    assert "api: broadcast send" in [e.action for e in audit.recent(store) if e.actor == ACTOR]


def test_the_approval_rule_refuses_then_allows(project, store):
    add_accounts(store)
    seed_people(store)
    config = BROADCAST_CONFIG + "approval:\n  broadcasts: true\n"
    with api_server(project, store, config_text=config) as (served, api):
        key = make_key(store, served, "campaigns:read", "campaigns:write", "send")
        made = api.call("POST", "/broadcasts", key, json=DRAFT).json()
        path = f"/broadcasts/{made['id']}"
        refused = api.call("POST", f"{path}/send", key, json={"version": 1})
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert problem["type"].endswith("#problem-approval-needed")
        assert "waits for approval" in problem["detail"]
        assert stored(store, made["id"]).status == "draft"
        current = present(approval.broadcast_version(store, made["id"]))
        owner = present(find_staff(store, STAFF["owner"]))
        approval.approve(store, current, owner, now=FIXED_NOW, ip=None)
        sent = api.call("POST", f"{path}/send", key, json={"version": 1})
        assert sent.status_code == 202, sent.text
        served.wait_for_jobs(1)
        assert api.call("GET", path, key).json()["status"] == "sent"
    assert sorted(str(m["To"]) for m in mails(served.outbox)) == sorted(REACHED)


def test_an_edit_after_approval_voids_it(project, store):
    add_accounts(store)
    config = BROADCAST_CONFIG + "approval:\n  broadcasts: true\n"
    with api_server(project, store, config_text=config) as (served, api):
        key = make_key(store, served, "campaigns:write", "send")
        made = api.call("POST", "/broadcasts", key, json=DRAFT).json()
        current = present(approval.broadcast_version(store, made["id"]))
        owner = present(find_staff(store, STAFF["owner"]))
        approval.approve(store, current, owner, now=FIXED_NOW, ip=None)
        path = f"/broadcasts/{made['id']}"
        api.call("PUT", path, key, json=DRAFT | {"body": "Changed.", "version": 1})
        refused = api.call("POST", f"{path}/send", key, json={"version": 2})
        assert refused.status_code == 409 and "approval" in refused.json()["detail"]
    assert stored(store, made["id"]).status == "draft"
    assert "approval voided" in [e.action for e in audit.recent(store)]


def test_schedule_in_the_future_only_then_cancel(project, store):
    with api_server(project, store, config_text=BROADCAST_CONFIG) as (served, api):
        key = make_key(store, served, "campaigns:write", "send")
        made = api.call("POST", "/broadcasts", key, json=DRAFT).json()
        path = f"/broadcasts/{made['id']}/schedule"
        past = api.call("POST", path, key, json={"version": 1, "send_at": "2026-11-01T09:00:00Z"})
        assert past.status_code == 422 and past.json()["errors"][0]["field"] == "send_at"
        naive = api.call("POST", path, key, json={"version": 1, "send_at": "2026-12-24T09:00:00"})
        assert naive.status_code == 422  # a time without its offset is ambiguous
        at = {"version": 1, "send_at": "2026-12-01T18:30:00-05:00"}
        done = api.call("POST", path, key, json=at)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "scheduled"
        assert present(stored(store, made["id"]).send_at).isoformat() == "2026-12-01T23:30:00+00:00"
        cancel = f"/broadcasts/{made['id']}/cancel"
        assert api.call("POST", cancel, key).json()["status"] == "draft"
        twice = api.call("POST", cancel, key)
        assert twice.status_code == 409 and "not scheduled" in twice.json()["detail"]
    actions = [e.action for e in audit.recent(store)]
    assert {"api: broadcast scheduled", "api: broadcast cancelled"} <= set(actions)


def test_a_test_goes_to_staff_or_configured_test_addresses_only(project, store):
    add_accounts(store)
    config = BROADCAST_CONFIG + "test_addresses: [press-desk@example.org]\n"
    with api_server(project, store, config_text=config) as (served, api):
        key = make_key(store, served, "campaigns:write")
        made = api.call("POST", "/broadcasts", key, json=DRAFT).json()
        path = f"/broadcasts/{made['id']}/test"
        refused = api.call("POST", path, key, json={"to": ["someone@example.net"]})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "to"
        assert not mails(served.outbox)
        to = ["press-desk@example.org", STAFF["viewer"]]
        sent = api.call("POST", path, key, json={"to": to})
        assert sent.status_code == 200, sent.text
        assert sent.json() == {"to": to, "subject": "[Test] Vote tomorrow"}
    got = mails(served.outbox)
    assert sorted(str(m["To"]) for m in got) == sorted(to)
    assert {str(m["Subject"]) for m in got} == {"[Test] Vote tomorrow"}
    assert stored(store, made["id"]).status == "draft"
    assert "api: broadcast test" in [e.action for e in audit.recent(store)]


def test_of_concurrent_sends_one_is_accepted_and_everyone_gets_it_once(project, store):
    from concurrent.futures import ThreadPoolExecutor

    seed_people(store)
    with api_server(project, store, config_text=BROADCAST_CONFIG) as (served, api):
        key = make_key(store, served, "send")
        made = broadcasts.create_broadcast(store, a_draft(), by=STAFF["editor"], now=FIXED_NOW)

        def send(_: int) -> int:
            path = f"/broadcasts/{made.id}/send"
            return api.call("POST", path, key, json={"version": 1}).status_code

        with ThreadPoolExecutor(6) as pool:
            statuses = sorted(pool.map(send, range(6)))
        assert statuses == [202] + [409] * 5  # claimed before the answer: one only
        served.wait_for_jobs(1)
    assert stored(store, made.id).status == "sent"
    assert sorted(str(m["To"]) for m in mails(served.outbox)) == sorted(REACHED)


def test_a_send_that_stopped_is_resumed_once(project, store):
    seed_people(store)
    with api_server(project, store, config_text=BROADCAST_CONFIG) as (served, api):
        key = make_key(store, served, "campaigns:write", "send")
        writer = make_key(store, served, "campaigns:write")
        made = broadcasts.create_broadcast(store, a_draft(), by=STAFF["editor"], now=FIXED_NOW)
        path = f"/broadcasts/{made.id}/resume"
        assert api.call("POST", path, key).status_code == 409  # a draft: nothing to resume
        # a send that stopped right after its claim (the process was killed): `sending`
        assert broadcasts.claim_broadcast(store, made.id, by="api key: x", now=FIXED_NOW)
        assert api.call("POST", path, writer).status_code == 403
        resumed = api.call("POST", path, key)
        assert resumed.status_code == 202, resumed.text
        served.wait_for_jobs(1)
        assert stored(store, made.id).status == "sent"
        assert api.call("POST", path, key).status_code == 409
    assert sorted(str(m["To"]) for m in mails(served.outbox)) == sorted(REACHED)
