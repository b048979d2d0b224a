"""SendGrid backend against a local SendGrid-compatible server that validates every body."""

from __future__ import annotations

import logging
from typing import cast

import pytest

from publisher.deliver import deliver_edition, make_backend, send_test_message
from publisher.deliver.backends.sendgrid import HTML_NAME, SendGridBackend
from publisher.errors import DeliveryError
from publisher.store import ledger
from publisher.store.editions import get_edition
from publisher.store.numbers import link_key
from publisher.store.subscribers import iter_subscribers, set_status
from publisher.support.marks import edition_mark
from tests.conftest import present
from tests.servers.data import add_edition, add_subscribers, add_subscribers_fast, config_text
from tests.servers.sendgrid import FakeSendGrid

API_KEY = "SG.test-key-never-print-me"


@pytest.fixture
def server():
    with FakeSendGrid(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def sendgrid_config(make_config, server, monkeypatch):
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)

    def _make(audience: str = "[]", extra: str = ""):
        timeout = "" if "timeout" in extra else "    timeout: 2\n"
        options = f"  sendgrid:\n    host: {server.url}\n{timeout}{extra}"
        return make_config(config_text("sendgrid", audience, options))

    return _make


def test_2500_subscribers_take_exactly_3_requests_each_once(
    store, sendgrid_config, server, fixed_now
):
    config = sendgrid_config()
    emails = add_subscribers(store, fixed_now, 2500)
    edition = add_edition(store, fixed_now)
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert len(server.requests) == 3
    assert sorted(server.recipients) == sorted(emails)
    assert report.sent == 2500 and report.failed == 0 and report.batches == 3
    assert server.rejected == []
    assert ledger.counts(store, edition) == {"sent": 2500}


def test_request_body_carries_substitutions_headers_and_ids(
    store, sendgrid_config, server, fixed_now
):
    config = sendgrid_config(extra="    asm_group_id: 42\n    sandbox_mode: true\n")
    add_subscribers(store, fixed_now, 2)
    edition = add_edition(store, fixed_now)
    deliver_edition(config, store, edition, now=fixed_now)
    body = server.requests[0].body
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert "%%NAME%%" in body["content"][0]["value"]
    assert HTML_NAME in body["content"][1]["value"]
    assert body["custom_args"] == {
        "edition_id": str(edition),
        "campaign": "weekly",
        "batch": f"{edition}-1",
    }
    assert body["categories"] == ["weekly"]
    assert body["asm"] == {"group_id": 42}
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["headers"]["List-Id"] == '"Economic Justice Weekly" <weekly.www.example.org>'
    first = body["personalizations"][0]
    token, mark = first["substitutions"]["%%UNSUBSCRIBE_URL%%"].split("token=")[1].split("&e=")
    person = next(s for s in iter_subscribers(store) if s.token == token)
    assert mark == edition_mark(link_key(store, now=fixed_now), edition, person.id)
    assert first["substitutions"]["%%PREFERENCES_URL%%"].endswith(f"?token={token}&e={mark}")
    assert first["substitutions"]["%%NAME%%"] == "Person 0"
    assert first["headers"]["List-Unsubscribe"] == (
        f"<https://www.example.org/news/unsubscribe?token={token}&e={mark}>, "
        f"<mailto:news@example.org?subject=unsubscribe%20{token}>"
    )
    ids = {p["headers"]["Message-ID"] for p in body["personalizations"]}
    assert len(ids) == 2


def test_html_name_is_escaped_in_html_only(store, sendgrid_config, server, fixed_now):
    from publisher.store.subscribers import SubscriberInput, import_subscribers

    config = sendgrid_config()
    import_subscribers(store, [SubscriberInput("ann@example.org", "Ann & <Bob>")], now=fixed_now)
    deliver_edition(config, store, add_edition(store, fixed_now), now=fixed_now)
    subs = server.requests[0].body["personalizations"][0]["substitutions"]
    assert subs["%%NAME%%"] == "Ann & <Bob>"
    assert subs[HTML_NAME] == "Ann &amp; &lt;Bob&gt;"


def test_audience_and_inactive_subscribers(store, sendgrid_config, server, fixed_now):
    config = sendgrid_config(audience="[wages]")
    wages = add_subscribers(store, fixed_now, 3, topics=("wages",))
    add_subscribers(store, fixed_now, 2, start=10, topics=("housing",))
    everything = add_subscribers(store, fixed_now, 2, start=20)  # no topics: everything
    add_subscribers(store, fixed_now, 2, start=30, status="unsubscribed")
    add_subscribers(store, fixed_now, 1, start=40, status="bounced")
    add_subscribers(store, fixed_now, 1, start=50, status="complained")
    deliver_edition(config, store, add_edition(store, fixed_now), now=fixed_now)
    assert sorted(server.recipients) == sorted(wages + everything)


