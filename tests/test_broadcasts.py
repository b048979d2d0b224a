"""Broadcasts (issue 21) on SQLite and PostgreSQL: drafts under compare-and-set, schedule and
cancel, one claim among many, who the audience reaches (topics, exclusions, paused and
suppressed people), the send through the file outbox under the chosen sender, exactly
once, and the test send outside the ledger."""

from __future__ import annotations

import email
import threading
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from publisher.config import PublisherConfig, load_config
from publisher.deliver.broadcast_preview import render_broadcast, send_test_broadcast
from publisher.deliver.broadcasts import resume_broadcast, send_broadcast, send_broadcast_now
from publisher.errors import ConfigError, DeliveryError
from publisher.store import Store, ledger
from publisher.store.broadcasts import (
    Audience,
    BroadcastConflict,
    BroadcastDraft,
    BroadcastLocked,
    audience_count,
    cancel_broadcast,
    claim_broadcast,
    create_broadcast,
    due_broadcasts,
    get_broadcast,
    list_broadcasts,
    schedule_broadcast,
    update_broadcast,
)
from publisher.store.models import SubscriberPauseRow
from publisher.store.subscribers import find_subscriber
from publisher.store.suppression import suppress
from tests.broadcast_support import senders
from tests.conftest import FIXED_NOW, present, write_config
from tests.servers.data import add_subscribers

SENDERS = senders('"Test Org Action, \\"Now\\""')  # a display name that needs quoting
NOW = FIXED_NOW


def draft(**changes: object) -> BroadcastDraft:
    values: dict[str, object] = {
        "name": "Council vote tomorrow",
        "subject": "The council votes on rent tomorrow",
        "preheader": "Write to your councillor tonight",
        "sender": "action",
        "audience": Audience(topics=("housing",)),
        "body": "The council votes **tomorrow**.\n\nWrite to them tonight.",
        "cta_label": "Write to your councillor",
        "cta_url": "https://www.example.org/act",
    }
    values.update(changes)
    return BroadcastDraft(**values)  # type: ignore[arg-type]


@pytest.fixture
def config(project: Path) -> PublisherConfig:
    return load_config(write_config(project, SENDERS))


def people(store: Store) -> dict[str, list[str]]:
    """12 active people: 4 housing, 3 housing+transit, 3 transit, 2 with no topic (all)."""
    return {
        "housing": add_subscribers(store, NOW, 4, topics=("housing",)),
        "both": add_subscribers(store, NOW, 3, start=4, topics=("housing", "transit")),
        "transit": add_subscribers(store, NOW, 3, start=7, topics=("transit",)),
        "all": add_subscribers(store, NOW, 2, start=10),
    }


def pause_person(store: Store, address: str) -> None:
    person = present(find_subscriber(store, email=address))
    with store.session() as session:
        session.add(SubscriberPauseRow(subscriber_id=person.id, until=NOW + timedelta(days=9)))


def outbox(config: PublisherConfig, broadcast_id: int) -> dict[str, EmailMessage]:
    folder = config.resolve("outbox") / "broadcast" / str(broadcast_id)
    found = {}
    for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        found[message["To"].addresses[0].addr_spec] = message
    return found


# --- the store ----------------------------------------------------------------------------


def test_a_draft_changes_under_compare_and_set_and_locks_once_sending(store):
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    assert (made.status, made.version, made.slug) == ("draft", 1, "council-vote-tomorrow")
    again = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    assert again.slug == "council-vote-tomorrow-2"
    saved = update_broadcast(
        store, made.id, draft(subject="New subject"), version=1, by="bo@example.org", now=NOW
    )
    assert (saved.version, saved.draft.subject, saved.updated_by) == (
        2,
        "New subject",
        "bo@example.org",
    )
    with pytest.raises(BroadcastConflict) as stale:
        update_broadcast(store, made.id, draft(), version=1, by="ann@example.org", now=NOW)
    assert stale.value.current.version == 2
    assert present(get_broadcast(store, made.id)).draft.subject == "New subject"
    assert present(claim_broadcast(store, made.id, version=2, by="x", now=NOW)).status == "sending"
    with pytest.raises(BroadcastLocked):
        update_broadcast(store, made.id, draft(), version=3, by="ann@example.org", now=NOW)
    assert [b.id for b in list_broadcasts(store)] == [again.id, made.id]


