"""The subscriber web under load: a real `publisher serve` process on SQLite (WAL).

* one-click unsubscribes (RFC 8058 POST) per second from `--clients` concurrent clients
  (8: each waits for its answer, so more clients only lengthen the queue, not the rate);
* SendGrid webhook events per second, signed batches of 1,000;
* the same unsubscribes, and /healthz, while 8 clients hammer the staff log-in with wrong
  passwords (argon2) and an editor reloads a campaign preview (compose, render, MJML);
* the server's memory under a flood of 300 MB chunked uploads (each answered 413);

with p50/p99 latency, and afterwards the store is checked: every request's effect is there
(no error, nothing lost, no "database is locked").

    .venv/bin/python -m bench.web [--subscribers 5000] [--batches 20] [--uploads 8] [--clients 8]
                                  [--workers N]

`--workers N` is passed to `publisher serve` (N worker processes); the memory is then that
of the supervisor and every worker together.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench.common import children, free_port, percentiles, read_response, serve_workers
from publisher.store import Store, open_store
from publisher.store.events import count_stored
from publisher.store.staff import add_staff
from publisher.store.subscriber_record import count_history
from publisher.store.subscribers import (
    SubscriberInput,
    count_by_status,
    import_subscribers,
    iter_subscribers,
)

CONFIG = """\
organisation:
  name: Bench Org
  website: https://www.example.org
  public_url: http://127.0.0.1:{port}
  postal_address: 1 Main St
  from_email: news@example.org
sources:
  - name: posts
    type: markdown
    path: content
campaigns:
  - name: weekly
    title: Weekly
    subject: This week
    audience: [labor]
    lookback_days: 30
    sections:
      - name: news
        type: list
        topics: [labor]
"""
CLIENTS = 8
LOGINS = 8
Request = tuple[str, str, bytes, str]  # method, path, body, extra header lines
STAFF, PASSWORD = "edu@example.org", "bench password of the editor"


async def _post(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    port: int,
    path: str,
    body: bytes,
    headers: str = "",
    method: str = "POST",
) -> int:
    """One keep-alive HTTP/1.1 request on an open connection; returns the status. A minimal
    client on purpose: httpx would spend more CPU per request than the server does, and on
    two cores the client's CPU is taken from the server's."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n{headers}\r\n"
    )
    writer.write(head.encode() + body)
    return await read_response(reader)


async def _unsubscribe_all(
    port: int, tokens: list[str], clients: int = CLIENTS
) -> tuple[float, list[float], int]:
    pending = list(reversed(tokens))
    latencies: list[float] = []
    errors = 0
    body = b"List-Unsubscribe=One-Click"

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while pending:
            token = pending.pop()
            started = time.perf_counter()
            status = await _post(reader, writer, port, f"/unsubscribe?token={token}", body)
            latencies.append(time.perf_counter() - started)
            errors += status != 200
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies, errors


async def _loop_requests(
    port: int, stop: asyncio.Event, out: list[tuple[int, float]], make: Callable[[int], Request]
) -> None:
    """Requests from `make(i)` one after the other on one connection until `stop`:
    (status, seconds) each."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    while not stop.is_set():
        i += 1
        method, path, body, headers = make(i)
        started = time.perf_counter()
        status = await _post(reader, writer, port, path, body, headers, method)
        out.append((status, time.perf_counter() - started))
        if method == "GET":  # /healthz is a probe, and an editor reloads once a second
            await asyncio.sleep(0.02 if path == "/healthz" else 1.0)
    writer.close()


async def _under_load(
    port: int, tokens: list[str], csrf: str, cookie: str, clients: int = CLIENTS
) -> tuple[tuple[float, list[float], int], list[list[tuple[int, float]]]]:
    """The unsubscribes while 8 clients log in with wrong passwords (a new address and IP
    each time: no lock-out cuts in), an editor reloads the preview every second, /healthz
    is probed."""
    stop = asyncio.Event()
    logins: list[tuple[int, float]] = []
    previews: list[tuple[int, float]] = []
    health: list[tuple[int, float]] = []

    token, binding = csrf.split("\n")

    def login(n: int) -> Callable[[int], Request]:
        def make(i: int) -> Request:
            form = {"email": f"x{n}-{i}@example.org", "password": "wrong", "csrf": token}
            return (
                "POST",
                "/admin/login",
                urlencode(form).encode(),
                f"X-Forwarded-For: 10.{n}.{i // 250 % 250}.{i % 250}\r\nCookie: {binding}\r\n",
            )

        return make

    tasks = [
        asyncio.create_task(_loop_requests(port, stop, logins, login(n))) for n in range(LOGINS)
    ]
    preview = (
        "GET",
        "/admin/campaigns/weekly/preview",
        b"",
        f"Cookie: publisher_staff={cookie}\r\n",
    )
    tasks.append(asyncio.create_task(_loop_requests(port, stop, previews, lambda i: preview)))
    probe = ("GET", "/healthz", b"", "")
    tasks.append(asyncio.create_task(_loop_requests(port, stop, health, lambda i: probe)))
    while len(logins) < LOGINS:  # the logins are under way
        await asyncio.sleep(0.05)
    result = await _unsubscribe_all(port, tokens, clients)
    stop.set()
    await asyncio.gather(*tasks)
    return result, [logins, previews, health]


def _staff_session(url: str) -> tuple[str, str]:
    """The log-in form's token with the cookie it is bound to (the wrong-password clients
    send both, so each attempt reaches the password check), and a session cookie of the
    editor."""
    with httpx.Client(base_url=url, timeout=60) as http:  # argon2 at a load of 10: > 5 s
        page = http.get("/admin/login").text
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        csrf = found.group(1) if found else ""
        binding = f"publisher_login={http.cookies['publisher_login']}"
        http.post("/admin/login", data={"email": STAFF, "password": PASSWORD, "csrf": csrf})
        return f"{csrf}\n{binding}", http.cookies["publisher_staff"]


def _rss_mib(pid: int) -> float:
    """The resident memory of the process and its children (the workers), MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # ended meanwhile
        return 0.0
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    own = int(found.group(1)) / 1024 if found else 0.0
    return own + sum(_rss_mib(child) for child in children(pid))


