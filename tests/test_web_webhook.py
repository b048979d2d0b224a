"""SendGrid's signed event webhook against a real server, with a P-256 key pair made here;
then a real send skips every suppressed or paused address with the reason in the ledger."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from publisher.deliver import deliver_edition
from publisher.store import ledger
from publisher.store.consent import CLI, pause
from publisher.store.events import edition_clicks, edition_counts
from publisher.store.models import DeliveryRow, WebhookEventRow
from publisher.store.subscribers import (
    SubscriberInput,
    find_subscriber,
    import_subscribers,
    iter_subscribers,
)
from publisher.store.suppression import suppress, suppression_reason
from publisher.subscribers.consent import erase
from tests.conftest import present
from tests.servers.data import add_edition, add_subscribers
from tests.web_support import SendGridKeys, serve


@pytest.fixture
def served(project, store, fixed_now):
    add_subscribers(store, fixed_now, 6, topics=("labor",))
    with serve(project, store) as s:
        yield s


def _event(n, kind, email, **extra):
    return {"sg_event_id": f"ev-{n}", "event": kind, "email": email, "timestamp": 1, **extra}


def _post(served, events, headers=None):
    body, signed = served.events(events)
    return httpx.post(f"{served.url}/webhooks/sendgrid", content=body, headers=headers or signed)


def _stored(store):
    with store.session() as session:
        return session.scalar(select(WebhookEventRow.sg_event_id).limit(1)) is not None


def test_valid_batch_changes_statuses_suppresses_and_counts(served, store):
    emails = [s.email for s in iter_subscribers(store)]
    events = [
        _event(1, "bounce", emails[0], type="bounce", edition_id=7),
        _event(2, "bounce", emails[1], type="blocked", edition_id=7),  # not the address's fault
        _event(3, "spamreport", emails[2], edition_id=7),
        _event(4, "unsubscribe", emails[3], edition_id=7),
        _event(5, "dropped", emails[4], reason="Invalid", edition_id=7),
        _event(6, "delivered", emails[5], edition_id="7"),
        _event(7, "click", emails[5], url="https://www.example.org/a", edition_id=7),
        _event(8, "open", emails[5], edition_id=7),
        _event(9, "bounce", "stranger@example.net", type="bounce"),
        {"event": "open"},  # malformed: skipped, the rest goes on
    ]
    answer = _post(served, events)
    assert answer.status_code == 200
    assert answer.json() == {
        "received": 10,
        "stored": 9,
        "duplicates": 0,
        "skipped": 1,
        "status_changes": 4,
    }
    statuses = [present(find_subscriber(store, email=e)).status for e in emails]
    assert statuses == ["bounced", "active", "complained", "unsubscribed", "bounced", "active"]
    assert suppression_reason(store, emails[0]) == "bounced"
    assert suppression_reason(store, emails[2]) == "complained"
    assert suppression_reason(store, "stranger@example.net") == "bounced"
    assert suppression_reason(store, emails[1]) is None
    counts = edition_counts(store, 7)
    assert counts["delivered"] == counts["click"] == counts["open"] == 1
    assert edition_clicks(store, 7) == {"https://www.example.org/a": 1}


def test_bad_signature_missing_headers_and_other_keys_are_refused(served, store):
    emails = [s.email for s in iter_subscribers(store)]
    events = [_event(1, "spamreport", emails[0])]
    body, headers = served.events(events)
    tampered = body.replace(b"spamreport", b"unsubscribe")
    assert (
        httpx.post(f"{served.url}/webhooks/sendgrid", content=tampered, headers=headers).status_code
        == 403
    )
    assert httpx.post(f"{served.url}/webhooks/sendgrid", content=body).status_code == 403
    stranger = SendGridKeys().headers(body, served.clock.now)
    assert _post(served, events, stranger).status_code == 403
    garbage = headers | {"X-Twilio-Email-Event-Webhook-Signature": "%%%not base64"}
    assert _post(served, events, garbage).status_code == 403
    assert (
        not _stored(store) and present(find_subscriber(store, email=emails[0])).status == "active"
    )


def test_stale_timestamp_is_refused(served, store):
    events = [_event(1, "spamreport", next(iter_subscribers(store)).email)]
    body = served.events(events)[0]
    old = served.keys.headers(body, served.clock.now - timedelta(minutes=11))
    assert _post(served, events, old).status_code == 403
    recent = served.keys.headers(body, served.clock.now - timedelta(minutes=9))
    assert _post(served, events, recent).status_code == 200


def test_duplicate_events_are_stored_and_applied_once(served, store):
    person = next(iter_subscribers(store))
    events = [_event(1, "unsubscribe", person.email), _event(1, "unsubscribe", person.email)]
    first = _post(served, events).json()
    again = _post(served, events).json()  # SendGrid retries a batch it thinks failed
    assert (first["stored"], first["duplicates"], first["status_changes"]) == (1, 1, 1)
    assert (again["stored"], again["duplicates"], again["status_changes"]) == (0, 2, 0)


def test_a_batch_of_1000_events_then_a_send_skips_suppressed_and_paused(
    served, store, make_config, fixed_now
):
    add_subscribers(store, fixed_now, 994, start=6, topics=("labor",))
    people = list(iter_subscribers(store))
    bounced, complained = people[:10], people[10:20]
    events = [_event(i, "bounce", p.email, type="bounce") for i, p in enumerate(bounced)]
    events += [_event(100 + i, "spamreport", p.email) for i, p in enumerate(complained)]
    events += [
        _event(1000 + i, "delivered", p.email, edition_id=1) for i, p in enumerate(people[20:])
    ]
    assert len(events) == 1000
    answer = _post(served, events)
    assert answer.status_code == 200 and answer.json()["stored"] == 1000
    assert edition_counts(store, 1)["delivered"] == 980
    # a paused subscriber, and a bounced address re-imported by a CSV later
    paused = people[20]
    pause(store, paused.id, fixed_now + timedelta(weeks=2), ctx=CLI, now=fixed_now)
    import_subscribers(store, [SubscriberInput(bounced[0].email.upper())], now=fixed_now)
    erased = people[21]  # asked to be deleted, then an old CSV brings the address back
    erase(store, erased, now=fixed_now)
    imported = import_subscribers(store, [SubscriberInput(erased.email)], now=fixed_now)
    assert imported.suppressed == 1 and find_subscriber(store, email=erased.email) is None
    back = people[22]  # still active, but on the suppression list (e.g. added by hand)
    suppress(store, back.email, reason="erased", source="cli", now=fixed_now)
    config = served.config
    edition = add_edition(store, fixed_now, campaign="weekly")
    report = deliver_edition(config, store, edition, now=fixed_now)
    with store.session() as session:
        rows = {
            r.subscriber_id: r
            for r in session.scalars(select(DeliveryRow).where(DeliveryRow.edition_id == edition))
        }
    assert report.sent == 977  # 1,000 - 10 bounced - 10 complained - paused - erased - back
    assert rows[paused.id].status == rows[back.id].status == ledger.SKIPPED
    assert rows[paused.id].error == "paused until 2026-12-09"
    assert rows[back.id].error == "suppressed address"
    assert all(p.id not in rows for p in bounced + complained)  # not active: never selected
    sent_files = {p.stem for p in (served.outbox / "weekly" / "1").glob("*.eml")}
    assert str(paused.id) not in sent_files and len(sent_files) == 977
    # after the pause ends the next edition reaches them again
    later = add_edition(store, fixed_now, campaign="weekly", number=2)
    report = deliver_edition(config, store, later, now=fixed_now + timedelta(weeks=3))
    assert report.sent == 978  # the pause is over; the suppressed address stays out


def test_a_complaint_outranks_a_bounce_in_the_same_batch(served, store):
    person = next(iter_subscribers(store))
    events = [
        _event(1, "bounce", person.email, type="bounce"),
        _event(2, "spamreport", person.email),
        _event(3, "unsubscribe", person.email),  # too late: a complaint is kept as it is
    ]
    assert _post(served, events).json()["status_changes"] == 2
    assert present(find_subscriber(store, id=person.id)).status == "complained"
    assert suppression_reason(store, person.email) == "complained"
    again = [_event(4, "bounce", person.email, type="bounce")]
    assert _post(served, again).json()["status_changes"] == 0
    assert suppression_reason(store, person.email) == "complained"


def test_without_any_suppression_a_send_still_skips_the_paused(project, store, fixed_now):
    from tests.web_support import write_web_config

    add_subscribers(store, fixed_now, 3, topics=("labor",))
    add_subscribers(store, fixed_now, 1, start=3, topics=("other",))  # does not follow
    first, _, third, outsider = list(iter_subscribers(store))
    until = fixed_now + timedelta(days=3)
    for person in (first, outsider):
        pause(store, person.id, until, ctx=CLI, now=fixed_now)
    pause(store, third.id, fixed_now - timedelta(days=1), ctx=CLI, now=fixed_now)  # over
    config = write_web_config(project, 1)
    edition = add_edition(store, fixed_now, campaign="weekly")
    report = deliver_edition(config, store, edition, now=fixed_now)
    with store.session() as session:
        rows = {
            r.subscriber_id: (r.status, r.error)
            for r in session.scalars(select(DeliveryRow).where(DeliveryRow.edition_id == edition))
        }
    assert report.sent == 2 and rows[first.id] == ("skipped", "paused until 2026-11-28")
    assert rows[third.id][0] == "sent" and outsider.id not in rows


def test_a_suppressed_address_in_another_case_is_held_back_without_a_validator_per_person(
    project, store, fixed_now, monkeypatch
):
    """A send or a count hashes nobody: each row keeps its address's hash (migration
    0031), so no email-validator call per follower; a suppression given in another case
    still holds the person back, and so does a legacy row stored unnormalised (its hash
    taken of the normalised address)."""
    import publisher.store.subscribers
    from publisher.store.audience_counts import count_reachable
    from publisher.store.subscribers import follows, normalise_email
    from tests.web_support import write_web_config

    add_subscribers(store, fixed_now, 20, topics=("labor",))
    signed_up = normalise_email("  Ana.Lima@Example.ORG ")  # as every writer stores it
    legacy = "Bo.Kim@Example.org"  # stored as written, before the rule (or directly)
    rows = [SubscriberInput(a, None, ("labor",)) for a in (signed_up, legacy)]
    import_subscribers(store, rows, now=fixed_now)
    suppress(store, "ANA.LIMA@example.org", reason="complained", source="test", now=fixed_now)
    suppress(store, "bo.kim@EXAMPLE.ORG", reason="bounced", source="test", now=fixed_now)
    validated: list[str] = []
    real = publisher.store.subscribers.validate_email

    def counted(address: str, **options: Any) -> Any:
        validated.append(address)
        return real(address, **options)

    monkeypatch.setattr(publisher.store.subscribers, "validate_email", counted)
    normalise_email.cache_clear()  # remembered readings would hide a call per person
    labor = lambda topics: follows(topics, ["labor"])  # noqa: E731
    assert count_reachable(store, labor, now=fixed_now) == 20
    config = write_web_config(project, 1)
    edition = add_edition(store, fixed_now, campaign="weekly")
    report = deliver_edition(config, store, edition, now=fixed_now)
    with store.session() as session:
        skipped = {
            r.subscriber_id: r.error
            for r in session.scalars(
                select(DeliveryRow).where(
                    DeliveryRow.edition_id == edition, DeliveryRow.status == "skipped"
                )
            )
        }
    ids = {person.email: person.id for person in iter_subscribers(store)}
    assert skipped == {ids[signed_up]: "suppressed address", ids[legacy]: "suppressed address"}
    assert report.sent == 20
    # none at all: each row's hash was taken when it was written (subscribers.email_hash)
    assert validated == []
