"""What `publisher serve` bounds by itself (issue 19): request bodies counted as they
stream (chunked or not) and cut at the route's limit, slow headers and slow bodies cut at
their deadline, oversized headers refused, and nothing slow on the event loop."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from publisher.web.bounds import Limits
from tests.web_support import SendGridKeys, free_port, serve, write_web_config

MiB = 1024 * 1024
FORMS = ["/subscribe", "/preferences", "/unsubscribe?token=x", "/confirm", "/admin/login"]
SHORT = Limits(header_timeout=1.0, body_timeout=1.0)


@contextmanager
def publisher_serve(project: Path) -> Iterator[tuple[str, int]]:
    """The real `publisher serve` command on a SQLite file: (base URL, process id)."""
    port = free_port()
    write_web_config(project, port)
    env = os.environ | {
        "PUBLISHER_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "SENDGRID_WEBHOOK_PUBLIC_KEY": SendGridKeys().public_b64,
        "PUBLISHER_DATABASE_URL": f"sqlite:///{project}/web.db",
    }
    command = [sys.executable, "-m", "publisher.cli", "--config", str(project / "schedules.yaml")]
    server = subprocess.Popen(
        [*command, "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # until the server answers (it is starting)
            try:
                httpx.get(f"{url}/healthz")
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=20)


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def _head(port: int, path: str, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n{extra}\r\n"
    ).encode()


def _status(sock: socket.socket) -> int:
    """The status of the first answer on `sock` (0 if it closed without one)."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return 0
        data += chunk
    return int(data.split(b" ", 2)[1])


