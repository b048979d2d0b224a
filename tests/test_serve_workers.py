"""`publisher serve --workers N` as real processes (SQLite and PostgreSQL): API creates
answered by two workers all stored once, a sign-up begun on one worker confirmed on the
other (the signing key shared, --dev or PUBLISHER_SECRET_KEY), the per-key API limit
shared out between the workers (and still after SIGHUP, which replaces every worker with
the configuration file read again, or keeps them if it is broken; SIGTTIN and SIGTTOU
refused), a killed worker replaced, SIGTERM and Ctrl-C (SIGINT to the process group)
ending every worker, a worker that cannot start stopping the server, and --workers below
1 refused. Which worker holds a connection is read from /proc."""

from __future__ import annotations

import email
import http.client
import json
import os
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from email.policy import default
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from publisher.store import open_store
from publisher.store.api_keys import create_key
from publisher.store.subscribers import count_by_status, find_subscriber
from tests.conftest import FIXED_NOW, present
from tests.workers_support import PUBLISHER, SECRET, alive, children, env_for, serve_workers

pytestmark = pytest.mark.slow  # starts the real `publisher` command
NOW = {"PUBLISHER_NOW": FIXED_NOW.isoformat()}  # one rate-limit window throughout
CONSENT = {"text": "Ticked the box on our petition page", "form": "petition"}


def _key(database_url: str) -> str:
    store = open_store(database_url)
    try:
        _, token = create_key(
            store, "CRM", kind="scoped", created_by="t", now=FIXED_NOW,
            scopes=["subscribers:write", "subscribers:import"],
        )  # fmt: skip
    finally:
        store.close()
    return token


def _create(
    connection: http.client.HTTPConnection, token: str, address: str, idem: str = ""
) -> tuple[int, dict, str]:
    """The status, the body and the RateLimit-Policy header of one create."""
    body = json.dumps({"email": address, "topics": ["labor"], "consent": CONSENT})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if idem:
        headers["Idempotency-Key"] = idem
    connection.request("POST", "/api/v1/subscribers", body=body, headers=headers)
    answer = connection.getresponse()
    policy = answer.getheader("RateLimit-Policy", "")
    return answer.status, json.loads(answer.read() or b"{}"), policy


def test_two_workers_answer_concurrent_creates_each_stored_once(project, database_url):
    token = _key(database_url)
    with serve_workers(project, database_url, "--dev", "--api-per-minute", "100000") as served:
        first, second = served.workers()
        connections = [served.connection_to(w) for w in (first, second) for _ in range(6)]

        def creates(n: int) -> list[tuple[int, dict, str]]:
            connection = connections[n]
            answers = [_create(connection, token, f"p{n}-{i}@example.org") for i in range(8)]
            # the same Idempotency-Key from every connection: one person, the same answer
            answers.append(_create(connection, token, "retried@example.org", idem="once"))
            return answers

        with ThreadPoolExecutor(len(connections)) as pool:
            answers = [a for batch in pool.map(creates, range(len(connections))) for a in batch]
        for connection in connections:
            connection.close()
        assert "locked" not in served.log and "Traceback" not in served.log, served.log
    statuses = [status for status, _, _ in answers]
    assert statuses.count(201) == len(answers), sorted(set(statuses))
    retried = {body["id"] for _, body, _ in answers if body["email"] == "retried@example.org"}
    assert len(retried) == 1  # twelve calls, two processes: one person
    store = open_store(database_url)
    assert count_by_status(store) == {"active": 12 * 8 + 1}
    assert all(find_subscriber(store, id=body["id"]) for _, body, _ in answers)
    store.close()


def _csrf(page: str) -> str:
    return present(re.search(r'name="csrf" value="([^"]+)"', page)).group(1)


