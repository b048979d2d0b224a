"""The API's batched creates (issue 22): the creates of import keys waiting for the group
commit run as ONE call of `api_adds.add_active_many` (a handful of statements for the
batch), and each still gets the answer and the rows it gets one at a time: a new address,
the same address twice in one batch, one already stored, a suppressed or erased one, an
invalid address or topic, an Idempotency-Key retried inside the batch."""

from __future__ import annotations

import base64
import queue
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx

from publisher.store import api_adds, audit, webhook_queue, webhooks
from publisher.store.consent import Context
from publisher.store.group import Bulk, GroupCommit
from publisher.store.subscriber_record import history
from publisher.store.subscribers import (
    count_by_status,
    find_subscriber,
    stored_email_hash,
    subscriber_at,
)
from publisher.store.suppression import suppress
from publisher.subscribers.consent import add_person, erase
from tests.api_support import api_server, make_key
from tests.conftest import FIXED_NOW
from tests.test_subscriber_lists import assert_same
from tests.test_subscriber_tallies import recount, tallies

CONSENT = {"text": "Ticked the box on our petition page", "form": "petition"}
CTX = Context(via="api", form="petition", consent_text="Ticked the box")


class _CountedQueue(queue.SimpleQueue[Any]):
    """The group commit's queue, telling a waiting test how many jobs were put."""

    def __init__(self) -> None:
        super().__init__()
        self.put_count = 0
        self.changed = threading.Condition()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        with self.changed:
            self.put_count += 1
            self.changed.notify_all()


def _body(email: str, topics: tuple[str, ...] = ("labor",)) -> dict:
    return {"email": email, "topics": list(topics), "consent": CONSENT}


def _in_one_batch(served: Any, calls: list[Any]) -> list[httpx.Response]:
    """Run `calls` while the writer is held by a job of our own: they queue up, and the
    writer takes them together once it is let go."""
    writes = served.app.state.api_writes
    writes.close()  # its writer (if running) waits on the old queue: the next one ours
    jobs = writes._jobs = _CountedQueue()
    held, gate = threading.Event(), threading.Event()

    def hold(_store: object) -> None:
        held.set()
        assert gate.wait(60)

    with ThreadPoolExecutor(len(calls) + 1) as pool:
        holding = pool.submit(writes.run, hold)
        try:
            assert held.wait(60)
            answers = [pool.submit(call) for call in calls]
            with jobs.changed:
                assert jobs.changed.wait_for(lambda: jobs.put_count >= len(calls) + 1, 60)
            before = writes.batches
        finally:
            gate.set()
        holding.result()
        results = [answer.result() for answer in answers]
    assert writes.batches == before + 2  # ours, then every call's together
    return results