def stream_chunked(port: int, path: str, total: int) -> int:
    """POST `total` bytes chunked (1 MiB chunks, the whole of them, as a client that ignores
    an early answer would) and return the answer's status."""
    chunk = b"a" * MiB
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(_head(port, path, "Transfer-Encoding: chunked\r\n"))
        try:
            for _ in range(total // MiB):
                sock.sendall(frame)
            sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server may stop reading; its answer is still there to read
            pass
        return _status(sock)


@pytest.mark.slow  # starts the real `publisher serve` and streams 1.8 GB through it
def test_a_streamed_300_mb_chunked_body_is_413_and_server_memory_stays_flat(project):
    with publisher_serve(project) as (url, pid):
        port = int(url.rsplit(":", 1)[1])
        for path in [*FORMS, "/webhooks/sendgrid"]:  # warm up: every route answered once
            assert httpx.post(url + path, content=b"a=b").status_code < 500
        baseline, started_peak, peak = rss_mib(pid), rss_mib(pid, "VmHWM"), [0.0]
        done = threading.Event()

        def sample() -> None:  # the server's resident memory, all along the uploads
            while not done.is_set():
                peak[0] = max(peak[0], rss_mib(pid))
                done.wait(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            statuses = {path: stream_chunked(port, path, 300 * MiB) for path in FORMS}
            junk = "X-Twilio-Email-Event-Webhook-Signature: junk\r\n"
            with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
                sock.sendall(_head(port, "/webhooks/sendgrid", junk + "Content-Length: 5\r\n"))
                sock.sendall(b"[{}]\n")
                junk_status = _status(sock)
            statuses["/webhooks/sendgrid"] = stream_chunked(port, "/webhooks/sendgrid", 300 * MiB)
        finally:
            done.set()
            sampler.join()
        after = rss_mib(pid, "VmHWM")
    assert junk_status == 403  # a small body with a junk signature is read and refused
    assert statuses == dict.fromkeys([*FORMS, "/webhooks/sendgrid"], 413)
    assert peak[0] - baseline < 20, f"server grew from {baseline:.0f} to {peak[0]:.0f} MiB"
    # the peak between two samples too (start-up, migrations included, may have been higher)
    assert after <= max(started_peak, baseline + 20), f"peak {after:.0f} MiB"


def test_a_declared_length_over_the_limit_is_413_before_the_body_is_sent(project, store):
    with serve(project, store) as served:
        port = int(served.url.rsplit(":", 1)[1])
        for path, limit in [("/subscribe", 64 * 1024), ("/webhooks/sendgrid", 2 * MiB)]:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(_head(port, path, f"Content-Length: {limit + 1}\r\n"))
                assert _status(sock) == 413  # answered with not one body byte sent
        small = httpx.post(served.url + "/webhooks/sendgrid", content=b"x" * (MiB + 1))
        assert small.status_code == 403  # a SendGrid-sized batch still reaches the check


def _closed_after(sock: socket.socket, trickle: bytes, limit: float) -> tuple[float, bytes]:
    """Send `trickle` one byte at a time (5 a second) until the server closes; returns
    (seconds until it did, what it answered)."""
    started, answer = time.monotonic(), b""
    for i in range(int(limit * 5)):
        if select.select([sock], [], [], 0.2)[0]:
            try:
                while data := sock.recv(4096):
                    answer += data
            except OSError:
                pass
            return time.monotonic() - started, answer
        try:
            sock.send(trickle[i % len(trickle) : i % len(trickle) + 1])
        except OSError:
            return time.monotonic() - started, answer
    return time.monotonic() - started, answer


def test_slow_headers_are_cut_at_the_header_deadline(project, store):
    with serve(project, store, limits=SHORT) as served:
        port = int(served.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            seconds, _ = _closed_after(sock, b"X-Slow: yes\r\n", limit=15)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as silent:
            quiet = time.monotonic()
            assert select.select([silent], [], [], 15)[0] and silent.recv(1) == b""
            quiet = time.monotonic() - quiet
        assert httpx.get(served.url + "/healthz").status_code == 200  # others still served
    assert 0.9 < seconds < 10, f"closed after {seconds:.1f} s (deadline 1 s)"
    assert 0.9 < quiet < 10, f"a silent connection was closed after {quiet:.1f} s"


def test_slow_bodies_are_cut_at_the_body_deadline(project, store):
    with serve(project, store, limits=SHORT) as served:
        port = int(served.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(_head(port, "/subscribe", "Content-Length: 1000\r\n"))
            seconds, answer = _closed_after(sock, b"a", limit=15)
    assert 0.9 < seconds < 10, f"closed after {seconds:.1f} s (deadline 1 s)"
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_oversized_headers_are_refused(project, store):
    with serve(project, store) as served:
        port = int(served.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            try:
                for _ in range(100):  # 100 x 1 KiB headers, never finished
                    sock.sendall(b"X-Big: " + b"b" * 1024 + b"\r\n")
            except OSError:
                pass
            assert _status(sock) == 400
        assert httpx.get(served.url + "/healthz").status_code == 200


def test_logins_hash_on_one_thread_off_the_event_loop(project, store, monkeypatch):
    """8 wrong-password log-ins at once, the first one's password check held: /healthz and
    a subscriber page still answer (argon2 runs off the event loop), and the checks run one
    at a time (one hashing thread, so log-ins never take the pages' worker threads). The
    latency figure under such a flood is bench/web.py's."""
    import publisher.store.staff
    import publisher.web.admin.login

    checking, release, posted = threading.Event(), threading.Event(), threading.Condition()
    counts = {"arrived": 0, "active": 0, "most": 0, "checked": 0}
    verify, login_form = publisher.store.staff._verify, publisher.web.admin.login._login_form

    def held_verify(password_hash: str, password: str) -> bool:
        with posted:
            counts["active"] += 1
            counts["most"] = max(counts["most"], counts["active"])
        checking.set()
        release.wait(60)
        try:
            return verify(password_hash, password)
        finally:
            with posted:
                counts["active"] -= 1
                counts["checked"] += 1

    async def counted_form(request: Any, too_old: str) -> Any:
        read = await login_form(request, too_old)
        with posted:  # from here the handler goes straight to the hashing thread
            counts["arrived"] += 1
            posted.notify_all()
        return read

    monkeypatch.setattr(publisher.store.staff, "_verify", held_verify)
    monkeypatch.setattr(publisher.web.admin.login, "_login_form", counted_form)
    answers: list[int] = []

    def log_in(n: int) -> None:  # a new address each time: no lock-out cuts in
        with httpx.Client(base_url=served.url, timeout=120) as http:
            page = http.get("/admin/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
            form = {"email": f"x{n}@example.org", "password": "wrong", "csrf": csrf}
            answers.append(http.post("/admin/login", data=form).status_code)

    with serve(project, store) as served:
        clients = [threading.Thread(target=log_in, args=(n,)) for n in range(8)]
        for client in clients:
            client.start()
        try:
            assert checking.wait(60), "no password check started"
            with posted:  # a condition, not a clock (60 s is for a hang only)
                assert posted.wait_for(lambda: counts["arrived"] == 8, 60), (counts, answers)
            # every log-in is queued for hashing and one is held: the loop still serves
            assert httpx.get(served.url + "/healthz", timeout=30).status_code == 200
            assert httpx.get(served.url + "/subscribe", timeout=30).status_code == 200
            assert not answers and counts["checked"] == 0  # all 8 still waiting
        finally:
            release.set()
            for client in clients:
                client.join(120)
    assert answers == [401] * 8
    assert counts["checked"] == 8 and counts["most"] == 1, counts


def test_a_slow_preview_does_not_hold_other_requests(project, store, monkeypatch):
    """The preview's compose and render run in a worker thread: while one is stuck,
    /healthz and the subscriber pages still answer."""
    import publisher.pipeline
    from publisher.store.staff import add_staff
    from tests.conftest import FIXED_NOW

    entered, release = threading.Event(), threading.Event()

    def stuck_preview(*args: object, **kwargs: object) -> None:
        entered.set()
        release.wait(60)
        return None  # "nothing new"

    monkeypatch.setattr(publisher.pipeline, "prepare_edition", stuck_preview)
    add_staff(store, "edu@example.org", "editor", "correct horse battery staple", now=FIXED_NOW)
    with serve(project, store) as served, httpx.Client(base_url=served.url, timeout=60) as staff:
        page = staff.get("/admin/login").text
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        form = {"email": "edu@example.org", "password": "correct horse battery staple"}
        assert staff.post("/admin/login", data=form | {"csrf": csrf}).status_code == 303
        answers: list[int] = []
        preview = threading.Thread(
            target=lambda: answers.append(staff.get("/admin/campaigns/weekly/preview").status_code)
        )
        preview.start()
        try:
            assert entered.wait(30)
            assert httpx.get(served.url + "/healthz", timeout=10).status_code == 200
            assert httpx.get(served.url + "/subscribe", timeout=10).status_code == 200
            assert not answers  # the preview is still stuck
        finally:
            release.set()
            preview.join(60)
    assert answers == [200]


def test_at_most_4_webhook_bodies_are_read_at_once(project, store):
    with serve(project, store, limits=SHORT) as served:
        port = int(served.url.rsplit(":", 1)[1])
        holders = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(4)]
        for holder in holders:  # 4 bodies announced and never sent: cut at the 1 s deadline
            holder.sendall(_head(port, "/webhooks/sendgrid", "Content-Length: 100\r\n"))
        # once a later request is answered, the loop has started the 4 earlier ones
        assert httpx.get(served.url + "/healthz").status_code == 200
        started = time.monotonic()
        fifth = httpx.post(served.url + "/webhooks/sendgrid", content=b"[]", timeout=30)
        waited = time.monotonic() - started
        statuses = [_status(holder) for holder in holders]
        for holder in holders:
            holder.close()
    assert statuses == [408] * 4
    assert fifth.status_code == 403  # read (no signature) once a holder was cut
    assert waited > 0.5, f"the fifth body was read after {waited:.2f} s"