def _ask(
    connection: http.client.HTTPConnection, method: str, path: str, form: dict | None = None
) -> tuple[int, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
    connection.request(method, path, body=urlencode(form) if form else None, headers=headers)
    answer = connection.getresponse()
    return answer.status, answer.read().decode()


def _confirmation(outbox: Path, timeout: float = 60) -> str:
    """The link of the confirmation email, once the worker has written it (after its
    answer: mailed in the background)."""
    deadline = time.monotonic() + timeout
    while not (found := sorted((outbox / "confirmations" / "0").glob("*.eml"))):
        assert time.monotonic() < deadline, "no confirmation email"
        time.sleep(0.05)
    message = email.message_from_bytes(found[0].read_bytes(), policy=default)
    text = present(message.get_body(("plain",))).get_content()
    return present(re.search(r"(http://\S+/confirm\?token=\S+)", text)).group(1)


@pytest.mark.parametrize("secret", ["--dev", "PUBLISHER_SECRET_KEY"])
def test_a_sign_up_is_confirmed_on_the_other_worker(project, database_url, secret):
    options, env = (["--dev"], {}) if secret == "--dev" else ([], {secret: SECRET})
    with serve_workers(project, database_url, *options, env=env) as served:
        first, second = served.workers()
        on_first, on_second = served.connection_to(first), served.connection_to(second)
        _, page = _ask(on_first, "GET", "/subscribe")  # the form token: made by the first
        form = {"csrf": _csrf(page), "email": "ana@example.org", "consent": "yes"}
        status, answer = _ask(on_second, "POST", "/subscribe", form)
        assert status == 200 and "Check your inbox" in answer, answer
        link = urlsplit(_confirmation(project / "outbox"))  # signed by the second
        status, page = _ask(on_first, "GET", f"{link.path}?{link.query}")
        assert status == 200 and "Confirm my subscription" in page
        token = link.query.removeprefix("token=")
        status, done = _ask(on_first, "POST", "/confirm", {"csrf": _csrf(page), "token": token})
        assert status == 200 and "You are subscribed" in done, done
        on_first.close()
        on_second.close()
    store = open_store(database_url)
    assert present(find_subscriber(store, email="ana@example.org")).status == "active"
    store.close()


def _shares(served, token: str, prefix: str) -> None:
    """Each worker allows 3 creates of a 6-a-minute key, and refuses the 4th."""
    for n, worker in enumerate(served.workers()):
        connection = served.connection_to(worker)
        answers = [_create(connection, token, f"{prefix}{n}-{i}@example.org") for i in range(4)]
        assert [status for status, _, _ in answers] == [201, 201, 201, 429]
        assert {policy for _, _, policy in answers} == {'"per-key";q=3;w=60'}
        connection.close()


def _said(served, line: str, timeout: float = 180) -> None:
    """Until the server has written `line` on stderr (what its supervisor did)."""
    deadline = time.monotonic() + timeout
    while line not in served.log:
        assert served.process.poll() is None and time.monotonic() < deadline, served.log
        time.sleep(0.05)


def test_each_worker_allows_its_share_of_the_per_key_limit_through_signals(project, database_url):
    """The shares, then uvicorn's signals: SIGTTIN and SIGTTOU refused (the shares are
    counted for --workers); SIGHUP with a broken configuration file keeps the running
    workers; SIGHUP replaces each worker, reading the file again, the shares the same."""
    token = _key(database_url)
    with serve_workers(project, database_url, "--dev", "--api-per-minute", "6", env=NOW) as served:
        _shares(served, token, "w")  # 6 a minute, 2 workers: 3 each
        first = sorted(served.workers())
        for name in ("SIGTTIN", "SIGTTOU"):
            served.process.send_signal(getattr(signal, name))
            _said(served, f"{name} ignored: the number of workers stays 2")
            assert sorted(served.workers()) == first
        config = project / "schedules.yaml"
        good = config.read_text(encoding="utf-8")
        config.write_text("organisation: [broken\n", encoding="utf-8")
        served.process.send_signal(signal.SIGHUP)
        _said(served, "SIGHUP: a new worker did not start; the running workers keep serving")
        assert "schedules.yaml" in served.log and sorted(served.workers()) == first
        config.write_text(good.replace("Test Org", "Renamed Org"), encoding="utf-8")
        served.process.send_signal(signal.SIGHUP)
        _said(served, "SIGHUP: 2 workers replaced, the configuration file read again")
        second = served.wait_for_workers(2)
        assert not set(first) & set(second)
        for worker in second:
            connection = served.connection_to(worker)
            status, page = _ask(connection, "GET", "/subscribe")
            assert status == 200 and "Renamed Org" in page and "Test Org" not in page
            connection.close()
        _shares(served, token, "h")  # counted afresh by each new worker, the same shares
        assert "Traceback" not in served.log, served.log


def test_a_killed_worker_is_replaced_and_sigterm_ends_every_worker(project, database_url):
    with serve_workers(project, database_url, "--dev") as served:
        killed, kept = served.workers()
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while killed in (now := served.workers()) or len(now) != 2:
            assert served.process.poll() is None and time.monotonic() < deadline, served.log
            time.sleep(0.05)
        served.wait_for_workers(2)  # the replacement serving too
        (replacement,) = set(now) - {kept}
        served.connection_to(replacement).close()  # and it answers
        everyone = children(served.process.pid)  # the workers, the resource tracker
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=60) == 0
    assert {kept, replacement} < set(everyone)
    assert not alive(kept) and not alive(replacement)  # joined before the supervisor ends
    deadline = time.monotonic() + 60  # multiprocessing's resource tracker: at its pipe's end
    while left := [pid for pid in everyone if alive(pid)]:
        assert time.monotonic() < deadline, f"left running: {left}"
        time.sleep(0.05)


def test_ctrl_c_ends_every_worker(project):
    url = f"sqlite:///{project}/ctrl-c.db"
    with serve_workers(project, url, "--dev", own_group=True) as served:
        everyone = children(served.process.pid)
        os.killpg(served.process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole group
        assert served.process.wait(timeout=60) == 0
    assert "Traceback" not in served.log, served.log
    deadline = time.monotonic() + 60
    while left := [pid for pid in everyone if alive(pid)]:
        assert time.monotonic() < deadline, f"left running: {left}"
        time.sleep(0.05)


def test_a_worker_that_cannot_start_stops_the_server(project, database_url):
    with serve_workers(project, database_url, "--dev") as served:
        (project / "schedules.yaml").write_text("organisation: [broken\n", encoding="utf-8")
        everyone = served.workers()
        os.kill(everyone[0], signal.SIGKILL)  # its replacement reads the broken file
        assert served.process.wait(timeout=120) == 1
    assert "a worker could not start" in served.log and "schedules.yaml" in served.log
    assert "every worker was stopped" in served.log and "Traceback" not in served.log
    assert not [pid for pid in everyone if alive(pid)]


@pytest.mark.parametrize("count", ["0", "-1"])
def test_workers_below_one_are_refused(project, count):
    result = subprocess.run(
        [*PUBLISHER, "--config", str(project / "schedules.yaml"), "serve", "--dev"]
        + ["--workers", count],
        env=env_for(f"sqlite:///{project}/refused.db"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Invalid value for '--workers'" in result.stderr
    assert "Traceback" not in result.stderr