def test_a_mixed_batch_answers_each_create_as_alone(tmp_path, store, caplog):
    webhooks.create_endpoint(
        store, "https://hooks.example.org/in", ["subscriber.confirmed"], by="t", now=FIXED_NOW
    )
    old = add_person(store, "old@example.org", name=None, topics=[], ctx=CTX, now=FIXED_NOW)
    suppress(store, "bounced@example.org", reason="bounced", source="t", now=FIXED_NOW)
    gone = add_person(store, "gone@example.org", name=None, topics=[], ctx=CTX, now=FIXED_NOW)
    erase(store, gone, now=FIXED_NOW, source="t")
    with api_server(tmp_path, store, per_minute=10_000) as (served, api):
        key = make_key(
            store, served, "subscribers:read", "subscribers:write", "subscribers:import",
            name="CRM",
        )  # fmt: skip
        # the key's first use writes its last use: before the writer holds the lock
        assert api.call("GET", "/subscribers", key).status_code == 200
        retry = {"Idempotency-Key": "crm-7"}

        def post(body: dict, headers: dict | None = None) -> Any:
            return lambda: api.call("POST", "/subscribers", key, json=body, headers=headers or {})

        calls = [
            post(_body("New@Example.org")),
            post(_body("new@example.org")),  # the same address again, in the same batch
            post(_body("old@example.org")),
            post(_body("bounced@example.org")),
            post(_body("gone@example.org")),
            post(_body("not an address")),
            post(_body("topic@example.org", ("no-such-topic",))),
            post(_body("kept@example.org"), retry),
            post(_body("kept@example.org"), retry),  # a retry inside the batch
        ]
        a, b, stored, bounced, erased, invalid, topic, k1, k2 = _in_one_batch(served, calls)
    assert "failed together" not in caplog.text  # the batch ran as one, not job by job
    assert sorted([a.status_code, b.status_code]) == [201, 409]
    refused = a if a.status_code == 409 else b
    assert "new@example.org is already on the list (active)" in refused.json()["detail"]
    assert stored.status_code == 409 and "already on the list (active)" in stored.json()["detail"]
    assert bounced.status_code == 409 and "is never mailed (bounced)" in bounced.json()["detail"]
    assert erased.status_code == 409 and "was erased" in erased.json()["detail"]
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "email"
    assert topic.status_code == 422 and "no-such-topic" in topic.json()["detail"]
    assert [k1.status_code, k2.status_code] == [201, 201]
    assert k1.json() == k2.json()
    assert sorted(r.headers.get("Idempotent-Replayed", "-") for r in (k1, k2)) == ["-", "true"]
    # exactly the rows of the two people made, and nothing for the others
    assert count_by_status(store) == {"active": 3, "unsubscribed": 1}
    made = [find_subscriber(store, email=e) for e in ("new@example.org", "kept@example.org")]
    assert all(m is not None and m.status == "active" for m in made)
    assert subscriber_at(store, "topic@example.org") is None
    for person in made:
        assert person is not None
        steps = [(h["action"], h["status"], h["via"]) for h in history(store, person.id)]
        assert steps == [("signup", "pending", "api"), ("added", "active", "api")]
    added = [e for e in audit.recent(store) if e.action == "api: subscriber added, confirmed"]
    assert sorted(e.target for e in added) == ["kept@example.org", "new@example.org"]
    assert {e.actor for e in added} == {"api key: CRM"}
    due = webhook_queue.claim_due(
        store, holder="t", now=FIXED_NOW + timedelta(days=1), lease=timedelta(minutes=5),
        limit=100,
    )  # fmt: skip
    emails = sorted(d.payload["data"]["subscriber"]["email"] for d in due)
    # the two made here, and the two added before
    assert emails == ["gone@example.org", "kept@example.org", "new@example.org", "old@example.org"]
    assert old.email == "old@example.org"


def test_add_active_many_refuses_stored_suppressed_and_repeated_addresses(store):
    add_person(store, "old@example.org", name=None, topics=[], ctx=CTX, now=FIXED_NOW)
    suppress(store, "spam@example.org", reason="complained", source="t", now=FIXED_NOW)
    asked = ["a@example.org", "old@example.org", "spam@example.org", "a@example.org", "b@x.org"]
    requests = [
        api_adds.NewActive(email, name="Ann" if n == 0 else None, topics=["b", "a", "b"], ctx=CTX)
        for n, email in enumerate(asked)
    ]
    got = api_adds.add_active_many(store, requests, now=FIXED_NOW)
    assert [(g.existing, g.suppressed) for g in got] == [
        (None, None), ("active", None), (None, "complained"), ("active", None), (None, None)
    ]  # fmt: skip
    first, last = got[0].subscriber, got[4].subscriber
    assert first is not None and last is not None
    assert find_subscriber(store, id=first.id) == first
    assert find_subscriber(store, id=last.id) == last
    assert (first.email, first.name, first.topics, first.status) == (
        "a@example.org", "Ann", ("a", "b"), "active"
    )  # fmt: skip
    assert first.token and first.ref and first.token != last.token
    steps = [(h["action"], h["status"], h["form"]) for h in history(store, last.id)]
    assert steps == [("signup", "pending", "petition"), ("added", "active", "petition")]
    assert count_by_status(store) == {"active": 3}
    assert api_adds.add_active_many(store, [], now=FIXED_NOW) == []
    # the row triggers fired for each row of the multi-row INSERT: the tallies and the
    # list counts (migrations 0022, 0030) equal a recount
    statuses, topics = recount(store)
    kept_tallies = tallies(store)
    assert {s: n for (s, kind, _), n in kept_tallies.items() if kind == "all"} == statuses
    assert topics == {"a": 2, "b": 2, "(all topics)": 1}
    assert {t: n for (s, kind, t), n in kept_tallies.items() if kind == "topic"} == {"a": 2, "b": 2}
    assert_same(store, "after add_active_many")


