"""`publisher serve` as a real process, and `publisher subscribers add|remove|export|show`."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from publisher.store import open_store
from publisher.store.subscribers import find_subscriber
from tests.conftest import present
from tests.servers.data import add_subscribers
from tests.web_support import free_port, write_web_config

PUBLISHER = [sys.executable, "-m", "publisher.cli"]


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PUBLISHER_SECRET_KEY"}
    return env | {"PUBLISHER_DATABASE_URL": database_url, "COLUMNS": "200"} | extra


def _cli(project, database_url, *args, **env):
    return subprocess.run(
        [*PUBLISHER, "--config", str(project / "schedules.yaml"), *args],
        env=_env(database_url, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow  # starts the real `publisher` command
def test_serve_refuses_to_start_without_a_secret_key(project, database_url):
    write_web_config(project, 1)
    result = _cli(project, database_url, "serve", "--port", str(free_port()))
    assert result.returncode == 1 and "PUBLISHER_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    short = _cli(project, database_url, "serve", PUBLISHER_SECRET_KEY="short")
    assert short.returncode == 1 and "too short" in short.stderr


@pytest.mark.slow
def test_serve_answers_one_click_and_logs_paths_only(project, database_url, fixed_now):
    port = free_port()
    write_web_config(project, port)
    store = open_store(database_url)
    add_subscribers(store, fixed_now, 1)
    person = present(find_subscriber(store, email="person0@example.org"))
    server = subprocess.Popen(
        [
            *PUBLISHER,
            "--config",
            str(project / "schedules.yaml"),
            "serve",
            "--dev",
            "--port",
            str(port),
        ],
        env=_env(database_url),
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while True:  # until the server answers (it is starting)
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.TransportError:
                assert server.poll() is None, "".join(lines)
                assert time.monotonic() < deadline, "serve did not start:\n" + "".join(lines)
                time.sleep(0.1)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/unsubscribe?token={person.token}",
            data={"List-Unsubscribe": "One-Click"},
        )
        assert answer.status_code == 200
        # the access line is written just after the answer went out: wait for that line
        deadline = time.monotonic() + 30
        while not any('"POST /unsubscribe"' in line for line in list(lines)):
            assert time.monotonic() < deadline, "no access line:\n" + "".join(lines)
            time.sleep(0.02)
    finally:
        server.terminate()
        server.wait(timeout=10)
        reader.join(timeout=10)
    stderr = "".join(lines)
    assert present(find_subscriber(store, id=person.id)).status == "unsubscribed"
    assert "INSECURE" in stderr and "SENDGRID_WEBHOOK_PUBLIC_KEY" in stderr
    assert '"POST /unsubscribe" 200' in stderr and person.token not in stderr
    store.close()


@pytest.mark.slow  # starts the real `publisher` command
def test_subscribers_add_remove_show_export(project, database_url):
    write_web_config(project, 1)
    added = _cli(
        project,
        database_url,
        "subscribers",
        "add",
        "ana@example.org",
        "--name",
        '=HYPERLINK("http://evil")',
        "--topic",
        "labor",
    )
    assert added.returncode == 0 and "ana@example.org: added" in added.stdout
    shown = _cli(project, database_url, "subscribers", "show", "ANA@example.org")
    assert "status: active" in shown.stdout and "topics: labor" in shown.stdout
    assert "signup" in shown.stdout and "added  via cli" in shown.stdout
    exported = _cli(project, database_url, "subscribers", "export")
    rows = list(csv.reader(io.StringIO(exported.stdout)))
    assert rows[0] == ["email", "name", "topics", "status"]
    assert rows[1] == ["ana@example.org", '\'=HYPERLINK("http://evil")', "labor", "active"]
    removed = _cli(project, database_url, "subscribers", "remove", "ana@example.org")
    assert removed.returncode == 0 and "unsubscribed" in removed.stdout
    again = _cli(project, database_url, "subscribers", "remove", "ana@example.org")
    assert "was already unsubscribed" in again.stdout
    unknown = _cli(project, database_url, "subscribers", "show", "nobody@example.org")
    assert unknown.returncode == 1 and "no subscriber nobody@example.org" in unknown.stderr
    bad = _cli(project, database_url, "subscribers", "add", "not-an-address")
    assert bad.returncode == 2
    for command in ("show", "remove"):  # an address the store could never hold: usage
        for address in ("999", "a..b@example.org"):
            refused = _cli(project, database_url, "subscribers", command, address)
            assert refused.returncode == 2, refused.stderr  # not "internal error" (1)
            assert "invalid email address" in refused.stderr
            assert "internal error" not in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.slow  # starts the real `publisher` command
def test_check_renders_the_confirmation_email(project, database_url):
    write_web_config(project, 1)
    assert "confirmation email" not in _cli(project, database_url, "check").stderr
    (project / "templates" / "email").mkdir(parents=True)
    (project / "templates" / "email" / "confirm.txt").write_text("Hi {{ nmae }}\n")
    result = _cli(project, database_url, "check")
    assert result.returncode != 0
    assert "confirmation email:" in result.stderr and "nmae" in result.stderr
