"""SMTP backend against a local aiosmtpd server with STARTTLS and a trustme certificate."""

from __future__ import annotations

import email
from email.policy import default

import pytest

from publisher.deliver import deliver_edition
from publisher.store import ledger
from publisher.store.models import SubscriberRow
from tests.servers.data import add_edition, add_subscribers, config_text
from tests.servers.smtp import SmtpServer


def smtp_options(server: SmtpServer, extra: str = "") -> str:
    return (
        f"  smtp:\n    host: 127.0.0.1\n    port: {server.port}\n"
        f"    security: starttls\n    ca_file: {server.ca_file}\n    timeout: 5\n{extra}"
    )


@pytest.fixture
def smtp_server(tmp_path):
    with SmtpServer(tmp_path) as server:
        yield server


def test_every_message_arrives_over_starttls_on_reused_connections(
    store, make_config, smtp_server, fixed_now
):
    config = make_config(config_text("smtp", delivery=smtp_options(smtp_server)))
    emails = add_subscribers(store, fixed_now, 30)
    report = deliver_edition(config, store, add_edition(store, fixed_now), now=fixed_now)
    assert report.sent == 30 and report.failed == 0
    received = sorted(r for m in smtp_server.messages for r in m.recipients)
    assert received == sorted(emails)
    peers = {m.peer for m in smtp_server.messages}
    assert len(peers) <= config.delivery.smtp.workers  # connections reused
    message = email.message_from_bytes(smtp_server.messages[0].data, policy=default)
    to = message["To"].addresses[0].addr_spec
    sent_line = next(
        ln
        for ln in smtp_server.messages[0].data.split(b"\r\n")
        if ln.startswith(b"List-Unsubscribe: ")
    )
    assert message["List-Unsubscribe"] == sent_line.decode().removeprefix("List-Unsubscribe: ")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert to in emails


def test_a_recipient_refused_with_5xx_bounces_and_is_never_retried(
    store, make_config, smtp_server, fixed_now
):
    config = make_config(config_text("smtp", delivery=smtp_options(smtp_server)))
    from publisher.store.subscribers import SubscriberInput, import_subscribers

    import_subscribers(store, [SubscriberInput("reject-me@example.org", "Nobody")], now=fixed_now)
    emails = add_subscribers(store, fixed_now, 5)
    edition = add_edition(store, fixed_now)
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert report.sent == 5 and report.bounced == 1 and report.failed == 0
    assert report.failures[0][0] == "reject-me@example.org"
    assert report.failures[0][1].startswith("550")
    assert sorted(r for m in smtp_server.messages for r in m.recipients) == sorted(emails)
    assert ledger.counts(store, edition) == {"sent": 5, "bounced": 1}
    assert not report.paused  # one refused address is not a failed batch
    assert report.status == "partly_failed" and report.exit_code == 4
    with store.session() as session:
        row = session.query(SubscriberRow).filter_by(email="reject-me@example.org").one()
        assert row.status == "bounced" and "550 5.1.1 mailbox unavailable" in row.status_reason
    again = deliver_edition(config, store, edition, now=fixed_now)  # a resume: no retry
    assert (
        again.sent == 0
        and again.bounced == 0
        and smtp_server.handler.refused == ["reject-me@example.org"]
    )


def test_auth_from_environment_and_rate_limit(store, make_config, tmp_path, monkeypatch, fixed_now):
    with SmtpServer(tmp_path, credentials=("sender", "s3cret")) as server:
        monkeypatch.setenv("SMTP_USERNAME", "sender")
        monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
        options = smtp_options(server, "    rate_limit: 200\n    workers: 1\n")
        config = make_config(config_text("smtp", delivery=options))
        add_subscribers(store, fixed_now, 5)
        report = deliver_edition(config, store, add_edition(store, fixed_now), now=fixed_now)
        assert report.sent == 5 and len(server.messages) == 5


def test_wrong_password_pauses_without_printing_it(
    store, make_config, tmp_path, monkeypatch, fixed_now
):
    with SmtpServer(tmp_path, credentials=("sender", "s3cret")) as server:
        monkeypatch.setenv("SMTP_USERNAME", "sender")
        monkeypatch.setenv("SMTP_PASSWORD", "wrong-password")
        options = smtp_options(server, "    batch_size: 2\n    workers: 1\n")
        config = make_config(config_text("smtp", delivery=options))
        add_subscribers(store, fixed_now, 10)
        report = deliver_edition(config, store, add_edition(store, fixed_now), now=fixed_now)
        assert report.paused and report.sent == 0
        assert "authentication" in (report.last_error or "")
        assert "wrong-password" not in report.note + str(report.failures)


def test_connection_lost_after_data_is_uncertain_and_never_resent(
    store, make_config, smtp_server, fixed_now
):
    """The server took the message, then the connection dropped before its answer to the
    end of DATA: that recipient is uncertain (not retried, not resent on resume); the rest
    of the batch still arrives, once each."""
    from publisher.store.subscribers import SubscriberInput, import_subscribers

    config = make_config(config_text("smtp", delivery=smtp_options(smtp_server)))
    import_subscribers(store, [SubscriberInput("drop-me@example.org", "Dropped")], now=fixed_now)
    emails = add_subscribers(store, fixed_now, 5)
    edition = add_edition(store, fixed_now)
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert report.sent == 5 and report.uncertain == 1 and report.failed == 0
    received = [r for m in smtp_server.messages for r in m.recipients]
    assert sorted(received) == sorted(emails + ["drop-me@example.org"])  # once each
    assert ledger.counts(store, edition) == {"sent": 5, "uncertain": 1}
    assert deliver_edition(config, store, edition, now=fixed_now).sent == 0
    assert len(smtp_server.messages) == 6