def test_429_with_retry_after_and_500_are_retried(store, sendgrid_config, server, fixed_now):
    server.plan = [429, 500]
    config = sendgrid_config()
    emails = add_subscribers(store, fixed_now, 10)
    report = deliver_edition(config, store, add_edition(store, fixed_now), now=fixed_now)
    assert server.seen_statuses == [429, 500, 202]
    assert sorted(server.recipients) == sorted(emails)
    assert report.sent == 10 and report.requests == 3


def test_400_fails_the_batch_with_sendgrids_text_and_resume_retries(
    store, sendgrid_config, server, fixed_now
):
    server.plan = [400]
    config = sendgrid_config()
    emails = add_subscribers(store, fixed_now, 10)
    edition = add_edition(store, fixed_now)
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert report.failed == 10 and report.sent == 0
    assert "planned failure 400" in report.failures[0][1]
    assert server.seen_statuses == [400]  # not retried
    again = deliver_edition(config, store, edition, now=fixed_now)
    assert again.sent == 10
    assert sorted(server.recipients) == sorted(emails)


def test_413_splits_the_batch(store, sendgrid_config, server, fixed_now):
    server.too_large_over = 300
    config = sendgrid_config()
    emails = add_subscribers(store, fixed_now, 1000)
    report = deliver_edition(config, store, add_edition(store, fixed_now), now=fixed_now)
    assert report.sent == 1000 and report.failed == 0
    assert sorted(server.recipients) == sorted(emails)
    assert all(len(r.body["personalizations"]) <= 300 for r in server.requests)


def test_a_413_at_every_batch_size_pauses_after_a_bounded_number_of_requests(
    store, sendgrid_config, server, fixed_now
):
    server.too_large_over = 0  # the message itself is too large: 413 even for one recipient
    config = sendgrid_config(extra="    workers: 2\n")  # batches of 1,000
    emails = add_subscribers_fast(store, fixed_now, 5000)
    edition = add_edition(store, fixed_now)
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert report.paused and report.sent == 0, report.note
    assert "413" in report.note and "--resume" in report.note
    # Each failed batch halves down to one recipient once (1,000 -> 1: 10 requests), not
    # 1,999 times; three failed batches pause, and the two workers had at most one more each.
    assert len(server.seen_statuses) == report.requests <= 5 * 11, report.requests
    assert ledger.counts(store, edition).get("sent", 0) == 0
    server.too_large_over = None  # fixed (a smaller message): the resume sends everyone once
    again = deliver_edition(config, store, edition, now=fixed_now)
    assert again.sent == 5000 and not again.paused
    assert sorted(server.recipients) == sorted(emails)


def test_failed_batches_pause_the_edition(store, sendgrid_config, server, fixed_now):
    server.plan = [401] * 10
    config = sendgrid_config(extra="    batch_size: 10\n    workers: 1\n")
    add_subscribers(store, fixed_now, 100)
    edition = add_edition(store, fixed_now)
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert report.paused
    assert report.batches == 3 and report.failed == 30
    assert "--resume" in report.note
    server.plan = []
    again = deliver_edition(config, store, edition, now=fixed_now)
    assert again.sent == 100 and not again.paused
    assert len(set(server.recipients)) == 100 == len(server.recipients)


def test_hang_is_uncertain_never_resent_unless_asked(store, sendgrid_config, server, fixed_now):
    server.plan = ["hang"]
    config = sendgrid_config(extra="    timeout: 0.5\n    batch_size: 5\n    workers: 1\n")
    emails = add_subscribers(store, fixed_now, 10)
    edition = add_edition(store, fixed_now)
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert report.uncertain == 5 and report.sent == 5
    assert len(server.recipients) == 5  # the hung request was never recorded
    assert deliver_edition(config, store, edition, now=fixed_now).sent == 0
    again = deliver_edition(config, store, edition, now=fixed_now, resend_uncertain=True)
    assert again.sent == 5
    assert sorted(server.recipients) == sorted(emails)


def test_unsubscribed_between_runs_is_never_sent(store, sendgrid_config, server, fixed_now):
    server.plan = [500] * 5  # first batch gives up after max_attempts
    config = sendgrid_config(extra="    batch_size: 2\n    workers: 1\n")
    add_subscribers(store, fixed_now, 2)
    edition = add_edition(store, fixed_now)
    deliver_edition(config, store, edition, now=fixed_now)
    assert server.recipients == []
    token = server.rejected or None
    del token
    from publisher.store.subscribers import iter_subscribers

    first = next(iter_subscribers(store))
    set_status(store, token=first.token, status="unsubscribed", now=fixed_now)
    deliver_edition(config, store, edition, now=fixed_now)
    assert server.recipients == ["person1@example.org"]
    assert ledger.counts(store, edition) == {"sent": 1, "skipped": 1}


