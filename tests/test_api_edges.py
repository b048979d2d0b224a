"""The JSON API at its edges: every refusal under /api/v1 as problem details (no route, a
wrong method, a body too large or too slow), an Idempotency-Key whose first request was
lost, a 429 never kept under a key, and the public sign-up key's limit per client."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx

from publisher.store import api_keys
from publisher.store.suppression import suppress
from publisher.web.api.access import RATE_WINDOW, KeyWindows
from publisher.web.bounds import Limits
from publisher.web.limits import CLIENT_WINDOW, IP_LIMIT
from tests.api_support import Api, api_server, make_key
from tests.web_support import serve

PROBLEM = "application/problem+json"
CONSENT = {"text": "Ticked the box on our petition page", "form": "petition", "ip": "192.0.2.7"}


def person(email: str) -> dict:
    return {"email": email, "name": "Ada", "topics": ["labor"], "consent": CONSENT}


def signup(email: str) -> dict:
    return {"email": email, "topics": ["housing"], "consent": True}


def is_problem(answer: httpx.Response, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    document = answer.json()
    assert document["status"] == status and document["title"] and document["detail"]
    return document


@contextmanager
def from_address(api: Api, address: str) -> Iterator[None]:
    """The API client's calls made from another client address (127.0.0.0/8 is all ours)."""
    usual = api.http
    transport = httpx.HTTPTransport(local_address=address)
    api.http = httpx.Client(base_url=usual.base_url, timeout=30, transport=transport)
    try:
        yield
    finally:
        api.http.close()
        api.http = usual


