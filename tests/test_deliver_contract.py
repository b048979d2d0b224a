"""One contract, every backend: the same tests run against the file outbox, SMTP (a local
aiosmtpd server with STARTTLS) and SendGrid (the local server validating against the
OpenAPI files). What arrives is read back from the far side: the .eml bytes, the bytes the
SMTP server received, the JSON SendGrid received."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from publisher.config import load_config
from publisher.deliver import deliver_edition
from publisher.deliver.base import list_unsubscribe
from publisher.store import ledger
from publisher.store.models import SubscriberRow
from tests.conftest import ROOT, present, write_config
from tests.servers.data import add_edition, add_subscribers, config_text
from tests.servers.sendgrid import FakeSendGrid
from tests.servers.smtp import SmtpServer

API_KEY = "SG.contract-key"


@dataclass
class Rig:
    name: str
    options: str  # the backend's delivery options (YAML, indented under delivery:)
    project: Path
    server: Any = None

    def received(self) -> dict[str, list[Any]]:
        """{address: what arrived for it}: raw message bytes, or (SendGrid) the request
        body and the address's personalization."""
        found: dict[str, list[Any]] = {}
        if self.name == "file":
            for path in (self.project / "outbox").rglob("*.eml"):
                raw = path.read_bytes()
                to = next(ln for ln in raw.split(b"\r\n") if ln.startswith(b"To: "))
                address = to.decode().rsplit("<", 1)[-1].rstrip(">").removeprefix("To: ")
                found.setdefault(address, []).append(raw)
        elif self.name == "smtp":
            for message in self.server.messages:
                for address in message.recipients:
                    found.setdefault(address, []).append(message.data)
        else:
            for request in self.server.requests:
                for p in request.body["personalizations"]:
                    found.setdefault(p["to"][0]["email"], []).append((request.body, p))
        return found


@pytest.fixture(params=["file", "smtp", "sendgrid"])
def rig(request, project: Path, monkeypatch) -> Iterator[Rig]:
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    if request.param == "file":
        yield Rig("file", "  file:\n    batch_size: 4\n", project)
    elif request.param == "smtp":
        with SmtpServer(project) as server:
            options = (
                f"  smtp:\n    host: 127.0.0.1\n    port: {server.port}\n"
                f"    security: starttls\n    ca_file: {server.ca_file}\n    timeout: 5\n"
                "    batch_size: 4\n"
            )
            yield Rig("smtp", options, project, server)
    else:
        with FakeSendGrid(api_key=API_KEY) as server:
            options = f"  sendgrid:\n    host: {server.url}\n    batch_size: 4\n    workers: 2\n"
            yield Rig("sendgrid", options, project, server)


def _config(rig: Rig, audience: str = "[]"):
    return load_config(write_config(rig.project, config_text(rig.name, audience, rig.options)))


def _header(raw: bytes, name: str) -> bytes:
    return next(ln for ln in raw.split(b"\r\n") if ln.startswith(name.encode() + b": "))


def test_headers_arrive_exactly_as_written(rig, store, fixed_now):
    config = _config(rig)
    add_subscribers(store, fixed_now, 3)
    edition = add_edition(store, fixed_now)
    deliver_edition(config, store, edition, now=fixed_now)
    with store.session() as session:
        people = {s.email: s for s in session.query(SubscriberRow)}
    from publisher.deliver.base import Recipient
    from publisher.deliver.service import build_message
    from publisher.store.editions import get_edition
    from publisher.store.numbers import link_key

    key = link_key(store, now=fixed_now)  # the links say which edition they came from
    stored = present(get_edition(store, edition))
    message = build_message(config, stored, now=fixed_now, link_key=key)
    for address, [wire] in rig.received().items():
        person = people[address]
        recipient = Recipient(
            person.id, address, person.name, person.token, message.public_url,
            message.mark(person.id),
        )  # fmt: skip
        assert f"&e={edition}." in recipient.unsubscribe_url
        expected = list_unsubscribe(message, recipient)
        if rig.name == "sendgrid":
            body, p = wire
            assert p["headers"]["List-Unsubscribe"] == expected
            assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert body["headers"]["List-Id"] == message.list_id
        else:
            assert _header(wire, "List-Unsubscribe") == f"List-Unsubscribe: {expected}".encode()
            assert _header(wire, "List-Unsubscribe-Post") == (
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
            )
            assert _header(wire, "List-Id") == f"List-Id: {message.list_id}".encode()


def test_text_comes_before_html(rig, store, fixed_now):
    add_subscribers(store, fixed_now, 1)
    deliver_edition(_config(rig), store, add_edition(store, fixed_now), now=fixed_now)
    [[wire]] = rig.received().values()
    if rig.name == "sendgrid":
        assert [c["type"] for c in wire[0]["content"]] == ["text/plain", "text/html"]
    else:
        assert wire.index(b"Content-Type: text/plain") < wire.index(b"Content-Type: text/html")