def test_a_job_whose_caller_gave_up_is_not_run(store):
    """An API request cancelled while its create waits (the client went away) cancels its
    future: the writer skips it, the others of the batch run."""
    writes = GroupCommit(store)
    held, gate, ran = threading.Event(), threading.Event(), []

    def hold(_store: object) -> None:
        held.set()
        assert gate.wait(60)

    def many(_store: object, items: list[str]) -> list[tuple[Any, BaseException | None]]:
        ran.extend(items)
        return [(item, None) for item in items]

    bulk = Bulk(many, lambda _s, item: item)
    try:
        with ThreadPoolExecutor(1) as pool:
            holding = pool.submit(writes.run, hold)
            assert held.wait(60)
            gone, kept = writes.submit(bulk, "gone"), writes.submit(bulk, "kept")
            assert gone.cancel()
            gate.set()
            holding.result()
            kept.result(60)
    finally:
        writes.close()
    assert ran == ["kept"]


def test_idempotency_keys_in_a_batch_answer_as_one_at_a_time(tmp_path, store, caplog):
    with api_server(tmp_path, store, per_minute=10_000) as (served, api):
        key = make_key(store, served, "subscribers:read", "subscribers:write", "subscribers:import")
        assert api.call("GET", "/subscribers", key).status_code == 200

        def post(email: str, idem: str) -> Any:
            headers = {"Idempotency-Key": idem}
            return lambda: api.call("POST", "/subscribers", key, json=_body(email), headers=headers)

        first = post("before@example.org", "k1")()
        assert first.status_code == 201
        calls = [
            post("before@example.org", "k1"),  # kept before the batch: replayed
            post("other@example.org", "k1"),  # kept before, another body: 422
            post("y@example.org", "k2"),
            post("y@example.org", "k2"),  # the same request twice in the batch
            post("z@example.org", "k3"),
            post("z2@example.org", "k3"),  # the same key, another body, in the batch
            post("bad@example.org", "x" * 256),  # not a usable key: 400
        ]
        replay, reused, y1, y2, z1, z2, bad = _in_one_batch(served, calls)
        again = post("z@example.org", "k3")()  # after the batch: whichever ran first, kept
    assert "failed together" not in caplog.text
    assert replay.status_code == 201 and replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert reused.status_code == 422 and "another body" in reused.json()["detail"]
    assert (y1.status_code, y2.status_code) == (201, 201) and y1.json() == y2.json()
    assert sorted([z1.status_code, z2.status_code]) == [201, 422]
    made = z1 if z1.status_code == 201 else z2
    if made is z1:
        assert again.status_code == 201 and again.json() == z1.json()
    else:
        assert again.status_code == 422
    assert bad.status_code == 400
    assert count_by_status(store) == {"active": 3}  # before, y, and one of z or z2


def _stored_rows(store: Any, email: str) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The person's subscriber row and history rows as the database holds them (no type
    conversion on the way out: the text SQLite keeps for a time or the topics), less the
    id, the address, its hash and the random token and ref (their lengths instead)."""
    with store.engine.connect() as connection:
        person = connection.exec_driver_sql(
            "SELECT id, name, topics, status, length(token), created_at, updated_at,"
            " length(ref), retired_token, status_reason, email_hash"
            f" FROM subscribers WHERE email = '{email}'"
        ).one()
        steps = connection.exec_driver_sql(
            "SELECT at, action, via, status, ip, user_agent, form, consent_text, detail"
            f" FROM subscriber_history WHERE subscriber_id = {person[0]} ORDER BY id"
        ).all()
    return tuple(person[1:-1]), [tuple(step) for step in steps]


def test_add_active_many_stores_the_rows_add_person_stores(store):
    """The batch's own SQL (SQLite: straight through the cursor) writes every column as
    the one-at-a-time path writes it: times, topics as JSON, history, the address's hash."""
    ctx = Context(via="api", ip="192.0.2.7", user_agent="x" * 600, form="f", consent_text="ok")
    add_person(store, "one@example.org", name="Ann", topics=["b", "a"], ctx=ctx, now=FIXED_NOW)
    requests = [api_adds.NewActive("many@example.org", "Ann", ["b", "a", "b"], ctx)]
    (made,) = api_adds.add_active_many(store, requests, now=FIXED_NOW)
    assert made.subscriber is not None
    assert _stored_rows(store, "many@example.org") == _stored_rows(store, "one@example.org")
    with store.engine.connect() as connection:
        hashes = dict(connection.exec_driver_sql("SELECT email, email_hash FROM subscribers").all())
    assert hashes["many@example.org"] == stored_email_hash("many@example.org")
    assert find_subscriber(store, id=made.subscriber.id) == made.subscriber
    assert len(made.subscriber.token) == 32 and len(made.subscriber.ref or "") == 16