def test_schedule_cancel_reschedule_and_what_is_due(store):
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    at = NOW + timedelta(hours=3)
    scheduled = schedule_broadcast(store, made.id, at, version=1, by="ann@example.org", now=NOW)
    assert (scheduled.status, scheduled.send_at) == ("scheduled", at)
    assert due_broadcasts(store, now=at - timedelta(seconds=1)) == []
    assert [b.id for b in due_broadcasts(store, now=at)] == [made.id]
    cancelled = cancel_broadcast(store, made.id, by="bo@example.org", now=NOW)
    assert (cancelled.status, cancelled.send_at) == ("draft", None)
    assert due_broadcasts(store, now=at) == []
    with pytest.raises(BroadcastLocked):
        cancel_broadcast(store, made.id, by="bo@example.org", now=NOW)
    later = at + timedelta(days=1)
    moved = schedule_broadcast(
        store, made.id, later, version=cancelled.version, by="ann@example.org", now=NOW
    )
    edited = update_broadcast(
        store, made.id, draft(body="Changed"), version=moved.version, by="a@x.org", now=NOW
    )
    assert (edited.status, edited.send_at, edited.draft.body) == ("scheduled", later, "Changed")


def test_of_many_claims_at_once_exactly_one_gets_the_broadcast(store):
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    schedule_broadcast(store, made.id, NOW, version=1, by="ann@example.org", now=NOW)
    won: list[object] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        got = claim_broadcast(store, made.id, by="daemon", now=NOW)
        if got is not None:
            won.append(got)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert claim_broadcast(store, made.id, by="daemon", now=NOW) is None


def test_the_audience_count_is_topics_minus_exclusions_paused_and_suppressed(store):
    group = people(store)
    assert audience_count(store, Audience(), now=NOW) == 12
    # housing followers, and those who chose no topic (they follow everything)
    assert audience_count(store, Audience(("housing",)), now=NOW) == 4 + 3 + 2
    assert audience_count(store, Audience(("housing",), ("transit",)), now=NOW) == 4 + 2
    assert audience_count(store, Audience((), ("housing",)), now=NOW) == 3 + 2
    pause_person(store, group["housing"][0])
    suppress(store, group["all"][0], reason="bounced", source="test", now=NOW)
    add_subscribers(store, NOW, 1, start=20, topics=("housing",), status="unsubscribed")
    assert audience_count(store, Audience(("housing",), ("transit",)), now=NOW) == 3 + 1
    assert audience_count(store, Audience(("housing",)), now=NOW + timedelta(days=10)) == 8


def test_senders_are_checked_and_the_organisation_is_always_one(project):
    config = load_config(write_config(project, SENDERS))
    assert [s.name for s in config.sender_choices()] == ["organisation", "action"]
    assert config.sender("organisation").from_email == "news@example.org"
    assert config.sender("action").reply_to == "organisers@example.org"
    with pytest.raises(ConfigError, match="unknown sender 'nope'"):
        config.sender("nope")
    clash = SENDERS.replace("name: action", "name: organisation")
    with pytest.raises(ConfigError, match="organisation"):
        load_config(write_config(project, clash))
    with pytest.raises(ConfigError, match="header"):
        load_config(write_config(project, SENDERS.replace("Now", "Now\\nBcc: x@y.org")))


# --- rendering and sending ----------------------------------------------------------------


