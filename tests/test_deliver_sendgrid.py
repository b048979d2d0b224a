"""SendGrid backend against a local SendGrid-compatible server that validates every body."""

from __future__ import annotations

import logging

import pytest

from publisher.deliver import deliver_edition, make_backend, send_test_message
from publisher.deliver.sendgrid import HTML_NAME
from publisher.errors import DeliveryError
from publisher.store import ledger
from publisher.store.subscribers import set_status
from tests.servers.data import add_edition, add_subscribers, config_text
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


def test_2500_subscribers_take_exactly_3_requests_each_once(store, sendgrid_config, server,
                                                            fixed_now):
    config = sendgrid_config()
    emails = add_subscribers(store, fixed_now, 2500)
    edition = add_edition(store, fixed_now)
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert len(server.requests) == 3
    assert sorted(server.recipients) == sorted(emails)
    assert report.sent == 2500 and report.failed == 0 and report.batches == 3
    assert server.rejected == []
    assert ledger.counts(store, edition) == {"sent": 2500}


def test_request_body_carries_substitutions_headers_and_ids(store, sendgrid_config, server,
                                                            fixed_now):
    config = sendgrid_config(extra="    asm_group_id: 42\n    sandbox_mode: true\n")
    add_subscribers(store, fixed_now, 2)
    edition = add_edition(store, fixed_now)
    deliver_edition(config, store, edition, now=fixed_now)
    body = server.requests[0].body
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert "%%NAME%%" in body["content"][0]["value"]
    assert HTML_NAME in body["content"][1]["value"]
    assert body["custom_args"] == {"edition_id": str(edition), "campaign": "weekly",
                                   "batch": f"{edition}-1"}
    assert body["categories"] == ["weekly"]
    assert body["asm"] == {"group_id": 42}
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["headers"]["List-Id"] == '"Economic Justice Weekly" <weekly.www.example.org>'
    first = body["personalizations"][0]
    token = first["substitutions"]["%%UNSUBSCRIBE_URL%%"].split("token=")[1]
    assert first["substitutions"]["%%NAME%%"] == "Person 0"
    assert first["headers"]["List-Unsubscribe"] == (
        f"<https://www.example.org/news/unsubscribe?token={token}>, "
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


def test_api_key_never_logged_or_in_errors(store, sendgrid_config, server, fixed_now, caplog,
                                           capsys, monkeypatch):
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
    assert send_test_message(config, store, edition, "editor@example.net", now=fixed_now) is None
    assert server.recipients == ["editor@example.net"]
    assert ledger.counts(store, edition) == {}


def test_backoff_grows_with_jitter_and_honours_retry_after():
    from publisher.deliver.dispatch import RetryPolicy

    policy = RetryPolicy(max_attempts=5, backoff_base=0.5, backoff_max=4.0)
    assert policy.delay(1, None, rng=lambda: 0.0) == 0.25
    assert policy.delay(3, None, rng=lambda: 1.0) == 2.0
    assert policy.delay(10, None, rng=lambda: 1.0) == 4.0  # capped
    assert policy.delay(1, 7.0, rng=lambda: 1.0) == 7.0  # never sooner than Retry-After


def test_a_name_too_long_for_substitutions_fails_alone(store, sendgrid_config, server,
                                                        fixed_now):
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
        deliver_edition(config, store, edition, now=fixed_now,
                        send_at=fixed_now + timedelta(hours=73))
    later = fixed_now + timedelta(hours=2)
    deliver_edition(config, store, edition, now=fixed_now, send_at=later)
    assert server.requests[0].body["send_at"] == int(later.timestamp())
