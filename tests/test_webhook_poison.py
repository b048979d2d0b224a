"""One odd event never loses a signed webhook batch: each poison event sits beside a good
unsubscribe in one signed batch; the answer is 200, the unsubscribe is applied and the poison
is logged with why (issue 19). On SQLite and on PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from sqlalchemy import select

import publisher.store.events as store_events
from publisher.store.models import WebhookEventRow
from publisher.store.subscribers import find_subscriber, iter_subscribers
from tests.conftest import present
from tests.servers.data import add_subscribers
from tests.web_support import serve

URL = "/webhooks/sendgrid"


@pytest.fixture
def served(project, store, fixed_now):
    add_subscribers(store, fixed_now, 2, topics=("labor",))
    with serve(project, store) as s:
        yield s


def _post_body(served, body: bytes, stamp: str | None = None) -> httpx.Response:
    headers = served.keys.headers(body, served.clock.now)
    if stamp is not None:  # a timestamp header of our choosing, signed as SendGrid would
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = stamp
        headers["X-Twilio-Email-Event-Webhook-Signature"] = served.keys.sign(body, stamp)
    # header bytes are read as Latin-1 (Starlette): b"\xb2" arrives as "²"
    raw = [(name.encode(), value.encode("latin-1")) for name, value in headers.items()]
    return httpx.post(served.url + URL, content=body, headers=raw)


def _stored_ids(store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(select(WebhookEventRow.sg_event_id)))


POISON: dict[str, tuple[dict[str, object], str]] = {
    # another app on the same SendGrid account: an address our validator refuses
    "internationalised address": ({"email": "jürgen@example.org"}, "email is not an address"),
    "timestamp 1e20": ({"timestamp": 1e20}, "timestamp Input should be less than"),
    "timestamp Infinity": ({"timestamp": float("inf")}, "timestamp Input should be a finite"),
    "edition_id 10**30": ({"edition_id": 10**30}, "edition_id Input should be less than"),
    # fits SQLite's 64-bit INTEGER, not PostgreSQL's 32-bit one
    "edition_id 2**31": ({"edition_id": 2**31}, "edition_id Input should be less than"),
    "edition_id not a number": ({"edition_id": "seven"}, "edition_id Input should be a valid"),
    "NUL in a reason": ({"reason": "bad\x00reason"}, "reason contains a NUL character"),
    "lone surrogate": ({"response": "\ud800"}, "response is not valid Unicode text"),
    "no sg_event_id": ({"sg_event_id": None}, "sg_event_id Input should be a valid string"),
}


@pytest.mark.parametrize("case", list(POISON), ids=list(POISON))
def test_a_poison_event_beside_an_unsubscribe_is_skipped_and_logged(served, store, caplog, case):
    good, other = list(iter_subscribers(store))
    change, why = POISON[case]
    poison = {"sg_event_id": "p-1", "event": "spamreport", "email": other.email, "timestamp": 1}
    poison |= change
    unsubscribe = {"sg_event_id": "u-1", "event": "unsubscribe", "email": good.email}
    body = json.dumps([poison, unsubscribe | {"timestamp": 1_700_000_000}]).encode()
    with caplog.at_level(logging.WARNING, logger="publisher.web"):
        answer = _post_body(served, body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "received": 2, "stored": 1, "duplicates": 0, "skipped": 1, "status_changes": 1
    }  # fmt: skip
    assert present(find_subscriber(store, id=good.id)).status == "unsubscribed"
    assert present(find_subscriber(store, id=other.id)).status == "active"  # not applied
    assert _stored_ids(store) == {"u-1"}
    [line] = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert line.startswith("sendgrid webhook: event 0") and why in line, line
    assert "jürgen" not in line and other.email not in line  # why, never the address


def test_a_number_too_long_for_python_spoils_only_its_own_event(served, store):
    good, other = list(iter_subscribers(store))
    events = [
        {"sg_event_id": "p", "event": "spamreport", "email": other.email, "edition_id": 0},
        {"sg_event_id": "u", "event": "unsubscribe", "email": good.email},
    ]
    # 5,000 digits: more than int() reads (4,300) and json.dumps could write
    body = json.dumps(events).replace('"edition_id": 0', '"edition_id": ' + "9" * 5000).encode()
    answer = _post_body(served, body)
    assert answer.status_code == 200 and answer.json()["skipped"] == 1
    assert present(find_subscriber(store, id=good.id)).status == "unsubscribed"
    assert present(find_subscriber(store, id=other.id)).status == "active"


def test_events_that_are_not_objects_are_skipped(served, store):
    good = next(iter_subscribers(store))
    events = [
        "open",
        42,
        None,
        [1],
        {"sg_event_id": "u", "event": "unsubscribe", "email": good.email},
    ]
    answer = _post_body(served, json.dumps(events).encode())
    assert answer.status_code == 200
    assert (answer.json()["skipped"], answer.json()["stored"]) == (4, 1)
    assert present(find_subscriber(store, id=good.id)).status == "unsubscribed"


@pytest.mark.parametrize("body", [b"not json", b'{"event": "open"}', b"[" * 100_000, b"1" * 5000])
def test_a_signed_body_that_is_not_an_array_of_events_is_answered_2xx(served, store, body):
    # signed by SendGrid: a non-2xx answer would only bring the same body back for 24 hours
    answer = _post_body(served, body)
    assert answer.status_code == 200 and answer.json()["received"] == 0
    assert _stored_ids(store) == set()


@pytest.mark.parametrize("stamp", ["²", "¹³", "1" * 5000, "-5", "1e9"])
def test_a_timestamp_header_of_other_digits_is_refused_not_a_crash(served, store, stamp):
    good = next(iter_subscribers(store))
    body = json.dumps([{"sg_event_id": "u", "event": "unsubscribe", "email": good.email}]).encode()
    answer = _post_body(served, body, stamp=stamp)
    assert answer.status_code == 403 and answer.json() == {
        "error": "missing signature or timestamp"
    }
    assert present(find_subscriber(store, id=good.id)).status == "active"


def test_events_are_stored_and_applied_in_one_transaction(served, store, monkeypatch):
    """A failure while applying outcomes leaves nothing stored, so SendGrid's retry of the
    batch applies them (stored first, the retry would find duplicates and apply nothing)."""
    good = next(iter_subscribers(store))
    body = json.dumps([{"sg_event_id": "u", "event": "unsubscribe", "email": good.email}]).encode()

    def crash(*args: object) -> int:
        raise RuntimeError("the database went away between the two steps")

    with monkeypatch.context() as patch:
        patch.setattr(store_events, "_apply_outcomes", crash)
        assert _post_body(served, body).status_code == 500
    assert _stored_ids(store) == set()
    again = _post_body(served, body)
    assert again.status_code == 200 and again.json()["status_changes"] == 1
    assert present(find_subscriber(store, id=good.id)).status == "unsubscribed"