def test_the_send_reaches_the_audience_once_under_the_chosen_sender(store, config):
    group = people(store)
    pause_person(store, group["housing"][0])
    suppress(store, group["all"][0], reason="bounced", source="test", now=NOW)
    audience = Audience(("housing",), ("transit",))
    made = create_broadcast(store, draft(audience=audience), by="ann@example.org", now=NOW)
    expected = audience_count(store, audience, now=NOW)
    report = send_broadcast(config, store, made.id, by="ann@example.org", now=NOW)
    sent = outbox(config, made.id)
    assert sorted(sent) == sorted([*group["housing"][1:], group["all"][1]])
    assert len(sent) == expected == report.sent == 4
    message = sent[group["housing"][1]]
    assert message["Subject"] == "The council votes on rent tomorrow"
    assert message["From"].addresses[0].addr_spec == "action@example.org"
    assert message["From"].addresses[0].display_name == 'Test Org Action, "Now"'
    assert str(message["Reply-To"]) == "organisers@example.org"
    assert "unsubscribe?token=" in str(message["List-Unsubscribe"])
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "The council votes **tomorrow**." in text and "https://www.example.org/act" in text
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<strong>tomorrow</strong>" in html and "Write to your councillor" in html
    after = present(get_broadcast(store, made.id))
    assert after.status == "sent" and after.edition_id == report.edition_id
    totals = ledger.counts(store, report.edition_id)
    assert (
        totals[ledger.SENT] == 4 and totals[ledger.SKIPPED] == 1 + 1 + 3
    )  # paused, suppressed, excluded
    with pytest.raises(DeliveryError, match="cannot be sent again"):
        send_broadcast(config, store, made.id, by="ann@example.org", now=NOW)
    with pytest.raises(DeliveryError, match="nothing to resume"):
        resume_broadcast(config, store, made.id, by="ann@example.org", now=NOW)
    assert len(outbox(config, made.id)) == 4


def test_send_now_claims_before_it_returns_and_sends_when_its_send_runs(store, config):
    """The edges' send now (admin page, API): claimed before the answer, so a second
    request is refused at once; nothing is sent until the returned send runs, once."""
    group = people(store)
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    clock = lambda: NOW  # noqa: E731
    claimed, send = send_broadcast_now(
        config, store, made.id, by="ann@example.org", version=1, clock=clock
    )
    assert claimed.status == "sending" == present(get_broadcast(store, made.id)).status
    assert outbox(config, made.id) == {} and claimed.edition_id is None  # nothing yet
    with pytest.raises(DeliveryError, match="is sending: its send started"):
        send_broadcast_now(config, store, made.id, by="bo@x.org", version=1, clock=clock)
    send()
    reached = group["housing"] + group["both"] + group["all"]  # following housing
    assert sorted(outbox(config, made.id)) == sorted(reached)
    assert present(get_broadcast(store, made.id)).status == "sent"


def test_send_now_refuses_what_cannot_go_before_claiming(store, config):
    people(store)
    bad = create_broadcast(store, draft(sender="nobody"), by="ann@example.org", now=NOW)
    with pytest.raises(DeliveryError, match="cannot go: the sender 'nobody'"):
        send_broadcast_now(
            config, store, bad.id, by="ann@example.org", version=1, clock=lambda: NOW
        )
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    update_broadcast(store, made.id, draft(body="Changed"), version=1, by="bo@x.org", now=NOW)
    with pytest.raises(DeliveryError, match="changed by bo@x.org"):
        send_broadcast_now(
            config, store, made.id, by="ann@example.org", version=1, clock=lambda: NOW
        )
    assert [present(get_broadcast(store, b)).status for b in (bad.id, made.id)] == ["draft"] * 2


def test_a_test_send_is_marked_and_leaves_the_real_send_untouched(store, config):
    people(store)
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    send_test_broadcast(config, store, made, ["staff@example.org"], now=NOW)
    tests = outbox(config, made.id)
    assert list(tests) == ["staff@example.org"]
    assert tests["staff@example.org"]["Subject"] == "[Test] The council votes on rent tomorrow"
    assert present(get_broadcast(store, made.id)).status == "draft"
    report = send_broadcast(config, store, made.id, by="ann@example.org", now=NOW)
    assert report.sent == 9