def test_record_many_stores_the_rows_record_stores(store):
    """The API's audit rows (SQLite: straight through the cursor) are stored as `record`
    stores one: the time as its type keeps it, long actors cut, no address."""
    later = FIXED_NOW + timedelta(microseconds=1500)
    audit.record(store, "k" * 400, "api: x", "a@example.org", ip=None, now=later)
    audit.record_many(
        store,
        [
            audit.AuditEntry(later, "k" * 400, "api: y", "a@example.org", None),
            audit.AuditEntry(FIXED_NOW, "key", "api: y", "b@example.org", "192.0.2.1", 2),
        ],
    )
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT at, actor, action, target, ip, repeats FROM audit_log ORDER BY id"
        ).all()
    assert rows[1][:2] == rows[0][:2] and rows[1][2:] == ("api: y", "a@example.org", None, 1)
    assert len(rows[0][1]) == 320
    kept = {(e.action, e.target): e for e in audit.recent(store)}
    assert kept["api: y", "b@example.org"].at == FIXED_NOW
    assert kept["api: y", "b@example.org"].repeats == 2


def test_add_active_many_gives_its_events_only_to_the_endpoints_listening(store):
    """The batch reads the endpoints once (SQLite: through the cursor, the events list as
    its JSON type loads it): one listening to confirmations gets each new person's event,
    one listening to something else nothing; a batch with nobody listening writes none."""
    requests = [api_adds.NewActive(f"{n}@example.org", None, [], CTX) for n in ("a", "b")]
    api_adds.add_active_many(store, requests[:1], now=FIXED_NOW)  # nobody listens yet
    listening, _ = webhooks.create_endpoint(
        store, "https://hooks.example.org/yes", ["subscriber.confirmed"], by="t", now=FIXED_NOW
    )
    webhooks.create_endpoint(
        store, "https://hooks.example.org/no", ["subscriber.erased"], by="t", now=FIXED_NOW
    )
    api_adds.add_active_many(store, requests[1:], now=FIXED_NOW)
    due = webhook_queue.claim_due(
        store, holder="t", now=FIXED_NOW + timedelta(days=1), lease=timedelta(minutes=5),
        limit=100,
    )  # fmt: skip
    got = [
        (d.endpoint_id, d.payload["type"], d.payload["data"]["subscriber"]["email"]) for d in due
    ]
    assert got == [(listening.id, "subscriber.confirmed", "b@example.org")]


def test_batch_tokens_are_what_token_urlsafe_makes_of_the_same_bytes(monkeypatch):
    """The batch's tokens and refs come from one os.urandom read, cut: each is what
    secrets.token_urlsafe gives for its own bytes (the whole-group cut and the other)."""
    wanted = bytes(range(256)) * 2
    monkeypatch.setattr(api_adds.os, "urandom", lambda n: wanted[:n])
    for size in (24, 12, 10):
        got = api_adds._tokens(5, size)
        assert got == [
            base64.urlsafe_b64encode(wanted[n * size : (n + 1) * size]).rstrip(b"=").decode()
            for n in range(5)
        ]
        assert len(set(got)) == 5 and all(len(t) == len(secrets.token_urlsafe(size)) for t in got)