def test_api_key_never_logged_or_in_errors(
    store, sendgrid_config, server, fixed_now, caplog, capsys, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY + "-wrong")
    config = sendgrid_config()
    add_subscribers(store, fixed_now, 3)
    report = deliver_edition(config, store, add_edition(store, fixed_now), now=fixed_now)
    assert report.failed == 3 and "401" in report.failures[0][1]
    captured = capsys.readouterr()
    everything = caplog.text + captured.out + captured.err + report.note + str(report.failures)
    assert API_KEY not in everything
    assert API_KEY not in repr(make_backend(config))


def test_missing_key_is_a_clear_error(sendgrid_config, monkeypatch):
    config = sendgrid_config()
    monkeypatch.delenv("SENDGRID_API_KEY")
    with pytest.raises(DeliveryError, match="SENDGRID_API_KEY"):
        make_backend(config)


def test_test_send_leaves_the_ledger_alone(store, sendgrid_config, server, fixed_now):
    config = sendgrid_config()
    add_subscribers(store, fixed_now, 3)
    edition = add_edition(store, fixed_now)
    stored = present(get_edition(store, edition))
    assert send_test_message(config, store, stored, "editor@example.net", now=fixed_now) is None
    assert server.recipients == ["editor@example.net"]
    assert ledger.counts(store, edition) == {}


def test_backoff_grows_with_jitter_and_honours_retry_after():
    from publisher.deliver.dispatch import RetryPolicy

    policy = RetryPolicy(max_attempts=5, backoff_base=0.5, backoff_max=4.0)
    assert policy.delay(1, None, rng=lambda: 0.0) == 0.25
    assert policy.delay(3, None, rng=lambda: 1.0) == 2.0
    assert policy.delay(10, None, rng=lambda: 1.0) == 4.0  # capped
    assert policy.delay(1, 7.0, rng=lambda: 1.0) == 7.0  # never sooner than Retry-After


def test_a_name_too_long_for_substitutions_fails_alone(store, sendgrid_config, server, fixed_now):
    from publisher.store.subscribers import SubscriberInput, import_subscribers

    config = sendgrid_config()
    import_subscribers(store, [SubscriberInput("long@example.org", "N" * 6000)], now=fixed_now)
    emails = add_subscribers(store, fixed_now, 3)
    report = deliver_edition(config, store, add_edition(store, fixed_now), now=fixed_now)
    assert report.sent == 3 and report.failed == 1
    assert report.failures == [("long@example.org", "substitutions exceed 10,000 bytes")]
    assert sorted(server.recipients) == sorted(emails) and server.rejected == []


def test_send_at_is_passed_and_bounded(store, sendgrid_config, server, fixed_now):
    from datetime import timedelta

    config = sendgrid_config()
    add_subscribers(store, fixed_now, 2)
    edition = add_edition(store, fixed_now)
    with pytest.raises(DeliveryError, match="72 hours"):
        deliver_edition(
            config, store, edition, now=fixed_now, send_at=fixed_now + timedelta(hours=73)
        )
    later = fixed_now + timedelta(hours=2)
    deliver_edition(config, store, edition, now=fixed_now, send_at=later)
    assert server.requests[0].body["send_at"] == int(later.timestamp())


def test_connection_dropped_after_the_request_is_uncertain_never_resent(
    store, sendgrid_config, server, fixed_now
):
    """The provider read (and accepted) the request, then the connection dropped without an
    answer (RemoteDisconnected after the body was sent): uncertain, not retried, no copy 2."""
    server.plan = ["drop"]
    config = sendgrid_config(extra="    batch_size: 5\n    workers: 1\n")
    emails = add_subscribers(store, fixed_now, 10)
    edition = add_edition(store, fixed_now)
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert server.seen_statuses == ["drop", 202]  # the dropped request was not sent again
    assert report.uncertain == 5 and report.sent == 5 and report.requests == 2
    assert sorted(server.recipients) == sorted(emails)  # everyone exactly once
    assert ledger.counts(store, edition) == {"sent": 5, "uncertain": 5}
    assert deliver_edition(config, store, edition, now=fixed_now).sent == 0
    assert len(server.recipients) == 10


