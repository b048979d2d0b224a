"""The local SendGrid-compatible server's Cancel Scheduled Sends API does what SendGrid
documents (SOURCES.md), so the exactly-once tests prove something: requests and answers
checked against the OpenAPI file, cancelled batches discarded at send_at, the 10-minute
rule, the 10-batch limit, 400 on a second status change, deletion before/after send_at."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.servers.sendgrid import FakeSendGrid

KEY = "SG.server-key"
T0 = 1_800_000_000.0  # the server's clock, set by the test


class Clock:
    """The server's clock (epoch seconds), moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server():
    with FakeSendGrid(api_key=KEY, clock=Clock(T0)) as s:
        yield s


def call(server, method: str, path: str, body=None) -> tuple[int, Any]:
    """The status and the decoded JSON answer (None when empty)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {KEY}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def send(server, batch_id: str, send_at: int, email: str) -> int:
    body = {
        "personalizations": [{"to": [{"email": email}]}],
        "from": {"email": "news@example.org"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "t"}],
        "batch_id": batch_id,
        "send_at": send_at,
    }
    return call(server, "POST", "/v3/mail/send", body)[0]


def new_batch(server) -> str:
    status, answer = call(server, "POST", "/v3/mail/batch")
    assert status == 201
    return answer["batch_id"]


def test_a_batch_cancelled_in_time_is_discarded_at_send_at(server):
    early, late, deleted_early, deleted_late = (new_batch(server) for _ in range(4))
    at = int(T0) + 3600
    for n, batch in enumerate((early, late, deleted_early, deleted_late)):
        assert send(server, batch, at, f"p{n}@example.org") == 202
    for batch in (early, deleted_early, deleted_late):
        assert (
            call(
                server, "POST", "/v3/user/scheduled_sends", {"batch_id": batch, "status": "cancel"}
            )[0]
            == 201
        )
    assert call(server, "DELETE", f"/v3/user/scheduled_sends/{deleted_early}")[0] == 204
    server.clock.now = at - 300  # 5 minutes before send_at: a cancel is no longer guaranteed
    assert (
        call(server, "POST", "/v3/user/scheduled_sends", {"batch_id": late, "status": "cancel"})[0]
        == 201
    )
    server.clock.now = at + 60
    assert call(server, "DELETE", f"/v3/user/scheduled_sends/{deleted_late}")[0] == 204
    # late: cancelled too late, delivered; deleted_early: its cancel was removed in time
    assert sorted(server.delivered()) == ["p1@example.org", "p2@example.org"]


def test_status_changes_limits_and_spec_checks(server):
    batches = [new_batch(server) for _ in range(11)]
    assert call(server, "GET", f"/v3/mail/batch/{batches[0]}") == (200, {"batch_id": batches[0]})
    assert call(server, "GET", "/v3/mail/batch/nosuchbatch")[0] == 400
    for batch in batches[:10]:
        assert (
            call(
                server, "POST", "/v3/user/scheduled_sends", {"batch_id": batch, "status": "pause"}
            )[0]
            == 201
        )
    status, answer = call(
        server, "POST", "/v3/user/scheduled_sends", {"batch_id": batches[10], "status": "cancel"}
    )
    assert status == 400 and "max limit" in answer["errors"][0]["message"]
    status, answer = call(
        server, "POST", "/v3/user/scheduled_sends", {"batch_id": batches[0], "status": "cancel"}
    )
    assert status == 400 and "already" in answer["errors"][0]["message"]
    assert (
        call(server, "PATCH", f"/v3/user/scheduled_sends/{batches[0]}", {"status": "cancel"})[0]
        == 204
    )
    assert call(server, "GET", f"/v3/user/scheduled_sends/{batches[0]}") == (
        200,
        [{"batch_id": batches[0], "status": "cancel"}],
    )
    assert len(call(server, "GET", "/v3/user/scheduled_sends")[1]) == 10
    bad = call(
        server, "POST", "/v3/user/scheduled_sends", {"batch_id": batches[10], "status": "stop"}
    )
    assert bad[0] == 400 and "status" in bad[1]["errors"][0]["message"]
    assert send(server, "unknown-batch", int(T0) + 3600, "x@example.org") == 400
