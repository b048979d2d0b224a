"""Outgoing webhooks (issue 22): events written with the changes they report, delivered
signed to a real receiver on 127.0.0.1, retried, in order per subscriber, disabled after
repeated failure, replayed. Every test that takes the `store` fixture runs on SQLite and
PostgreSQL; the daemon killed with SIGKILL mid-delivery uses a SQLite file only, and the
address checks and the benchmark use no test store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from standardwebhooks import Webhook

from publisher.config import WebhooksConfig
from publisher.deliver.webhooks import BACKOFF, Deliverer, WebhookUrlInvalid, check_url
from publisher.store import Store, ledger, outbox, webhook_queue, webhooks
from publisher.store.consent import CLI, add_pending, set_subscriber_status, unsubscribe_token
from publisher.store.editions import NewEdition, save_edition
from publisher.store.posts import PostFields, create_post, mark_due_published, save_post
from publisher.store.subscribers import Subscriber, subscriber_at
from publisher.subscribers.consent import activate, erase
from publisher.subscribers.events import record_events
from tests.conftest import FIXED_NOW, present
from tests.webhook_receiver import Receiver, receiving
from tests.webhook_support import Clock, deliverer, endpoint, payloads


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


def person(store: Store, address: str) -> Subscriber:
    return add_pending(store, address, name=None, topics=(), ctx=CLI, now=FIXED_NOW)


def test_a_change_is_delivered_signed_without_token_or_secret(
    store: Store, receiver: Receiver
) -> None:
    _, secret = endpoint(store, receiver.url)
    someone = person(store, "ana@example.org")
    set_subscriber_status(store, someone.id, "active", action="confirm", ctx=CLI, now=FIXED_NOW)
    run = deliverer(store, Clock()).run_until_idle()
    assert run.delivered == 1
    (got,) = receiver.received
    verified = Webhook(secret).verify(got.body, got.headers)  # raises if the signature is wrong
    assert verified["type"] == "subscriber.confirmed"
    assert verified["data"]["subscriber"] == {
        "id": someone.id, "email": "ana@example.org", "status": "active",
    }  # fmt: skip
    assert verified["timestamp"] == "2026-11-25T12:00:00Z"
    assert someone.token not in got.body.decode() and secret not in got.body.decode()
    assert got.headers["webhook-id"] == f"msg_{verified_event_id(store)}_1"
    with pytest.raises(Exception, match="signature"):
        Webhook(webhooks.new_secret()).verify(got.body, got.headers)


def verified_event_id(store: Store) -> int:
    (endpoint_,) = webhooks.list_endpoints(store)
    return webhook_queue.deliveries(store, endpoint_.id)[0].event_id


def test_receiver_down_for_a_while_retries_then_delivers_in_order(
    store: Store, receiver: Receiver
) -> None:
    found, _ = endpoint(store, receiver.url)
    someone, other = person(store, "bo@example.org"), person(store, "cy@example.org")
    clock = Clock()
    set_subscriber_status(store, someone.id, "active", action="confirm", ctx=CLI, now=clock.now)
    set_subscriber_status(
        store, someone.id, "unsubscribed", action="unsubscribe", ctx=CLI, now=clock.now
    )
    receiver.status = 503
    sender = deliverer(store, clock)
    first = sender.run_until_idle()
    # only the first of bo's events was tried: the second waits behind it
    assert (first.retrying, first.delivered) == (1, 0)
    set_subscriber_status(store, other.id, "active", action="confirm", ctx=CLI, now=clock.now)
    receiver.status = 200
    assert sender.run_until_idle().delivered == 1  # cy's is not held up by bo's
    assert [p["data"]["subscriber"]["email"] for p in payloads(receiver)] == ["cy@example.org"]
    clock.now += BACKOFF[0]  # the retry is due
    assert sender.run_until_idle().delivered == 2
    bo = [
        p["type"]
        for p in payloads(receiver)
        if p["data"]["subscriber"]["email"] == "bo@example.org"
    ]
    assert bo == ["subscriber.confirmed", "subscriber.unsubscribed"]
    tried = webhook_queue.attempts(store, found.id)
    assert [(a.ok, a.status_code) for a in reversed(tried)] == [
        (False, 503), (True, 200), (True, 200), (True, 200),
    ]  # fmt: skip
    failed = tried[-1]
    assert failed.error == "HTTP 503" and failed.response is not None
    assert len(failed.response) <= 2000  # the answer is kept truncated
    sender.close()


def test_receiver_always_failing_disables_the_endpoint(store: Store, receiver: Receiver) -> None:
    found, _ = endpoint(store, receiver.url)
    someone = person(store, "di@example.org")
    set_subscriber_status(store, someone.id, "active", action="confirm", ctx=CLI, now=FIXED_NOW)
    receiver.status = 500
    clock = Clock()
    sender = deliverer(store, clock)
    for wait in (*BACKOFF, timedelta(0)):
        sender.run_until_idle()
        assert webhooks.get_endpoint(store, found.id).enabled == (wait != timedelta(0))
        clock.now += wait
    assert clock.now - FIXED_NOW > timedelta(hours=24)  # retried over about a day
    gone = webhooks.get_endpoint(store, found.id)
    assert gone.failed == 1 and "8 attempts failed" in (gone.disabled_reason or "")
    assert [e.id for e in webhooks.disabled_alerts(store)] == [found.id]
    assert len(webhook_queue.attempts(store, found.id)) == len(BACKOFF) + 1
    # turned back on and replayed: delivered
    receiver.status = 200
    webhooks.set_enabled(store, found.id, True, now=clock.now)
    assert webhook_queue.replay_failed_since(store, found.id, FIXED_NOW, now=clock.now) == 1
    assert sender.run_until_idle().delivered == 1
    assert webhooks.disabled_alerts(store) == []
    sender.close()


def test_events_while_an_endpoint_is_off_go_out_when_it_is_turned_on(
    store: Store, receiver: Receiver
) -> None:
    found, _ = endpoint(store, receiver.url)
    webhooks.set_enabled(store, found.id, False, now=FIXED_NOW)
    someone = person(store, "ida@example.org")
    set_subscriber_status(store, someone.id, "active", action="confirm", ctx=CLI, now=FIXED_NOW)
    sender = deliverer(store, Clock())
    assert sender.run_until_idle().delivered == 0 and receiver.received == []
    assert webhooks.get_endpoint(store, found.id).waiting == 1  # kept, not dropped
    webhooks.set_enabled(store, found.id, True, now=FIXED_NOW)
    assert sender.run_until_idle().delivered == 1
    assert [p["type"] for p in payloads(receiver)] == ["subscriber.confirmed"]
    sender.close()


def test_a_rolled_back_change_is_never_delivered(store: Store, receiver: Receiver) -> None:
    endpoint(store, receiver.url)
    someone = person(store, "ed@example.org")
    with pytest.raises(RuntimeError):
        with store.session() as session:
            outbox.subscriber_event(
                session, someone.id, "unsubscribed", FIXED_NOW, email=someone.email, via="cli"
            )
            raise RuntimeError("the change failed after its event was written")
    # an UPDATE that changes nothing reports nothing either
    set_subscriber_status(store, someone.id, "pending", action="x", ctx=CLI, now=FIXED_NOW)
    assert deliverer(store, Clock()).run_until_idle().delivered == 0
    assert receiver.received == [] and webhook_queue.state_counts(store) == {}


def test_two_deliverers_never_hold_the_same_delivery(store: Store, receiver: Receiver) -> None:
    endpoint(store, receiver.url)
    for n in range(6):
        someone = person(store, f"p{n}@example.org")
        set_subscriber_status(store, someone.id, "active", action="confirm", ctx=CLI, now=FIXED_NOW)
    lease = timedelta(minutes=2)
    one = webhook_queue.claim_due(store, holder="a", now=FIXED_NOW, lease=lease, limit=4)
    two = webhook_queue.claim_due(store, holder="b", now=FIXED_NOW, lease=lease, limit=10)
    assert len(one) == 4 and len(two) == 2
    assert not {d.delivery_id for d in one} & {d.delivery_id for d in two}
    # a holder that died: its lease lapses and another takes its deliveries
    later = FIXED_NOW + lease + timedelta(seconds=1)
    three = webhook_queue.claim_due(store, holder="c", now=later, lease=lease, limit=10)
    assert {d.delivery_id for d in three} == {d.delivery_id for d in one + two}


def test_replay_one_delivery_sends_it_again_with_the_same_id(
    store: Store, receiver: Receiver
) -> None:
    found, _ = endpoint(store, receiver.url)
    someone = person(store, "fa@example.org")
    set_subscriber_status(store, someone.id, "active", action="confirm", ctx=CLI, now=FIXED_NOW)
    sender = deliverer(store, Clock())
    sender.run_until_idle()
    (delivery,) = webhook_queue.deliveries(store, found.id)
    assert delivery.state == "delivered"
    assert webhook_queue.replay(store, found.id, delivery.id, now=FIXED_NOW)
    assert sender.run_until_idle().delivered == 1
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == 2 and ids[0] == ids[1]
    sender.close()
    # delivered ones are kept 30 days (the daemon prunes them), with their attempts
    assert webhook_queue.prune(store, before=FIXED_NOW) == 0
    assert webhook_queue.prune(store, before=FIXED_NOW + timedelta(seconds=1)) == 1
    assert webhook_queue.deliveries(store, found.id) == []
    assert webhook_queue.attempts(store, found.id) == []


def test_only_the_events_an_endpoint_wants(store: Store, receiver: Receiver) -> None:
    endpoint(store, receiver.url, ("subscriber.unsubscribed",))
    someone = person(store, "gu@example.org")
    set_subscriber_status(store, someone.id, "active", action="confirm", ctx=CLI, now=FIXED_NOW)
    set_subscriber_status(
        store, someone.id, "unsubscribed", action="unsubscribe", ctx=CLI, now=FIXED_NOW
    )
    deliverer(store, Clock()).run_until_idle()
    assert [p["type"] for p in payloads(receiver)] == ["subscriber.unsubscribed"]


@pytest.mark.parametrize(
    ("url", "private", "ok"),
    [
        ("https://hooks.example.org/in", False, True),
        ("http://hooks.example.org/in", False, False),
        ("http://127.0.0.1:9000/in", False, False),
        ("http://127.0.0.1:9000/in", True, True),
        ("http://localhost/in", True, True),
        ("https://10.0.0.5/in", True, False),
        ("https://192.168.1.1/in", True, False),
        ("https://10.0.0.5/in", False, False),
        ("https://169.254.169.254/latest", False, False),
        ("https://user:pw@example.org/", False, False),
        ("ftp://example.org/", False, False),
        ("not a url", False, False),
    ],
)
def test_endpoint_addresses(url: str, private: bool, ok: bool) -> None:
    if ok:
        assert check_url(url, allow_private=private) == url
    else:
        with pytest.raises(WebhookUrlInvalid):
            check_url(url, allow_private=private)


def test_a_public_name_resolving_to_a_private_address_is_refused_when_connecting(
    store: Store, receiver: Receiver
) -> None:
    found, _ = endpoint(store, receiver.url.replace("127.0.0.1", "localhost"))
    someone = person(store, "hu@example.org")
    set_subscriber_status(store, someone.id, "active", action="confirm", ctx=CLI, now=FIXED_NOW)
    closed = Deliverer(store, WebhooksConfig(), clock=Clock())
    assert closed.run_until_idle().retrying == 1
    assert receiver.received == []
    (attempt,) = webhook_queue.attempts(store, found.id)
    assert "not a public address" in (attempt.error or "")
    closed.close()


def test_every_change_reports_its_event(store: Store, receiver: Receiver) -> None:
    """Each store transaction that makes a reported change writes its event: a confirmation,
    a one-click unsubscribe, SendGrid's bounce and complaint, an erasure, a post published
    (saved, then by its date) and an edition sent (with counts). Nothing else is reported."""
    endpoint(store, receiver.url)
    now = FIXED_NOW
    ana, bo, cy, di = (person(store, f"{n}@example.org") for n in ("ana", "bo", "cy", "di"))
    for who in (ana, bo, cy, di):
        activate(store, who, action="confirm", ctx=CLI, now=now)
    fresh = present(subscriber_at(store, "ana@example.org"))
    assert unsubscribe_token(store, fresh.token, ctx=CLI, now=now) is not None
    record_events(
        store,
        [
            {"sg_event_id": "e1", "event": "bounce", "email": "bo@example.org", "timestamp": 1},
            {"sg_event_id": "e2", "event": "spamreport", "email": "cy@example.org", "timestamp": 1},
        ],
        now=now,
    )
    erase(store, present(subscriber_at(store, "di@example.org")), now=now)
    post = create_post(store, PostFields(title="Draft"), by="ed@example.org", now=now)
    save_post(
        store, post.id, PostFields(title="Out now"), version=1, status="published",
        by="ed@example.org", now=now,
    )  # fmt: skip
    create_post(
        store, PostFields(title="Later", date=now + timedelta(hours=1)), status="scheduled",
        by="ed@example.org", now=now,
    )  # fmt: skip
    mark_due_published(store, now=now + timedelta(hours=2))
    stored, _ = save_edition(
        store, NewEdition("weekly", 1, None, now, "Weekly #1", "", "<p>x</p>", "x", [])
    )
    ledger.set_edition_status(store, stored.id, "sent", sent_at=now)
    ledger.set_edition_status(store, stored.id, "sent")  # again: not reported twice
    deliverer(store, Clock(now + timedelta(hours=2))).run_until_idle()
    got = [(p["type"], _who(p["data"])) for p in payloads(receiver)]
    assert sorted(got) == sorted(
        [("subscriber.confirmed", f"{n}@example.org") for n in ("ana", "bo", "cy", "di")]
        + [
            ("subscriber.unsubscribed", "ana@example.org"),
            ("subscriber.bounced", "bo@example.org"),
            ("subscriber.complained", "cy@example.org"),
            ("subscriber.erased", None),
            ("post.published", "Out now"),
            ("post.published", "Later"),
            ("edition.sent", "weekly"),
        ]
    )
    sent = next(p for p in payloads(receiver) if p["type"] == "edition.sent")
    assert sent["data"]["edition"]["number"] == 1 and sent["data"]["counts"] == {}
    erased = next(p for p in payloads(receiver) if p["type"] == "subscriber.erased")
    assert erased["data"]["subscriber"]["id"] == di.id


def _who(data: dict) -> str | None:
    if "subscriber" in data:
        return data["subscriber"]["email"]
    if "post" in data:
        return data["post"]["title"]
    return data["edition"]["campaign"]


# --- a real daemon killed between the change and the delivery -------------------------------


@pytest.mark.slow
def test_a_daemon_killed_mid_delivery_delivers_after_restart(tmp_path, receiver: Receiver) -> None:
    """`publisher run` posts an event, the receiver never answers, the daemon is killed with
    SIGKILL before it records anything; a new daemon delivers it (at least once, same id)."""
    import signal

    from publisher.store import open_store
    from tests.conftest import write_config
    from tests.test_scheduler_seen import ended, start_daemon, wait_until_running

    (tmp_path / "content").mkdir()
    write_config(tmp_path, "webhooks:\n  allow_private_addresses: true\n  every_seconds: 0.5\n")
    url = f"sqlite:///{tmp_path}/kill.db"
    store = open_store(url)
    endpoint(store, receiver.url)
    someone = person(store, "ka@example.org")
    receiver.holding = True
    set_subscriber_status(store, someone.id, "active", action="confirm", ctx=CLI, now=FIXED_NOW)
    first, log_path = start_daemon(tmp_path, url, "first.log")
    try:
        wait_until_running(first, log_path)
        assert receiver.arrived.wait(60), log_path.read_text()  # posted, not yet answered
        first.send_signal(signal.SIGKILL)
        assert ended(first) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    (held,) = webhook_queue.deliveries(store, 1)
    assert held.state == "pending" and held.attempts == 0  # nothing recorded: in doubt
    receiver.holding = False
    receiver.release.set()
    second, log_path = start_daemon(tmp_path, url, "second.log")
    try:
        wait_until_running(second, log_path)
        deadline = time.monotonic() + 60
        while webhook_queue.deliveries(store, 1)[0].state != "delivered":
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)  # polling a real process's progress, not synchronising threads
    finally:
        second.send_signal(signal.SIGTERM)
        ended(second)
    (got,) = receiver.received
    assert json.loads(got.body)["type"] == "subscriber.confirmed"
    assert got.headers["webhook-id"] == "msg_1_1"
    store.close()


@pytest.mark.slow
def test_the_benchmark_runs_and_loses_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import webhooks as bench

    bench.main(["--events", "40", "--workers", "4"])
    out = capsys.readouterr().out
    assert "receiver: 40 distinct webhook-ids" in out and "lost 0" in out


def test_the_broadcast_hook_reports_in_the_callers_transaction(
    store: Store, receiver: Receiver
) -> None:
    """outbox.broadcast_sent is what the broadcast part calls inside the transaction that
    marks a broadcast sent: committed, it is delivered; rolled back, it never is."""
    endpoint(store, receiver.url)
    with pytest.raises(RuntimeError), store.session() as session:
        outbox.broadcast_sent(session, 6, FIXED_NOW, subject="Lost", counts={"sent": 1})
        raise RuntimeError("the broadcast's own change failed")
    with store.session() as session:
        outbox.broadcast_sent(session, 7, FIXED_NOW, subject="Rally", counts={"sent": 3})
    deliverer(store, Clock()).run_until_idle()
    (sent,) = payloads(receiver)
    assert sent == {
        "type": "broadcast.sent",
        "timestamp": "2026-11-25T12:00:00Z",
        "data": {"broadcast": {"id": 7, "subject": "Rally"}, "counts": {"sent": 3}},
    }