def test_unknown_paths_and_wrong_methods_are_problems_under_the_api_only(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:read")
        nowhere = api.http.get("/nothing-here", headers={"Authorization": f"Bearer {key}"})
        assert is_problem(nowhere, 404)["type"].endswith("/api/v1/docs#problem-not-found")
        assert is_problem(api.http.get("/subscribers/not-a-number"), 404)
        wrong = api.http.request("PUT", "/subscribers")  # a create path (api.DirectPaths)
        assert is_problem(wrong, 405)["title"] == "This path does not take this method"
        assert "POST" in wrong.headers["allow"]
        assert is_problem(api.http.delete("/subscribers/1/unsubscribe"), 405)
        assert is_problem(api.http.post("/openapi.json"), 405)
        site = httpx.get(served.url + "/nothing-here")  # the rest of the site: its page
        assert site.status_code == 404 and site.headers["content-type"] != PROBLEM


def test_a_body_over_the_limit_is_a_declared_problem(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, kind="signup")
        huge = signup("big@example.org") | {"name": "x" * 70_000}
        too_large = api.call("POST", "/signup", key, json=huge)  # validated: 413 is declared
        assert "at most 65536 bytes" in is_problem(too_large, 413)["detail"]
        document = api.http.get("/openapi.json").json()
        answers = document["paths"]["/signup"]["post"]["responses"]
        assert {"408", "413"} <= set(answers)
        form = httpx.post(served.url + "/subscribe", content=b"e" * 70_000)
        assert form.status_code == 413 and form.headers["content-type"].startswith("text/html")


def test_a_body_too_slow_is_a_problem(tmp_path, store):
    with serve(tmp_path, store, limits=Limits(body_timeout=0.5)) as served:
        port = int(served.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            request = (
                f"POST /api/v1/signup HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
            sock.sendall(request.encode())
            answer = b""
            while b"}" not in answer.partition(b"\r\n\r\n")[2]:  # until the body is whole
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["title"] == "The request body took too long to arrive"


def test_a_claim_without_its_answer_is_taken_over_after_a_bounded_time(store):
    from datetime import UTC, datetime

    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    key, _ = api_keys.create_key(store, "k", kind="scoped", scopes=[], created_by="t", now=now)
    assert api_keys.claim_answer(store, key.id, "i-1", "h", now=now) is None
    running = api_keys.claim_answer(store, key.id, "i-1", "h", now=now + timedelta(minutes=4))
    assert running is not None and running.status == 0
    stale = now + api_keys.IDEMPOTENCY_STALE
    other = api_keys.claim_answer(store, key.id, "i-1", "another body", now=stale)
    assert other is not None and other.request_hash == "h"  # another body: never taken over
    assert api_keys.claim_answer(store, key.id, "i-1", "h", now=stale) is None  # taken over
    again = api_keys.claim_answer(store, key.id, "i-1", "h", now=stale)  # only once
    assert again is not None and again.status == 0
    api_keys.remember_answer(store, key.id, "i-1", status=201, body="{}")
    later = now + timedelta(hours=1)
    kept = api_keys.claim_answer(store, key.id, "i-1", "h", now=later)
    assert kept is not None and kept.status == 201  # an answer is kept, however old


def test_a_retry_runs_a_request_whose_process_was_lost_after_its_claim(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        token = make_key(store, served, "subscribers:write", name="writer")  # not batched
        key_id = api_keys.list_keys(store)[0].id
        raw = json.dumps(person("lost@example.org")).encode()
        digest = hashlib.sha256(b"/api/v1/subscribers\n" + raw).hexdigest()
        # the first request claimed the key, then its process was killed
        assert api_keys.claim_answer(store, key_id, "lost-1", digest, now=served.clock.now) is None
        headers = {"Idempotency-Key": "lost-1", "content-type": "application/json"}
        running = api.call("POST", "/subscribers", token, content=raw, headers=headers)
        assert is_problem(running, 409)["title"].startswith("A request with this Idempotency")
        served.clock.advance(seconds=api_keys.IDEMPOTENCY_STALE.total_seconds())
        retried = api.call("POST", "/subscribers", token, content=raw, headers=headers)
        assert retried.status_code == 201, retried.text
        replayed = api.call("POST", "/subscribers", token, content=raw, headers=headers)
        assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
        assert replayed.json() == retried.json()


def test_a_kept_refusal_is_replayed_as_problem_details(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import")
        body = person("twice@example.org")
        assert api.call("POST", "/subscribers", key, json=body).status_code == 201
        headers = {"Idempotency-Key": "dup-1"}
        refused = api.call("POST", "/subscribers", key, json=body, headers=headers)
        assert is_problem(refused, 409)
        replayed = api.call("POST", "/subscribers", key, json=body, headers=headers)
        assert is_problem(replayed, 409) == refused.json()
        assert replayed.headers["Idempotent-Replayed"] == "true"


def test_a_429_is_not_kept_under_an_idempotency_key(tmp_path, store):
    with api_server(tmp_path, store, per_minute=1000) as (served, api):
        key = make_key(store, served, kind="signup")
        for n in range(IP_LIMIT):  # the sign-up's own limit per client address
            assert api.call("POST", "/signup", key, json=signup(f"s{n}@example.org")).is_success
        headers = {"Idempotency-Key": "late-1"}
        body = signup("late@example.org")
        limited = api.call("POST", "/signup", key, json=body, headers=headers)
        assert is_problem(limited, 429)
        again = api.call("POST", "/signup", key, json=body, headers=headers)
        assert is_problem(again, 429) and "Idempotent-Replayed" not in again.headers
        wait = int(again.headers["Retry-After"])
        assert 0 < wait <= CLIENT_WINDOW
        served.clock.advance(seconds=wait - 1)  # a second early: still refused
        early = api.call("POST", "/signup", key, json=body, headers=headers)
        assert is_problem(early, 429) and int(early.headers["Retry-After"]) == 1
        served.clock.advance(seconds=1)  # the sign-up's window has passed
        retried = api.call("POST", "/signup", key, json=body, headers=headers)
        assert retried.status_code == 202, retried.text
        assert "Idempotent-Replayed" not in retried.headers
        replayed = api.call("POST", "/signup", key, json=body, headers=headers)
        assert replayed.status_code == 202 and replayed.headers["Idempotent-Replayed"] == "true"


def test_one_client_spending_the_signup_keys_calls_locks_out_nobody_else(tmp_path, store):
    with api_server(tmp_path, store, per_minute=3) as (served, api):
        key = make_key(store, served, kind="signup", name="website form")
        for n, left in enumerate((2, 1, 0)):
            answer = api.call("POST", "/signup", key, json=signup(f"a{n}@example.org"))
            assert answer.status_code == 202
            assert answer.headers["RateLimit"].startswith(f'"per-client";r={left};')
        limited = api.call("POST", "/signup", key, json=signup("a3@example.org"))
        assert is_problem(limited, 429)
        assert limited.headers["RateLimit-Policy"] == '"per-client";q=3;w=60'
        assert limited.headers["RateLimit"].startswith('"per-client";r=0;')
        assert int(limited.headers["Retry-After"]) > 0
        assert limited.headers["access-control-allow-origin"] == "*"  # a browser may read it
        with from_address(api, "127.0.0.2"):
            other = api.call("POST", "/signup", key, json=signup("b@example.org"))
            assert other.status_code == 202, other.text
            assert other.headers["RateLimit"].startswith('"per-client";r=2;')


def test_the_signup_answer_is_the_same_whoever_the_address_is(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        importer = make_key(store, served, "subscribers:write", "subscribers:import")
        assert api.call("POST", "/subscribers", importer, json=person("on@example.org")).is_success
        suppress(store, "gone@example.org", reason="complaint", source="test", now=served.clock.now)
        key = make_key(store, served, kind="signup")
        answers = [
            api.call("POST", "/signup", key, json=signup(email))
            for email in ("new@example.org", "on@example.org", "gone@example.org")
        ]
        assert [a.status_code for a in answers] == [202, 202, 202]
        assert answers[0].json() == answers[1].json() == answers[2].json()
        assert served.wait_for_mail(1) == ["new@example.org"]


def test_key_windows_hold_a_bounded_number_of_counts_and_newcomers_share_one() -> None:
    windows = KeyWindows(most_counted=3)
    stamp = 1_800_000_000 - 1_800_000_000 % RATE_WINDOW
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        assert windows.take((7, address), 2, stamp) == 1
    # the table is full: every new address of key 7 is counted together, known ones alone
    assert windows.take((7, "198.51.100.1"), 2, stamp) == 1
    assert windows.take((7, "198.51.100.2"), 2, stamp) == 2
    assert windows.take((7, "198.51.100.3"), 2, stamp) is None
    assert windows.take((7, "192.0.2.1"), 2, stamp + 1) == 2
    assert windows.take(8, 2, stamp) == 1  # a key (not a client) is never folded
    assert windows.take(8, 2, stamp) == 2
    assert len(windows._counts) == 5
    # the next window starts every count afresh
    assert windows.take((7, "198.51.100.3"), 2, stamp + RATE_WINDOW) == 1
    assert len(windows._counts) == 1