def _upload(port: int, path: str, mib: int) -> int:
    """`mib` MiB chunked to `path`, all of it (a client ignoring the early answer)."""
    frame = b"100000\r\n" + b"a" * 2**20 + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=300) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        sock.sendall(head.encode())
        try:
            for _ in range(mib):
                sock.sendall(frame)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        answer = sock.recv(64)
        return int(answer.split()[1]) if answer.startswith(b"HTTP/") else 0


def _flood(port: int, pid: int, uploads: int, mib: int) -> str:
    """`uploads` parallel chunked uploads of `mib` MiB to the forms and the webhook, while
    the server's resident memory is sampled every 10 ms."""
    before, peak, statuses = _rss_mib(pid), [0.0], [0] * uploads
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib(pid))
            done.wait(0.01)

    def upload(n: int) -> None:
        statuses[n] = _upload(port, ("/subscribe", "/webhooks/sendgrid")[n % 2], mib)

    threads = [threading.Thread(target=sample)]
    threads += [threading.Thread(target=upload, args=(n,)) for n in range(uploads)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads[1:]:
        thread.join()
    done.set()
    threads[0].join()
    answered = sum(status == 413 for status in statuses)
    return (
        f"flood of {uploads} parallel {mib} MB chunked uploads ({uploads * mib / 1024:.1f} GB "
        f"in {time.perf_counter() - started:.1f} s): {answered}/{uploads} answered 413; server "
        f"RSS {before:.0f} MiB before, peak {peak[0]:.0f} MiB (+{peak[0] - before:.0f} MiB)"
    )


def _report_load(
    result: tuple[float, list[float], int], background: list[list[tuple[int, float]]]
) -> None:
    (seconds, latencies, errors), (logins, previews, health) = result, background
    print(
        f"one-click unsubscribe while {LOGINS} clients log in and a preview reloads: "
        f"{len(latencies) / seconds:,.0f}/s, {percentiles(latencies)}, {errors} errors"
    )
    for name, rows, ok in (("log-ins", logins, 401), ("previews", previews, 200)):
        bad = sum(status != ok for status, _ in rows)
        print(
            f"  meanwhile {len(rows)} {name} ({len(rows) / seconds:.1f}/s), "
            f"{percentiles([t for _, t in rows])}, {bad} unexpected answers"
        )
    print(f"  /healthz, {len(health)} probes: {percentiles([t for _, t in health])}")


def _signed_batches(
    key: ec.EllipticCurvePrivateKey, emails: list[str], batches: int
) -> Iterator[tuple[bytes, dict[str, str]]]:
    kinds = ("delivered", "open", "click", "delivered", "processed")
    for b in range(batches):
        events = [
            {
                "sg_event_id": f"bench-{b}-{i}",
                "event": kinds[i % len(kinds)],
                "email": emails[(b * 1000 + i) % len(emails)],
                "timestamp": 1_700_000_000 + i,
                "edition_id": 1,
                "url": "https://www.example.org/a",
            }
            for i in range(1000)
        ]
        body = json.dumps(events).encode()
        stamp = str(int(time.time()))
        signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        yield (
            body,
            {
                "Content-Type": "application/json",
                "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            },
        )


def _webhook(
    url: str, batches: list[tuple[bytes, dict[str, str]]]
) -> tuple[float, list[float], int]:
    latencies, errors = [], 0
    with httpx.Client(base_url=url, timeout=60) as http:
        started = time.perf_counter()
        for body, headers in batches:
            t = time.perf_counter()
            answer = http.post("/webhooks/sendgrid", content=body, headers=headers)
            latencies.append(time.perf_counter() - t)
            errors += answer.status_code != 200 or answer.json()["stored"] != 1000
        return time.perf_counter() - started, latencies, errors


def _start(folder: Path, port: int, public_key: str, workers: int) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "PUBLISHER_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "SENDGRID_WEBHOOK_PUBLIC_KEY": public_key,
        "PUBLISHER_DATABASE_URL": f"sqlite:///{folder}/bench.db",
    }
    command = [sys.executable, "-m", "publisher.cli", "--config", str(folder / "schedules.yaml")]
    subprocess.run([*command, "collect"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120  # a loaded machine starts N interpreters slowly
    while time.monotonic() < deadline:
        try:
            answered = httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.TransportError:
            answered = False
        if answered and (workers == 1 or len(serve_workers(server.pid)) == workers):
            return server
        time.sleep(0.1)
    server.kill()
    raise SystemExit("publisher serve did not start")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.web")
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=8, help="parallel 300 MB uploads")
    parser.add_argument("--upload-mib", type=int, default=300)
    parser.add_argument("--clients", type=int, default=CLIENTS, help="concurrent unsubscribers")
    parser.add_argument("--workers", type=int, default=1, help="publisher serve --workers N")
    args = parser.parse_args(
        argv if argv is not None else sys.argv[2:] if sys.argv[1:2] == ["web"] else sys.argv[1:]
    )
    folder, port = Path(tempfile.mkdtemp(prefix="bench-web-")), free_port()
    (folder / "schedules.yaml").write_text(CONFIG.format(port=port), encoding="utf-8")
    store = open_store(f"sqlite:///{folder}/bench.db")
    now = datetime.now(UTC)
    _write_posts(folder / "content", now)
    add_staff(store, STAFF, "editor", PASSWORD, now=now)
    emails = [f"person{i}@example.org" for i in range(2 * args.subscribers)]
    import_subscribers(store, (SubscriberInput(e) for e in emails), now=now)
    everyone = [subscriber.token for subscriber in iter_subscribers(store)]
    tokens, loaded = everyone[: args.subscribers], everyone[args.subscribers :]
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    server = _start(folder, port, base64.b64encode(public).decode(), args.workers)
    url = f"http://127.0.0.1:{port}"
    try:
        seconds, latencies, errors = asyncio.run(_unsubscribe_all(port, tokens, args.clients))
        print(
            f"one-click unsubscribe, {args.clients} clients: {len(tokens) / seconds:,.0f}/s "
            f"({len(tokens)} in {seconds:.2f} s), {percentiles(latencies)}, {errors} errors"
        )
        batches = list(_signed_batches(key, emails, args.batches))
        seconds, latencies, errors = _webhook(url, batches)
        events = 1000 * args.batches
        print(
            f"webhook, batches of 1,000: {events / seconds:,.0f} events/s "
            f"({events} in {seconds:.2f} s), per batch {percentiles(latencies)}, {errors} errors"
        )
        csrf, cookie = _staff_session(url)
        _report_load(*asyncio.run(_under_load(port, loaded, csrf, cookie, args.clients)))
        print(_flood(port, server.pid, args.uploads, args.upload_mib))
    finally:
        server.terminate()
        server.wait(10)
    _verify(store, len(everyone), events)


def _write_posts(folder: Path, now: datetime) -> None:
    """Twenty posts of the last days: the preview composes and renders an edition."""
    folder.mkdir()
    for n in range(20):
        day = (now - timedelta(days=1 + n % 10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        (folder / f"post-{n}.md").write_text(
            f"---\ntitle: Post number {n}\ndate: {day}\nkind: news\ntopics: [labor]\n---\n"
            + f"The story of post {n}, told at some length. " * 20,
            encoding="utf-8",
        )


def _verify(store: Store, unsubscribes: int, events: int) -> None:
    """Every request's effect is in the store: nothing lost."""
    unsubscribed = count_by_status(store).get("unsubscribed", 0)
    recorded, stored = count_history(store), count_stored(store)
    lost = (unsubscribes - unsubscribed) + (unsubscribes - recorded) + (events - stored)
    print(
        f"store afterwards: {unsubscribed}/{unsubscribes} unsubscribed, {recorded} history rows, "
        f"{stored}/{events} events; {'nothing lost' if lost == 0 else f'{lost} LOST'}"
    )
    if lost:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