def test_the_preview_renders_markdown_sanitised_and_staff_text_as_written(store, config):
    hostile = '<b>{{ 7*7 }}</b> & "quoted" %%NAME%%'
    body = "Hello <script>alert(1)</script> [act](javascript:alert(1)) **now**"
    made = create_broadcast(store, draft(subject=hostile, body=body), by="a@x.org", now=NOW)
    rendered = render_broadcast(config, store, made, now=NOW)
    assert "<script" not in rendered.html and "alert(1)</script>" not in rendered.html
    assert 'href="javascript' not in rendered.html  # left as text, never a link
    assert "<strong>now</strong>" in rendered.html
    assert "&lt;b&gt;{{ 7*7 }}&lt;/b&gt;" in rendered.html and "%%NAME%%" not in rendered.subject
    assert "49" not in rendered.subject


def test_due_broadcasts_go_at_their_time_once_and_are_audited(store, config):
    from publisher.deliver.broadcasts import send_due_broadcasts
    from publisher.store.audit import recent

    group = people(store)
    made = create_broadcast(
        store, draft(audience=Audience(("housing",), ("transit",))), by="a", now=NOW
    )
    at = NOW + timedelta(hours=1)
    schedule_broadcast(store, made.id, at, version=1, by="ann@example.org", now=NOW)
    assert send_due_broadcasts(config, store, now=at - timedelta(minutes=1)).sent == []
    assert outbox(config, made.id) == {}
    report = send_due_broadcasts(config, store, now=at)
    assert report.sent == [(made.id, "sent")] and "sent" in report.note
    assert sorted(outbox(config, made.id)) == sorted(group["housing"] + group["all"])
    assert send_due_broadcasts(config, store, now=at + timedelta(minutes=1)).sent == []
    assert present(get_broadcast(store, made.id)).updated_by == "scheduler"
    assert any(e.action == "broadcast sent" for e in recent(store))


def test_a_send_of_a_version_that_moved_on_is_refused(store, config):
    people(store)
    made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
    update_broadcast(store, made.id, draft(body="Changed"), version=1, by="bo@x.org", now=NOW)
    with pytest.raises(DeliveryError, match="changed by bo@x.org"):
        send_broadcast(config, store, made.id, by="ann@example.org", now=NOW, version=1)
    assert outbox(config, made.id) == {}
    assert present(get_broadcast(store, made.id)).status == "draft"


def test_a_draft_that_cannot_go_is_refused_before_anything_is_sent(store, config):
    from publisher.deliver.broadcast_preview import draft_problems

    people(store)
    bad = draft(subject="Vote\r\nBcc: x@y.org", sender="nobody", cta_url=None)
    assert draft_problems(config, bad) == [
        "the subject must be one line (it contains control characters)",
        "the sender 'nobody' is not configured (senders:)",
        "the button needs both a label and an address",
    ]
    assert draft_problems(config, draft(cta_url="javascript:alert(1)")) == [
        "the button's address must start with https:// or http://"
    ]
    assert draft_problems(config, draft()) == []
    made = create_broadcast(store, bad, by="ann@example.org", now=NOW)
    with pytest.raises(DeliveryError, match="cannot go: the subject must be one line"):
        send_broadcast(config, store, made.id, by="ann@example.org", now=NOW)
    with pytest.raises(DeliveryError, match="cannot go"):
        send_test_broadcast(config, store, made, ["staff@example.org"], now=NOW)
    assert outbox(config, made.id) == {}
    assert present(get_broadcast(store, made.id)).status == "draft"


def test_a_sent_broadcast_is_reported_to_webhooks_as_a_broadcast_once(store, config):
    from tests.webhook_receiver import receiving
    from tests.webhook_support import Clock, deliverer, endpoint, payloads

    with receiving() as receiver:
        endpoint(store, receiver.url, ("broadcast.sent", "edition.sent"))
        people(store)
        made = create_broadcast(store, draft(), by="ann@example.org", now=NOW)
        report = send_broadcast(config, store, made.id, by="ann@example.org", now=NOW)
        deliverer(store, Clock(NOW)).run_until_idle()
        (sent,) = payloads(receiver)  # not also reported as a digest's edition
    assert sent["type"] == "broadcast.sent"
    assert sent["data"]["broadcast"] == {"id": made.id, "subject": made.draft.subject}
    assert sent["data"]["counts"]["sent"] == report.sent > 0
