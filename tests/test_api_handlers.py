"""The API's handlers as a key's owner meets them, on SQLite and PostgreSQL: the filters
of the lists (each returns its rows and no others), an empty change refused, a change and
its audit row stored together or not at all, and the post endpoints the other modules
leave to schemathesis. Served by `create_app` under uvicorn in a thread
(tests/api_support.py), and once by the real `publisher serve` command; every answer
validated against the served OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import cast

import httpx
import pytest

from publisher.items import Item
from publisher.store import api_keys, audit, consent, open_store, posts
from publisher.store.group import one_write
from publisher.store.items import retire_item, upsert_items
from publisher.store.subscribers import find_subscriber
from tests.api_support import Api, api_server, make_key
from tests.conftest import FIXED_NOW
from tests.test_web_bounds import publisher_serve  # the real command on a SQLite file
from tests.web_support import Served

CONSENT = {"text": "Ticked the box", "form": "petition", "ip": "192.0.2.7"}
POST = {"title": "Nurses win their strike", "body": "After six weeks.", "topics": ["labor"]}
PEOPLE = {  # address: name
    "lovelace@example.org": "Ada",
    "a_b@example.org": "Bo",
    "axb@example.org": "Cy",
    "dee@example.org": "100% Dee",
    "ed@example.org": "Ed",
}


def _add_people(api, key) -> dict[str, int]:
    ids = {}
    for email, name in PEOPLE.items():
        body = {"email": email, "name": name, "topics": ["labor"], "consent": CONSENT}
        answer = api.call("POST", "/subscribers", key, json=body)
        assert answer.status_code == 201, answer.text
        ids[email] = answer.json()["id"]
    return ids


def _found(api, key, **params) -> set[str]:
    page = api.call("GET", "/subscribers", key, params=params).json()
    return {p["email"] for p in page["items"]}


def test_subscriber_search_ignores_case_and_takes_wildcards_as_characters(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import", "subscribers:read")
        _add_people(api, key)
        assert _found(api, key, q="ada") == {"lovelace@example.org"}  # the name "Ada"
        assert _found(api, key, q="LOVELACE") == {"lovelace@example.org"}
        assert _found(api, key, q="a_b") == {"a_b@example.org"}  # not axb: _ is no wildcard
        assert _found(api, key, q="100%") == {"dee@example.org"}
        assert _found(api, key, q="%") == {"dee@example.org"}
        assert _found(api, key, q="zz") == set()
        assert _found(api, key, q="example.org", status="active") == set(PEOPLE)
        assert _found(api, key, q="example.org", status="unsubscribed") == set()


def test_an_empty_change_is_refused_reading_and_auditing_nothing(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        importer = make_key(store, served, "subscribers:write", "subscribers:import")
        ids = _add_people(api, importer)
        writer = make_key(store, served, "subscribers:write", name="writer only")
        for subscriber_id in (ids["lovelace@example.org"], 999_999):  # known or not: the same
            refused = api.call("PATCH", f"/subscribers/{subscriber_id}", writer, json={})
            assert refused.status_code == 422
            assert "lovelace" not in refused.text and "Ada" not in refused.text
            assert refused.json()["errors"][0]["detail"].startswith("Nothing to change")
        assert not [e for e in audit.recent(store) if e.actor == "api key: writer only"]
        path = f"/subscribers/{ids['lovelace@example.org']}"
        changed = api.call("PATCH", path, writer, json={"name": "Ada L."})
        assert changed.status_code == 200 and changed.json()["name"] == "Ada L."
        actions = [e.action for e in audit.recent(store) if e.actor == "api key: writer only"]
        assert actions == ["api: subscriber changed"]


def _failing_audit(monkeypatch, failing_action: str) -> None:
    """audit.record raises for one action (a full disk, a lost connection at that moment)."""
    record = audit.record

    def fails(store, actor, action, *args, **kwargs):
        if action == failing_action:
            raise RuntimeError("the audit write failed")
        return record(store, actor, action, *args, **kwargs)

    monkeypatch.setattr(audit, "record", fails)


def test_a_change_whose_audit_row_fails_is_not_stored(tmp_path, store, monkeypatch):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import", "content:write")
        ids = _add_people(api, key)
        _failing_audit(monkeypatch, "api: subscriber changed")
        path = f"/subscribers/{ids['lovelace@example.org']}"
        auth = {"Authorization": f"Bearer {key}"}  # a 500 is in no document: api.http
        failed = api.http.patch(path, headers=auth, json={"name": "Ada L.", "topics": ["housing"]})
        assert failed.status_code == 500
        kept = find_subscriber(store, id=ids["lovelace@example.org"])
        assert kept is not None and kept.name == "Ada" and kept.topics == ("labor",)
        _failing_audit(monkeypatch, "api: post created")
        assert api.http.post("/posts", headers=auth, json=POST).status_code == 500
        assert posts.list_posts(store) == []


def test_one_write_stores_everything_or_nothing(store):
    ctx = consent.Context(via="test")
    with one_write(store) as joined:
        made = consent.add_active(
            joined, "kept@example.org", name="Kept", topics=["labor"], ctx=ctx, now=FIXED_NOW
        )
        audit.record(joined, "test", "added", made.email, ip=None, now=FIXED_NOW)
    assert find_subscriber(store, email="kept@example.org") is not None
    with pytest.raises(RuntimeError), one_write(store) as joined:
        consent.add_active(
            joined, "gone@example.org", name="Gone", topics=["labor"], ctx=ctx, now=FIXED_NOW
        )
        audit.record(joined, "test", "added", "gone@example.org", ip=None, now=FIXED_NOW)
        raise RuntimeError("after both writes")
    assert find_subscriber(store, email="gone@example.org") is None
    assert [e.target for e in audit.recent(store)] == ["kept@example.org"]


def test_a_signup_through_a_key_is_audited_by_its_name(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, kind="signup", name="website form")
        body = {"email": "cy@example.org", "topics": ["housing"], "consent": True}
        assert api.call("POST", "/signup", key, json=body).status_code == 202
        rows = [(e.actor, e.action, e.target) for e in audit.recent(store)]
        assert ("api key: website form", "api: sign-up form", "cy@example.org") in rows


def test_events_of_one_kind(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import", "subscribers:read")
        ids = _add_people(api, key)
        api.call("POST", f"/subscribers/{ids['lovelace@example.org']}/unsubscribe", key)
        consent.set_subscriber_status(
            store, ids["ed@example.org"], "bounced", action="bounce",
            ctx=consent.Context(via="test"), now=FIXED_NOW,
        )  # fmt: skip

        def kinds(**params) -> list[tuple[str, str]]:
            page = api.call("GET", "/events", key, params=params).json()
            return [(e["kind"], e["email"]) for e in page["items"]]

        assert kinds(kind="bounced") == [("bounced", "ed@example.org")]
        assert kinds(kind="unsubscribed") == [("unsubscribed", "lovelace@example.org")]
        assert kinds(kind="complained") == []
        assert len(kinds()) == 2


def test_a_post_read_unpublished_and_retired(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "content:read", "content:write", name="CMS")
        post = api.call("POST", "/posts", key, json=POST).json()
        path = f"/posts/{post['id']}"
        read = api.call("GET", path, key)
        assert read.status_code == 200
        assert (read.json()["title"], read.json()["status"]) == (POST["title"], "draft")
        api.call("POST", path + "/publish", key, json={"version": 1})
        stale = api.call("POST", path + "/unpublish", key, json={"version": 1})
        assert stale.status_code == 409
        draft = api.call("POST", path + "/unpublish", key, json={"version": 2})
        assert (draft.json()["status"], draft.json()["version"]) == ("draft", 3)
        assert api.call("GET", path, key).json()["status"] == "draft"
        live = api.call("GET", "/items", key, params={"source": "newsroom", "status": "live"})
        assert live.json()["items"] == []  # a draft again: not among the live items
        retired = api.call("POST", path + "/retire", key, json={"version": 3})
        assert (retired.json()["status"], retired.json()["version"]) == ("retired", 4)
        assert posts.get_post(store, post["id"]).status == "retired"
        actions = [e.action for e in audit.recent(store) if e.actor == "api key: CMS"]
        assert {"api: post draft", "api: post retired"} <= set(actions)


def _item(number: int, title: str, topics: tuple[str, ...]) -> Item:
    return Item(
        id=f"partner:{number}", title=title, url=f"https://partner.example/{number}",
        published=FIXED_NOW - timedelta(hours=number), source="partner", topics=topics,
    )  # fmt: skip


def test_items_by_text_topic_and_status(tmp_path, store):
    items = [
        _item(1, "Wages rise at the port", ("labor",)),
        _item(2, "Rents rise again", ("housing",)),
        _item(3, "Dockers win on wages", ("labor",)),
    ]
    upsert_items(store, items, now=FIXED_NOW)
    retire_item(store, "partner:3", now=FIXED_NOW)
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "content:read")

        def ids(**params) -> list[str]:
            page = api.call("GET", "/items", key, params=params).json()
            return [i["id"] for i in page["items"]]

        assert ids(q="wages") == ["partner:1", "partner:3"]  # newest first
        assert ids(q="rents") == ["partner:2"]
        assert ids(topic="housing") == ["partner:2"]
        assert ids(topic="labor") == ["partner:1", "partner:3"]
        assert ids(status="retired") == ["partner:3"]
        assert ids(status="live") == ["partner:1", "partner:2"]
        assert ids(topic="labor", status="live") == ["partner:1"]


def test_a_nul_in_a_query_parameter_is_a_400(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "content:read", "subscribers:read")
        for path in ("/items", "/subscribers"):
            auth = {"Authorization": f"Bearer {key}"}  # a 500 is in no document: api.http
            answer = api.http.get(path, headers=auth, params={"q": "a\x00b"})
            assert answer.status_code == 400, (path, answer.status_code)


@pytest.mark.slow  # starts the real `publisher serve` command
def test_the_real_serve_command_answers_as_its_document_says(project):
    """The `publisher serve` process itself (not the app in a thread): a create, a read, a
    list and problems, each validated with openapi-core against the /api/v1/openapi.json
    that process serves."""
    with publisher_serve(project) as (url, _pid):
        store = open_store(f"sqlite:///{project}/web.db")  # migrated by the server
        try:
            scopes = ("subscribers:write", "subscribers:import", "subscribers:read")
            _, key = api_keys.create_key(
                store, "CRM", kind="scoped", scopes=scopes, created_by="test",
                now=datetime.now(UTC),
            )  # fmt: skip
        finally:
            store.close()
        spec = httpx.get(url + "/api/v1/openapi.json").json()
        spec["servers"] = [{"url": url + "/api/v1"}]
        api = Api(cast(Served, SimpleNamespace(url=url)), spec)
        try:
            body = {"email": "ada@example.org", "name": "Ada", "topics": ["labor"]}
            made = api.call("POST", "/subscribers", key, json=body | {"consent": CONSENT})
            assert made.status_code == 201 and made.json()["status"] == "active"
            read = api.call("GET", f"/subscribers/{made.json()['id']}", key)
            assert read.status_code == 200 and read.json()["email"] == "ada@example.org"
            listed = api.call("GET", "/subscribers", key, params={"q": "ADA"}).json()
            assert [p["id"] for p in listed["items"]] == [made.json()["id"]]
            invalid = api.call("POST", "/subscribers", key, json=body | {"colour": "red"})
            assert invalid.status_code == 422
            assert invalid.headers["content-type"] == "application/problem+json"
            assert api.call("GET", "/subscribers/999999", key).status_code == 404
            assert api.call("GET", "/subscribers").status_code == 401
            assert api.checked == 6
        finally:
            api.http.close()