def test_connection_refused_before_sending_is_retried(store, make_config, monkeypatch, fixed_now):
    """Nothing listens: the request was never written, so it is retried (then fails), and
    the rows are `failed`, not `uncertain`: a resume sends them."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    options = f"  sendgrid:\n    host: http://127.0.0.1:{closed_port}\n    workers: 1\n"
    config = make_config(config_text("sendgrid", delivery=options))
    add_subscribers(store, fixed_now, 3)
    edition = add_edition(store, fixed_now)
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert report.requests == config.delivery.max_attempts
    assert report.failed == 3 and report.uncertain == 0
    assert "cannot reach" in report.failures[0][1]
    assert ledger.counts(store, edition) == {"failed": 3}


def test_the_ledger_hears_requested_before_each_attempt_and_inflight_after_a_refusal():
    from publisher.deliver.base import DeliveryBackend, Recipient, TransientError, UncertainError
    from publisher.deliver.dispatch import RetryPolicy, send_with_retries

    answers = [TransientError("429", retry_after=30), None, UncertainError("no answer")]
    marks: list[str | float] = []

    class Backend:  # all the retry loop uses of a DeliveryBackend: encode and send
        def encode(self, prepared, recipients, batch_key):
            return None

        def send(self, prepared, encoded, recipients, hooks, scheduled=None):
            hooks.writing(recipients)  # the backend says when its bytes are written
            answer = answers.pop(0)
            if answer:
                raise answer
            return {}

    people = [Recipient(i, f"p{i}@example.org", None, "t", "https://x") for i in (1, 2)]
    policy = RetryPolicy(max_attempts=3)
    outcome = send_with_retries(
        cast(DeliveryBackend, Backend()),
        None,
        people,
        "1-1",
        policy,
        sleep=marks.append,
        mark=lambda part, status, scheduled, accepted: marks.append(status),
    )
    assert marks == ["requested", "inflight", 30, "requested"]
    assert outcome.uncertain == [] and outcome.requests == 2
    outcome = send_with_retries(
        cast(DeliveryBackend, Backend()),
        None,
        people,
        "1-2",
        policy,
        sleep=marks.append,
        mark=lambda part, status, scheduled, accepted: marks.append(status),
    )
    assert marks[4:] == ["requested"]  # no answer: left requested, never resent
    assert outcome.uncertain == [1, 2]


def test_a_retry_skips_who_stopped_following_the_campaign(
    store, sendgrid_config, server, fixed_now
):
    """A failed batch is retried only for subscribers still in the audience: one of them
    changed topics between the runs (and one unsubscribed), neither gets the retry."""
    from publisher.store.subscribers import SubscriberInput, import_subscribers

    server.plan = [500] * 5  # the batch gives up after max_attempts
    config = sendgrid_config(audience="[wages]")
    add_subscribers(store, fixed_now, 3, topics=("wages",))
    edition = add_edition(store, fixed_now)
    assert deliver_edition(config, store, edition, now=fixed_now).failed == 3
    assert server.recipients == []
    import_subscribers(
        store, [SubscriberInput("person0@example.org", "Person 0", ("housing",))], now=fixed_now
    )
    token = next(s.token for s in iter_subscribers(store) if s.email == "person1@example.org")
    set_status(store, token=token, status="unsubscribed", now=fixed_now)
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert server.recipients == ["person2@example.org"]
    assert report.sent == 1
    assert ledger.counts(store, edition) == {"sent": 1, "skipped": 2}


def test_the_body_built_ahead_is_exactly_the_documented_body(
    store, sendgrid_config, fixed_now, monkeypatch
):
    """The dispatcher sends `encode`'s text (built once, ahead of the workers); it must be
    the JSON of `build_body`, refused recipients included, for any name."""
    import json

    from publisher.deliver import Recipient
    from publisher.deliver.service import build_message
    from publisher.store.editions import get_edition

    monkeypatch.setattr(
        "publisher.deliver.backends.sendgrid_body.secrets.token_hex", lambda n: "ab" * n
    )
    config = sendgrid_config()
    edition = add_edition(store, fixed_now)
    backend = make_backend(config)
    assert isinstance(backend, SendGridBackend)
    prepared = backend.prepare(
        build_message(config, present(get_edition(store, edition)), now=fixed_now)
    )
    names = ["Ann", None, 'Zoë "Z" <z@x>', "ü" * 20_000, "%%NAME%% x", "y" * 1500]  # 4th: too long
    recipients = [
        Recipient(
            n,
            f"p{n}@example.org",
            name,
            f"tok{n}",
            "https://www.example.org/news",
            f"7.{n:016d}" if n % 2 else "",  # with an edition mark, and without
        )  # fmt: skip
        for n, name in enumerate(names, start=1)
    ]
    body, refused = backend.build_body(prepared, recipients, "7-1")
    encoded = backend.encode(prepared, recipients, "7-1")
    assert json.loads(present(encoded.body)) == body
    assert encoded.body == json.dumps(body)  # the same text, written without json.dumps
    assert dict(encoded.refused) == refused and list(refused) == [4]
    assert body["personalizations"][0]["headers"]["List-Unsubscribe"].startswith(
        "<https://www.example.org/news/unsubscribe?token=tok1&e=7.0000000000000001>, "
    )
    backend.close()