@pytest.mark.slow
def test_killed_mid_batch_at_most_one_message_per_connection_is_in_doubt(
    store, smtp_server, fixed_now, project
):
    """A real send killed (SIGKILL) right before its 7th message is written, batches of 20
    on 2 connections: every message accepted before is already `sent`, only the messages
    being written are `requested` (one per connection at most), and a resume sends the rest
    exactly once."""
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT, write_config

    emails = add_subscribers(store, fixed_now, 40)
    edition = add_edition(store, fixed_now)
    config = write_config(project, config_text("smtp", delivery=smtp_options(smtp_server)))
    env = {
        **os.environ,
        "PUBLISHER_DATABASE_URL": str(store.engine.url),
        "PYTHONPATH": str(ROOT),
        "PUBLISHER_KILL_AT": "request.before_write:7",
    }
    command = [sys.executable, "-m", "publisher.cli", "-c", str(config), "send", "weekly"]
    killed = subprocess.run([*command, "--resume"], env=env, capture_output=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stdout
    counts = ledger.counts(store, edition)
    assert 1 <= counts.get("requested", 0) <= 2  # workers: 2
    received = [r for m in smtp_server.messages for r in m.recipients]
    assert counts.get("sent", 0) >= len(received) - 2  # accepted ones are recorded at once
    del env["PUBLISHER_KILL_AT"]
    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, timeout=60)
    assert resumed.returncode in (0, 3), resumed.stdout  # 3: the ones in doubt
    received = [r for m in smtp_server.messages for r in m.recipients]
    assert len(received) == len(set(received))  # nobody twice
    # the messages in doubt are assumed sent (docs/operators.md): the 7th had not been written
    # yet; the other connection's may have been (accepted, recorded at its next message)
    missing = set(emails) - set(received)
    assert 1 <= len(missing) <= counts["requested"] == ledger.counts(store, edition)["uncertain"]
    assert len(received) + len(missing) == len(emails)


def test_connections_send_without_nagle_delay(smtp_server):
    """TCP_NODELAY on every connection, after STARTTLS too (bench.smtp: several times faster
    for messages over one 16 KiB TLS record); the benchmark's baseline turns it off."""
    import socket

    from publisher.deliver.backends.smtp import SmtpBackend

    for nodelay in (True, False):
        backend = SmtpBackend(
            "127.0.0.1", smtp_server.port, ca_file=str(smtp_server.ca_file), tcp_nodelay=nodelay
        )
        connection = backend._connection()  # connected, STARTTLS done
        assert connection.sock is not None
        flag = connection.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert bool(flag) is nodelay
        backend.close()


def test_each_message_built_ahead_goes_to_its_own_recipient(
    store, make_config, smtp_server, fixed_now
):
    """The next message is built while the server reads the current one: each still carries
    its own recipient's To and unsubscribe link, and one that cannot be built (a line break
    in the name) fails alone, in its turn, with the reason."""
    from publisher.deliver.backends.smtp import SmtpBackend
    from publisher.deliver.base import Recipient, send_batch
    from publisher.deliver.service import build_message, load_edition

    config = make_config(config_text("smtp", delivery=smtp_options(smtp_server)))
    edition = load_edition(store, add_edition(store, fixed_now))
    message = build_message(config, edition, now=fixed_now)
    names = ["Ann", "Eve\r\nBcc: victim@example.net", "Bo", "Cy"]
    people = [
        Recipient(i, f"p{i}@example.org", name, f"token{i:027d}", message.public_url)
        for i, name in enumerate(names)
    ]
    backend = SmtpBackend("127.0.0.1", smtp_server.port, ca_file=str(smtp_server.ca_file))
    failed = send_batch(backend, backend.prepare(message), people, "batch")
    backend.close()
    assert list(failed) == [1] and "control character" in failed[1]
    sent = [p for p in people if p.subscriber_id != 1]
    assert [m.recipients for m in smtp_server.messages] == [[p.email] for p in sent]
    for received, person in zip(smtp_server.messages, sent, strict=True):
        parsed = email.message_from_bytes(received.data, policy=default)
        assert parsed["To"].addresses[0].addr_spec == person.email
        assert person.unsubscribe_url in parsed["List-Unsubscribe"]
    assert b"victim" not in b"".join(m.data for m in smtp_server.messages)


@pytest.mark.parametrize(
    "body",
    [
        b"Subject: x\r\n\r\n.starts with a dot\r\n.\r\n..\r\nend\r\n",
        b".first line\r\n\r\n.\r\nno final line end",
        b"Subject: y\r\n\r\nnothing to stuff\r\n",
    ],
)
def test_lines_starting_with_a_dot_arrive_as_written(smtp_server, body):
    """The dot-stuffing (RFC 5321 4.5.2) of our data(): the server gets the message back
    unchanged, a line of a single '.' inside it included (quoted-printable leaves a
    leading '.' as it is)."""
    from publisher.deliver.backends.smtp import SmtpBackend

    backend = SmtpBackend("127.0.0.1", smtp_server.port, ca_file=str(smtp_server.ca_file))
    backend._connection().sendmail("news@example.org", ["a@example.org"], body)
    backend.close()
    [received] = smtp_server.messages
    expected = body if body.endswith(b"\r\n") else body + b"\r\n"
    assert received.data == expected