def test_only_the_audience_receives(rig, store, fixed_now):
    followers = add_subscribers(store, fixed_now, 3, topics=("wages",))
    add_subscribers(store, fixed_now, 2, start=10, topics=("rent",))
    everything = add_subscribers(store, fixed_now, 1, start=20)  # no topics: follows all
    add_subscribers(store, fixed_now, 1, start=30, status="unsubscribed")
    report = deliver_edition(
        _config(rig, "[wages]"), store, add_edition(store, fixed_now), now=fixed_now
    )
    assert sorted(rig.received()) == sorted(followers + everything)
    assert report.sent == 4 and report.status == "sent" and report.exit_code == 0


def test_a_header_value_with_a_line_break_is_refused_for_that_recipient(rig, store, fixed_now):
    """The last guard against header injection: the name would become a To header (and a
    Bcc of its own); that recipient fails with the reason, the others arrive."""
    emails = add_subscribers(store, fixed_now, 3)
    with store.session() as session:
        bad = session.query(SubscriberRow).filter_by(email=emails[0]).one()
        bad.name = "Eve\r\nBcc: victim@example.net"
    edition = add_edition(store, fixed_now)
    report = deliver_edition(_config(rig), store, edition, now=fixed_now)
    assert sorted(rig.received()) == sorted(emails[1:])
    assert report.failed == 1 and report.status == "partly_failed" and report.exit_code == 4
    assert "control character" in report.failures[0][1]
    assert b"victim" not in repr(rig.received()).encode()


def test_a_stop_between_batches_then_resume_reaches_everyone_once(rig, store, fixed_now):
    emails = add_subscribers(store, fixed_now, 20)
    edition = add_edition(store, fixed_now)
    asked: list[int] = []

    def stop_after_two_checks() -> bool:  # the daemon's SIGTERM
        asked.append(1)
        return len(asked) > 2

    config = _config(rig)
    first = deliver_edition(
        config, store, edition, now=fixed_now, should_stop=stop_after_two_checks
    )
    assert first.stopped and first.sent < 20 and first.status == "sending"
    second = deliver_edition(config, store, edition, now=fixed_now)
    assert first.sent + second.sent == 20 and second.status == "sent"
    received = rig.received()
    assert sorted(received) == sorted(emails) and {len(v) for v in received.values()} == {1}


