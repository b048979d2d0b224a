"""The JSON API through the app `publisher serve` runs (uvicorn in a thread), on SQLite and
PostgreSQL; every answer validated against the served OpenAPI document
(tests/api_support.py)."""

from __future__ import annotations

import threading
from datetime import timedelta

from publisher.store import audit
from publisher.store.subscribers import find_subscriber
from tests.api_support import api_server, make_key

CONSENT = {"text": "Ticked the box on our petition page", "form": "petition", "ip": "192.0.2.7"}


def person(email: str = "ada@example.org", **extra: object) -> dict:
    return {"email": email, "name": "Ada", "topics": ["labor"], "consent": CONSENT} | extra


def test_a_write_key_adds_people_through_double_opt_in(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:read", name="CRM")
        answer = api.call("POST", "/subscribers", key, json=person())
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "pending"
        assert served.wait_for_mail(1) == ["ada@example.org"]
        stored = find_subscriber(store, email="ada@example.org")
        assert stored is not None and stored.status == "pending"
        assert any(e.actor == "api key: CRM" for e in audit.recent(store))
        assert answer.headers["RateLimit-Policy"] == '"per-key";q=600;w=60'
        assert answer.headers["RateLimit"].startswith('"per-key";r=599;')


def test_an_import_key_adds_people_confirmed(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import")
        answer = api.call("POST", "/subscribers", key, json=person())
        assert answer.status_code == 201
        assert answer.json()["status"] == "active"
        again = api.call("POST", "/subscribers", key, json=person())
        assert again.status_code == 409
        assert again.headers["content-type"] == "application/problem+json"
        assert again.json()["title"] == "Conflict with the current state"


def test_read_change_unsubscribe_erase(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import", "subscribers:read")
        made = api.call("POST", "/subscribers", key, json=person()).json()
        path = f"/subscribers/{made['id']}"
        assert api.call("GET", path, key).json()["email"] == "ada@example.org"
        changed = api.call("PATCH", path, key, json={"name": "Ada L.", "topics": ["housing"]})
        assert changed.json()["name"] == "Ada L." and changed.json()["topics"] == ["housing"]
        gone = api.call("POST", path + "/unsubscribe", key)
        assert gone.json()["status"] == "unsubscribed"
        events = api.call("GET", "/events", key).json()
        assert [(e["kind"], e["email"]) for e in events["items"]] == [
            ("unsubscribed", "ada@example.org")
        ]
        later = api.call("GET", "/events", key, params={"cursor": events["next_cursor"]})
        assert later.json()["items"] == []
        assert api.call("DELETE", path, key).status_code == 204
        assert api.call("GET", path, key).status_code == 404
        assert find_subscriber(store, email="ada@example.org") is None


def test_scopes_are_refused(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        reader = make_key(store, served, "subscribers:read")
        refused = api.call("POST", "/subscribers", reader, json=person())
        assert refused.status_code == 403
        assert refused.json()["detail"] == "This key does not have the subscribers:write scope."
        writer = make_key(store, served, "subscribers:write")
        assert api.call("GET", "/subscribers", writer).status_code == 403
        signup = make_key(store, served, kind="signup")
        assert api.call("GET", "/subscribers", signup).status_code == 403
        assert api.call("GET", "/subscribers").status_code == 401
        assert api.call("GET", "/subscribers", "pk_000000000000_nope").status_code == 401
        assert find_subscriber(store, email="ada@example.org") is None


def test_a_revoked_or_expired_key_is_refused(tmp_path, store):
    from publisher.store.api_keys import list_keys, revoke_key

    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:read", name="soon revoked")
        assert api.call("GET", "/subscribers", key).status_code == 200
        revoke_key(store, list_keys(store)[0].id, now=served.clock.now)
        assert api.call("GET", "/subscribers", key).status_code == 401
        brief = make_key(
            store, served, "subscribers:read", expires_at=served.clock.now + timedelta(hours=1)
        )
        assert api.call("GET", "/subscribers", brief).status_code == 200
        served.clock.advance(hours=1)
        assert api.call("GET", "/subscribers", brief).status_code == 401


def test_a_retried_post_with_its_idempotency_key_creates_once(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import")
        first = api.call(
            "POST", "/subscribers", key, json=person(), headers={"Idempotency-Key": "a1"}
        )
        again = api.call(
            "POST", "/subscribers", key, json=person(), headers={"Idempotency-Key": "a1"}
        )
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        other = api.call(
            "POST",
            "/subscribers",
            key,
            json=person("bo@example.org"),
            headers={"Idempotency-Key": "a1"},
        )
        assert other.status_code == 422
        assert other.json()["title"].startswith("This Idempotency-Key was used")
        assert find_subscriber(store, email="bo@example.org") is None
        served.clock.advance(hours=25)  # kept a day: then the key is free again
        after = api.call(
            "POST", "/subscribers", key, json=person(), headers={"Idempotency-Key": "a1"}
        )
        assert after.status_code == 409, (
            after.headers,
            after.text,
        )  # ran again: Ada is on the list


def test_invalid_bodies_are_problem_details_with_their_fields(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write")
        unknown = api.call("POST", "/subscribers", key, json=person(colour="red"))
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["field"] == "colour"
        bad = api.call("POST", "/subscribers", key, json=person("not an address"))
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "email"
        topic = api.call("POST", "/subscribers", key, json=person(topics=["cats"]))
        assert topic.status_code == 422 and "cats" in topic.json()["detail"]
        text = api.call(
            "POST", "/subscribers", key, content=b"{", headers={"content-type": "application/json"}
        )
        assert text.status_code == 400


def test_pages_skip_and_repeat_nobody_under_concurrent_inserts(tmp_path, store):
    with api_server(tmp_path, store, per_minute=10_000) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import", "subscribers:read")
        for n in range(30):
            api.call("POST", "/subscribers", key, json=person(f"p{n}@example.org"))
        before = {f"p{n}@example.org" for n in range(30)}
        stop = threading.Event()

        def insert() -> None:
            n = 0
            while not stop.is_set() and n < 200:
                api.call("POST", "/subscribers", key, json=person(f"new{n}@example.org"))
                n += 1

        writer = threading.Thread(target=insert)
        writer.start()
        seen: list[str] = []
        cursor = None
        try:
            while True:
                params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
                page = api.call("GET", "/subscribers", key, params=params).json()
                seen += [p["email"] for p in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
        finally:
            stop.set()
            writer.join()
        assert len(seen) == len(set(seen))  # nobody twice
        assert before <= set(seen)  # nobody who was there from the start skipped


def test_rate_limits_per_key_answer_429_with_retry_after(tmp_path, store):
    with api_server(tmp_path, store, per_minute=3) as (served, api):
        key = make_key(store, served, "subscribers:read")
        other = make_key(store, served, "subscribers:read")
        for left in (2, 1, 0):
            answer = api.call("GET", "/subscribers", key)
            assert answer.headers["RateLimit"].startswith(f'"per-key";r={left};')
        limited = api.call("GET", "/subscribers", key)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
        assert api.call("GET", "/subscribers", other).status_code == 200  # per key
        served.clock.advance(seconds=60)
        assert api.call("GET", "/subscribers", key).status_code == 200


def test_the_signup_key_signs_people_up_from_another_site(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, kind="signup", name="website form")
        preflight = api.http.options(
            "/signup",
            headers={"Origin": "https://other.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] == "*"
        body = {"email": "cy@example.org", "topics": ["housing"], "consent": True}
        answer = api.call("POST", "/signup", key, json=body)
        assert answer.status_code == 202
        assert answer.headers["access-control-allow-origin"] == "*"
        assert served.wait_for_mail(1) == ["cy@example.org"]
        stored = find_subscriber(store, email="cy@example.org")
        assert stored is not None and stored.status == "pending"
        assert api.call("POST", "/signup", key, json=body | {"consent": False}).status_code == 422
        assert api.call("GET", "/subscribers", key).status_code == 403


def test_the_document_and_its_reference_page(tmp_path, store):
    import httpx
    from openapi_spec_validator import validate

    with api_server(tmp_path, store) as (served, api):
        document = httpx.get(served.url + "/api/v1/openapi.json").json()
        validate(document)
        assert document["openapi"] == "3.1.0"
        assert "/subscribers/{id}" in document["paths"]
        page = httpx.get(served.url + "/api/v1/docs")
        assert page.status_code == 200 and "<script" not in page.text
        assert "GET /subscribers/{id}" in page.text


def test_concurrent_retries_with_one_idempotency_key_create_one_person(tmp_path, store):
    from concurrent.futures import ThreadPoolExecutor

    from publisher.store.subscribers import count_by_status

    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import")
        body, headers = person("race@example.org"), {"Idempotency-Key": "race-1"}

        def post(_: int) -> int:
            return api.call("POST", "/subscribers", key, json=body, headers=headers).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(post, range(16)))
        # each retry got the first answer, or was told the first still runs: never a second
        assert set(statuses) <= {201, 409} and 201 in statuses
        assert sum(count_by_status(store).values()) == 1
        final = api.call("POST", "/subscribers", key, json=body, headers=headers)
        assert final.status_code == 201 and final.headers["Idempotent-Replayed"] == "true"


def test_a_create_path_answers_other_methods_through_the_routes(tmp_path, store):
    """POST /api/v1/subscribers skips Starlette's route matching (api.DirectPaths); another
    method on that path still gets the routes' answer, and a create still its headers."""
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import")
        refused = api.http.request(
            "PUT", "/subscribers", headers={"Authorization": f"Bearer {key}"}
        )
        assert refused.status_code == 405
        answer = api.call("POST", "/subscribers", key, json=person())
        assert answer.status_code == 201
        assert answer.headers["x-content-type-options"] == "nosniff"  # SecurityHeaders ran
        assert answer.headers["cache-control"] == "no-store"
