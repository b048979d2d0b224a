"""The subscriber web under load: a real `publisher serve` process on SQLite (WAL).

* one-click unsubscribes (RFC 8058 POST) per second from 50 concurrent clients;
* SendGrid webhook events per second, signed batches of 1,000;

with p50/p99 latency, and afterwards the store is checked: every request's effect is there
(no error, nothing lost, no "database is locked").

    .venv/bin/python -m bench.web [--subscribers 5000] [--batches 20]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from publisher.store import Store, open_store
from publisher.store.consent import count_history
from publisher.store.events import count_stored
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
"""
CLIENTS = 50


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentiles(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"


async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, path: str, body: bytes
) -> int:
    """One keep-alive HTTP/1.1 POST on an open connection; returns the status. A minimal
    client on purpose: httpx would spend more CPU per request than the server does, and on
    two cores the client's CPU is taken from the server's."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def _unsubscribe_all(port: int, tokens: list[str]) -> tuple[float, list[float], int]:
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
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return time.perf_counter() - started, latencies, errors


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


def _start(folder: Path, port: int, public_key: str) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "PUBLISHER_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "SENDGRID_WEBHOOK_PUBLIC_KEY": public_key,
        "PUBLISHER_DATABASE_URL": f"sqlite:///{folder}/bench.db",
    }
    command = [sys.executable, "-m", "publisher.cli", "--config", str(folder / "schedules.yaml")]
    server = subprocess.Popen(
        [*command, "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("publisher serve did not start")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.web")
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args(
        argv if argv is not None else sys.argv[2:] if sys.argv[1:2] == ["web"] else sys.argv[1:]
    )
    folder, port = Path(tempfile.mkdtemp(prefix="bench-web-")), _free_port()
    (folder / "schedules.yaml").write_text(CONFIG.format(port=port), encoding="utf-8")
    store = open_store(f"sqlite:///{folder}/bench.db")
    now = datetime.now(UTC)
    emails = [f"person{i}@example.org" for i in range(args.subscribers)]
    import_subscribers(store, (SubscriberInput(e) for e in emails), now=now)
    tokens = [subscriber.token for subscriber in iter_subscribers(store)]
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    server = _start(folder, port, base64.b64encode(public).decode())
    url = f"http://127.0.0.1:{port}"
    try:
        seconds, latencies, errors = asyncio.run(_unsubscribe_all(port, tokens))
        print(
            f"one-click unsubscribe, {CLIENTS} clients: {len(tokens) / seconds:,.0f}/s "
            f"({len(tokens)} in {seconds:.2f} s), {_percentiles(latencies)}, {errors} errors"
        )
        batches = list(_signed_batches(key, emails, args.batches))
        seconds, latencies, errors = _webhook(url, batches)
        events = 1000 * args.batches
        print(
            f"webhook, batches of 1,000: {events / seconds:,.0f} events/s "
            f"({events} in {seconds:.2f} s), per batch {_percentiles(latencies)}, {errors} errors"
        )
    finally:
        server.terminate()
        server.wait(10)
    _verify(store, len(tokens), events)


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