@pytest.mark.slow
def test_kill_9_mid_send_then_resume_reaches_everyone_exactly_once(rig, store, fixed_now):
    """A real child process killed right after its second batch was recorded, then
    resumed: nobody twice, nobody missing, for every backend. One worker: with more, a
    kill can land while another worker's message is on the wire, the window docs/operators.md
    describes (at most one batch per worker, one message per SMTP connection)."""
    emails = add_subscribers(store, fixed_now, 24)
    edition = add_edition(store, fixed_now)
    options = rig.options.replace("workers: 2", "workers: 1")
    if rig.name == "smtp":
        options += "    workers: 1\n"
    config_path = write_config(rig.project, config_text(rig.name, "[]", options))
    env = {
        **os.environ,
        "PUBLISHER_DATABASE_URL": str(store.engine.url),
        "PYTHONPATH": str(ROOT),
        "PUBLISHER_KILL_AT": "finish.after:2",
    }
    command = [sys.executable, "-m", "publisher.cli", "-c", str(config_path)]
    killed = subprocess.run(
        [*command, "send", "weekly", "--resume"], env=env, capture_output=True, timeout=60
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout
    assert 0 < sum(map(len, rig.received().values())) < 24
    env.pop("PUBLISHER_KILL_AT")
    resumed = subprocess.run(
        [*command, "send", "weekly", "--resume"], env=env, capture_output=True, timeout=60
    )
    assert resumed.returncode == 0, resumed.stdout
    counts = Counter({a: len(v) for a, v in rig.received().items()})
    assert sorted(counts) == sorted(emails) and set(counts.values()) == {1}
    assert ledger.counts(store, edition) == {"sent": 24}


def _break(rig: Rig, monkeypatch) -> None:
    """Make every batch fail as a whole: an outbox that cannot be created, an SMTP login
    refused, a SendGrid key refused."""
    if rig.name == "file":
        (rig.project / "outbox").write_text("not a folder")
    elif rig.name == "smtp":
        monkeypatch.setenv("SMTP_USERNAME", "sender")
        monkeypatch.setenv("SMTP_PASSWORD", "wrong")
    else:
        rig.server.plan = [401] * 1000


def _mend(rig: Rig, monkeypatch) -> None:
    if rig.name == "file":
        (rig.project / "outbox").unlink()
    elif rig.name == "smtp":
        monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    else:
        rig.server.plan = []


def test_errors_pause_the_send_and_resume_reaches_everyone_once(rig, store, fixed_now, monkeypatch):
    if rig.name == "smtp":  # a server that wants a login
        with SmtpServer(rig.project, credentials=("sender", "s3cret")) as server:
            rig = Rig(
                "smtp",
                rig.options.replace(str(rig.server.port), str(server.port)),
                rig.project,
                server,
            )
            rig.options = rig.options.replace(
                "ca_file: ", "ca_file: "
            )  # same CA folder: SmtpServer writes test-ca.pem again
            _pause_and_resume(rig, store, fixed_now, monkeypatch)
        return
    _pause_and_resume(rig, store, fixed_now, monkeypatch)


def _pause_and_resume(rig: Rig, store, fixed_now, monkeypatch) -> None:
    emails = add_subscribers(store, fixed_now, 20)
    edition = add_edition(store, fixed_now)
    options = rig.options.replace("workers: 2", "workers: 1")
    if rig.name == "smtp":
        options += "    workers: 1\n"
    options = "  max_failed_batches: 2\n" + options
    config = load_config(write_config(rig.project, config_text(rig.name, "[]", options)))
    _break(rig, monkeypatch)
    first = deliver_edition(config, store, edition, now=fixed_now)
    assert first.paused and first.status == "paused" and first.exit_code == 1
    assert first.sent == 0 and "--resume" in first.note
    _mend(rig, monkeypatch)
    second = deliver_edition(config, store, edition, now=fixed_now)
    assert second.status == "sent" and second.sent == 20
    counts = Counter({a: len(v) for a, v in rig.received().items()})
    assert sorted(counts) == sorted(emails) and set(counts.values()) == {1}


# --- broadcasts (issue 21): the same path, under the chosen sender, to its own audience ---


def _broadcast(store, fixed_now, audience) -> int:
    from publisher.store.broadcasts import create_broadcast
    from tests.test_broadcasts import draft

    return create_broadcast(store, draft(audience=audience), by="ann@example.org", now=fixed_now).id


def _from(rig: Rig, wire: Any) -> str:
    if rig.name == "sendgrid":
        return str(wire[0]["from"]["email"])
    return _header(wire, "From").decode()


def test_a_broadcast_reaches_its_audience_once_under_its_sender(rig, store, fixed_now):
    from publisher.deliver.broadcasts import send_broadcast
    from publisher.store.broadcasts import Audience
    from tests.test_broadcasts import SENDERS

    housing = add_subscribers(store, fixed_now, 5, topics=("housing",))
    add_subscribers(store, fixed_now, 2, start=10, topics=("housing", "transit"))
    add_subscribers(store, fixed_now, 2, start=20, topics=("transit",))
    config = load_config(
        write_config(rig.project, config_text(rig.name, "[]", rig.options) + SENDERS)
    )
    broadcast = _broadcast(store, fixed_now, Audience(("housing",), ("transit",)))
    report = send_broadcast(config, store, broadcast, by="ann@example.org", now=fixed_now)
    received = rig.received()
    assert sorted(received) == sorted(housing) and {len(v) for v in received.values()} == {1}
    assert report.sent == 5 and report.status == "sent" and report.exit_code == 0
    assert all("action@example.org" in _from(rig, wire) for [wire] in received.values())


@pytest.mark.slow
def test_kill_9_mid_broadcast_then_resume_reaches_everyone_exactly_once(rig, store, fixed_now):
    """`publisher broadcast send` killed right after its second batch was recorded, then
    `--resume`: nobody twice, nobody missing, for every backend (one worker, as above)."""
    from publisher.store.broadcasts import Audience, get_broadcast
    from tests.test_broadcasts import SENDERS

    emails = add_subscribers(store, fixed_now, 24)
    broadcast = _broadcast(store, fixed_now, Audience())
    options = rig.options.replace("workers: 2", "workers: 1")
    if rig.name == "smtp":
        options += "    workers: 1\n"
    config_path = write_config(rig.project, config_text(rig.name, "[]", options) + SENDERS)
    env = {
        **os.environ,
        "PUBLISHER_DATABASE_URL": str(store.engine.url),
        "PYTHONPATH": str(ROOT),
        "PUBLISHER_KILL_AT": "finish.after:2",
    }
    command = [sys.executable, "-m", "publisher.cli", "-c", str(config_path), "broadcast"]
    killed = subprocess.run(
        [*command, "send", str(broadcast)], env=env, capture_output=True, timeout=60
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout
    assert 0 < sum(map(len, rig.received().values())) < 24
    assert present(get_broadcast(store, broadcast)).status == "sending"
    env.pop("PUBLISHER_KILL_AT")
    again = subprocess.run([*command, "send", str(broadcast)], env=env, capture_output=True)
    assert again.returncode != 0 and b"--resume" in again.stderr + again.stdout
    resumed = subprocess.run(
        [*command, "send", str(broadcast), "--resume"], env=env, capture_output=True, timeout=60
    )
    assert resumed.returncode == 0, resumed.stdout
    counts = Counter({a: len(v) for a, v in rig.received().items()})
    assert sorted(counts) == sorted(emails) and set(counts.values()) == {1}
    after = present(get_broadcast(store, broadcast))
    assert after.status == "sent"
    assert ledger.counts(store, present(after.edition_id)) == {"sent": 24}
