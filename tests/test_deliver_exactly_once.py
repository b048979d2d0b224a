"""Exactly-once mode on SendGrid (`sendgrid.exactly_once`), against the local server's Cancel
Scheduled Sends API (tests/servers/scheduled.py) with a clock the tests set: batch ids
recorded before the request, unknown batches cancelled and resent, too late -> uncertain,
the 10-cancellation limit, cancellations deleted once their send_at passed."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from publisher.deliver import deliver_edition
from publisher.store import ledger
from publisher.store.models import DeliveryBatchRow
from tests.servers.data import add_edition, add_subscribers, config_text
from tests.servers.sendgrid import FakeSendGrid

API_KEY = "SG.exactly-once-key"


@pytest.fixture
def server(fixed_now):
    with FakeSendGrid(api_key=API_KEY) as s:
        s.clock = lambda: fixed_now.timestamp()  # the server's now is the send's now
        yield s


@pytest.fixture
def config(make_config, server, monkeypatch):
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    options = (
        f"  sendgrid:\n    host: {server.url}\n    workers: 4\n    batch_size: 10\n"
        "    exactly_once: true\n    timeout: 2\n"
    )
    return make_config(config_text("sendgrid", delivery=options))


def _batches(store, edition):
    with store.session() as session:
        return {
            b.number: (b.status, b.provider_id, b.send_at)
            for b in session.query(DeliveryBatchRow).filter_by(edition_id=edition)
        }


def test_every_batch_has_its_own_batch_id_and_a_send_at_the_hold_ahead(
    store, config, server, fixed_now
):
    emails = add_subscribers(store, fixed_now, 35)
    edition = add_edition(store, fixed_now)
    report = deliver_edition(config, store, edition, now=fixed_now, elapsed=lambda: 0.0)
    assert report.sent == 35 and report.status == "sent" and report.exit_code == 0
    ids = [r.batch_id for r in server.requests]
    assert len(ids) == 4 and len(set(ids)) == 4 and all(ids)
    hold = fixed_now + timedelta(minutes=15)
    assert {r.send_at for r in server.requests} == {int(hold.timestamp())}
    recorded = _batches(store, edition)
    assert sorted(p for _, p, _ in recorded.values()) == sorted(ids)
    assert {s for s, _, _ in recorded.values()} == {"accepted"}
    assert sorted(server.delivered()) == sorted(emails)


def test_a_batch_without_an_answer_is_cancelled_and_sent_again_under_a_new_id(
    store, config, server, fixed_now
):
    emails = add_subscribers(store, fixed_now, 30)
    edition = add_edition(store, fixed_now)
    server.plan = ["drop"]  # accepted, then the connection is lost: outcome unknown
    report = deliver_edition(config, store, edition, now=fixed_now, elapsed=lambda: 0.0)
    assert len(report.cancelled) == 1 and report.uncertain == 0
    assert report.status == "sent" and report.exit_code == 0
    assert len(server.recipients) == 40  # the dropped batch went twice...
    delivered = Counter(server.delivered())
    assert set(delivered) == set(emails) and max(delivered.values()) == 1  # ...arrives once
    assert ledger.counts(store, edition) == {"sent": 30}
    assert [c.status for c in server.scheduled.cancellations.values()] == ["cancel"]


def test_too_late_to_cancel_is_uncertain_said_plainly(
    store, config, server, fixed_now, monkeypatch
):
    from publisher.deliver import exactly_once, service

    add_subscribers(store, fixed_now, 10)
    edition = add_edition(store, fixed_now)
    server.plan = ["drop"]  # accepted, connection lost: outcome unknown
    # as if the process died right then: nothing recovers the batch in this run
    real = exactly_once.recover
    monkeypatch.setattr(service.exactly_once, "recover", lambda *a, **k: exactly_once.Recovery())
    deliver_edition(config, store, edition, now=fixed_now, elapsed=lambda: 0.0)
    monkeypatch.setattr(service.exactly_once, "recover", real)
    later = fixed_now + timedelta(minutes=6)  # 9 minutes before send_at: too late
    server.clock = lambda: later.timestamp()
    second = deliver_edition(config, store, edition, now=later, elapsed=lambda: 0.0)
    assert second.too_late == [1] and second.status == "uncertain" and second.exit_code == 3
    assert second.uncertain_batches == {1: 10}
    ((status, _, _),) = _batches(store, edition).values()
    assert status == "uncertain"
    assert "too late to cancel" in second.note or "uncertain" in second.note
    assert server.scheduled.cancellations == {}  # never asked for a cancel it cannot promise
    assert len(server.delivered()) == 10


def test_cancellations_are_deleted_once_their_send_at_has_passed(store, config, server, fixed_now):
    emails = add_subscribers(store, fixed_now, 10)
    edition = add_edition(store, fixed_now)
    server.plan = ["drop"]
    deliver_edition(config, store, edition, now=fixed_now, elapsed=lambda: 0.0)
    assert len(server.scheduled.open()) == 1
    later = fixed_now + timedelta(minutes=20)  # past the cancelled batch's send_at
    server.clock = lambda: later.timestamp()
    other = add_edition(store, later, number=2)
    deliver_edition(config, store, other, now=later, elapsed=lambda: 0.0)
    assert server.scheduled.open() == []
    assert Counter(server.delivered()) == Counter(emails * 2)


def test_the_ten_cancellation_limit_is_never_reached(store, config, server, fixed_now):
    """Eight open cancellations leave room for one worker and one unknown batch."""
    add_subscribers(store, fixed_now, 10)
    for n in range(9):
        with server._lock:
            server.scheduled.batches[f"old{n}"] = 0
        server.scheduled._add({"batch_id": f"old{n}", "status": "cancel"}, 0)
    edition = add_edition(store, fixed_now)
    with store.session() as session:
        for n in range(9):
            session.add(
                DeliveryBatchRow(
                    edition_id=edition, number=100 + n, provider_id=f"old{n}",
                    send_at=fixed_now + timedelta(minutes=5), status="cancelled",
                    cancel_cleared=False, updated_at=fixed_now,
                )
            )  # fmt: skip
    report_error = None
    try:
        deliver_edition(config, store, edition, now=fixed_now, elapsed=lambda: 0.0)
    except Exception as exc:  # noqa: BLE001
        report_error = str(exc)
    assert report_error and "holds 9 cancelled batches" in report_error
    assert len(server.scheduled.open()) == 9


def test_workers_above_eight_are_refused_in_exactly_once_mode(make_config):
    from publisher.errors import ConfigError

    options = "  sendgrid:\n    workers: 9\n    exactly_once: true\n"
    with pytest.raises(ConfigError, match="at most 8 workers"):
        make_config(config_text("sendgrid", delivery=options))
