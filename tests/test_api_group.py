"""Creates of an import key through the app `publisher serve` runs (uvicorn in a thread; SQLite
and PostgreSQL) go through the group commit: many clients at once, every 201 a person with
their history, audit row and webhook event, a repeated address refused (never doubled), an
Idempotency-Key retried answered the same, and the per-key rate limit counted without a
store write."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from publisher.store import audit, webhook_queue, webhooks
from publisher.store.consent import Context
from publisher.store.subscriber_record import history
from publisher.store.subscribers import count_by_status, find_subscriber
from publisher.subscribers.consent import add_person
from tests.api_support import api_server, make_key
from tests.conftest import FIXED_NOW

CONSENT = {"text": "Ticked the box on our petition page", "form": "petition"}


def _person(email: str) -> dict:
    return {"email": email, "topics": ["labor"], "consent": CONSENT}


def test_concurrent_creates_each_committed_once_with_audit_and_event(tmp_path, store):
    webhooks.create_endpoint(
        store, "https://hooks.example.org/in", ["subscriber.confirmed"], by="t", now=FIXED_NOW
    )
    with api_server(tmp_path, store, per_minute=10_000) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import", name="CRM")
        emails = [f"p{n}@example.org" for n in range(24)] + ["same@example.org"] * 6

        def post(email: str):
            return api.call("POST", "/subscribers", key, json=_person(email))

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(post, emails))
        statuses = [a.status_code for a in answers]
        assert statuses[:24] == [201] * 24
        assert sorted(statuses[24:]) == [201] + [409] * 5  # the repeat: one person, not six
        assert count_by_status(store) == {"active": 25}
        for answer in answers:
            if answer.status_code == 201:
                made = answer.json()
                stored = find_subscriber(store, id=made["id"])
                assert stored is not None and stored.email == made["email"]
                actions = [h["action"] for h in history(store, made["id"])]
                assert actions == ["signup", "added"]
        added = [e for e in audit.recent(store) if e.action == "api: subscriber added, confirmed"]
        assert len(added) == 25 and {e.actor for e in added} == {"api key: CRM"}
        due = webhook_queue.claim_due(
            store, holder="t", now=FIXED_NOW + timedelta(days=1), lease=timedelta(minutes=5),
            limit=100,
        )  # fmt: skip
        assert len(due) == 25
        assert {d.payload["type"] for d in due} == {"subscriber.confirmed"}
        assert len({d.payload["data"]["subscriber"]["id"] for d in due}) == 25


def test_an_idempotent_retry_in_the_group_commit_gets_the_same_answer(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import")
        headers = {"Idempotency-Key": "crm-42"}

        def post(_: int):
            return api.call(
                "POST", "/subscribers", key, json=_person("ada@example.org"), headers=headers
            )

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(post, range(4)))
        assert {a.status_code for a in answers} <= {201, 409}
        made = [a for a in answers if a.status_code == 201]
        assert len({a.json()["id"] for a in made}) == 1  # replays of the one answer
        again = post(0)
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == made[0].json()
        other = api.call(
            "POST", "/subscribers", key, json=_person("bob@example.org"), headers=headers
        )
        assert other.status_code == 422  # the same key with another body
        assert count_by_status(store) == {"active": 1}


def test_an_invalid_address_is_refused_and_kept_for_its_key(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:write", "subscribers:import")
        headers = {"Idempotency-Key": "bad-1"}
        bad = api.call("POST", "/subscribers", key, json=_person("not an address"), headers=headers)
        assert bad.status_code == 422
        reused = api.call(
            "POST", "/subscribers", key, json=_person("ok@example.org"), headers=headers
        )
        assert reused.status_code == 422 and "another body" in reused.json()["detail"]
        assert count_by_status(store) == {}


def test_add_person_leaves_the_rows_pending_then_activating_left(store):
    """The one-transaction path writes what the two-step one did: the sign-up and the
    activation in the history, the person active, not suppressed, nothing paused."""
    ctx = Context(via="cli", form="staff")
    person = add_person(store, "Ann@Example.org", name="Ann", topics=["b", "a", "a"], ctx=ctx,
                        now=FIXED_NOW)  # fmt: skip
    stored = find_subscriber(store, id=person.id)
    assert stored == person
    assert (person.email, person.status, person.topics) == ("ann@example.org", "active", ("a", "b"))
    assert person.token and person.ref
    steps = [(h["action"], h["status"], h["via"]) for h in history(store, person.id)]
    assert steps == [("signup", "pending", "cli"), ("added", "active", "cli")]
