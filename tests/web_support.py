"""A real `publisher serve` app on 127.0.0.1 (uvicorn in a thread) with a movable clock,
a project whose public_url is that server, and a P-256 key pair playing SendGrid."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from publisher.config import PublisherConfig, load_config
from publisher.store import Store
from publisher.web import create_app
from publisher.web.bounds import Limits, server_options
from publisher.web.webhook import load_key
from tests.conftest import FIXED_NOW

SECRET = "test-secret-key-0123456789abcdef"
WEB_CONFIG = """\
organisation:
  name: Test Org
  website: https://www.example.org
  public_url: {public_url}
  postal_address: 1 Main St, Springfield
  from_email: news@example.org
  timezone: America/New_York
campaigns:
  - name: weekly
    title: Weekly
    subject: This week
    audience: [labor, housing]
delivery:
  backend: file
  backoff_base: 0.01
  backoff_max: 0.05
"""


@dataclass
class Clock:
    now: datetime = FIXED_NOW
    mono: float = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, **delta: float) -> None:
        step = timedelta(**delta)
        self.now += step
        self.mono += step.total_seconds()


class SendGridKeys:
    """A key pair made here: the public half configured, the private half signs."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_b64 = base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: str) -> str:
        signature = self.private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def headers(self, body: bytes, when: datetime) -> dict[str, str]:
        stamp = str(int(when.timestamp()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": self.sign(body, stamp),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_web_config(project: Path, port: int, text: str = WEB_CONFIG) -> PublisherConfig:
    path = project / "schedules.yaml"
    path.write_text(text.format(public_url=f"http://127.0.0.1:{port}"), encoding="utf-8")
    return load_config(path)


@dataclass
class Served:
    url: str
    config: PublisherConfig
    clock: Clock
    keys: SendGridKeys
    outbox: Path
    sent: list = field(default_factory=list)
    mailed: threading.Condition = field(default_factory=threading.Condition)
    jobs: list = field(default_factory=list)
    app: Any = None  # the Starlette app served (a test may reach its state)

    def wait_for_jobs(self, count: int, timeout: float = 30) -> None:
        """Until `count` pieces of work done after an answer (sign-ups, emails) finished."""
        with self.mailed:
            if not self.mailed.wait_for(lambda: len(self.jobs) >= count, timeout):
                raise AssertionError(f"{len(self.jobs)} jobs done, expected {count}")

    def wait_for_mail(self, count: int, timeout: float = 30) -> list[str]:
        """The addresses mailed once `count` emails went out (they go after the answer)."""
        with self.mailed:
            if not self.mailed.wait_for(lambda: len(self.sent) >= count, timeout):
                raise AssertionError(f"{len(self.sent)} emails sent, expected {count}")
        return list(self.sent)

    def confirmation_emails(self, count: int = 0) -> list[Path]:
        """The confirmation files, once `count` emails have been sent."""
        if count:
            self.wait_for_mail(count)
        return sorted((self.outbox / "confirmations" / "0").glob("*.eml"))

    def events(self, events: list[dict]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(events).encode()
        return body, self.keys.headers(body, self.clock.now)


@contextmanager
def serve(
    project: Path,
    store: Store,
    *,
    port: int | None = None,
    config_text: str = WEB_CONFIG,
    limits: Limits | None = None,
) -> Iterator[Served]:
    port = port or free_port()
    config = write_web_config(project, port, config_text)
    clock, keys, sent, mailed = Clock(), SendGridKeys(), [], threading.Condition()

    def send_email(config, message, recipient):  # the real path, counted once written
        from publisher.deliver.outside_ledger import send_one

        problem = send_one(config, message, recipient)
        with mailed:
            sent.append(recipient.email)
            mailed.notify_all()
        return problem

    app = create_app(
        config,
        store,
        secret_key=SECRET,
        now=clock,
        webhook_key=load_key(keys.public_b64),
        send_email=send_email,
        limits=limits or Limits(),
    )
    jobs: list = []

    def job_done() -> None:
        with mailed:
            jobs.append(1)
            mailed.notify_all()

    app.state.web.after_job = job_done
    options = server_options(limits or Limits())  # the bounds `publisher serve` runs with
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, **options
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        url = f"http://127.0.0.1:{port}"
        yield Served(url, config, clock, keys, project / "outbox", sent, mailed, jobs, app)
    finally:
        server.should_exit = True
        thread.join(10)
