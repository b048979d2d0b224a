"""Outgoing webhook deliveries per second to a local receiver (issue 22: >= 500/s), with the
p50/p99 latency of one signed POST, and nothing lost: every event written to the outbox
(through the real store function, in its transaction) reaches the receiver, which counts
distinct webhook-ids, and every delivery ends `delivered`.

    .venv/bin/python -m bench webhooks [--events 5000] [--workers 16]

The receiver is a uvicorn server in its own process (the deliverer does not share its
interpreter); the store is a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from publisher.config import WebhooksConfig
from publisher.deliver.webhooks import Deliverer
from publisher.store import open_store, outbox, webhook_queue, webhooks
from publisher.store.consent import CLI, add_pending, set_subscriber_status

RECEIVER = """
import json, sys, uvicorn
seen, total = set(), [0]
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if scope["method"] == "POST":
        headers = dict(scope["headers"])
        seen.add(headers[b"webhook-id"]); total[0] += 1
        body = b"ok"
    else:
        body = json.dumps({"distinct": len(seen), "total": total[0]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, http="httptools")
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str) -> dict:
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
                return dict(json.loads(answer.read()))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.webhooks")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args(
        argv
        if argv is not None
        else sys.argv[2:]
        if sys.argv[1:2] == ["webhooks"]
        else sys.argv[1:]
    )
    folder, port = Path(tempfile.mkdtemp(prefix="bench-webhooks-")), _free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)], env=os.environ)
    url = f"http://127.0.0.1:{port}/hook"
    try:
        _wait_for(url)
        _run(folder, url, args.events, args.workers)
    finally:
        receiver.terminate()
        receiver.wait(10)


def _run(folder: Path, url: str, events: int, workers: int) -> None:
    store = open_store(f"sqlite:///{folder}/bench.db", pool_size=workers + 4)
    now = datetime.now(UTC)
    webhooks.create_endpoint(store, url, outbox.EVENTS, by="bench", now=now)
    started = time.perf_counter()
    for n in range(events):  # each its own real transaction: the change and its event
        person = add_pending(store, f"p{n}@example.org", name=None, topics=(), ctx=CLI, now=now)
        set_subscriber_status(store, person.id, "active", action="confirm", ctx=CLI, now=now)
    written = time.perf_counter() - started
    settings = WebhooksConfig(allow_private_addresses=True, workers=workers)
    sender = Deliverer(store, settings, batch=workers * 8)
    started = time.perf_counter()
    run = sender.run_until_idle(limit=100_000)
    seconds = time.perf_counter() - started
    sender.close()
    got = _wait_for(url)
    (found,) = webhooks.list_endpoints(store)
    durations = sorted(a.duration_ms for a in webhook_queue.attempts(store, found.id, limit=events))
    states = webhook_queue.state_counts(store)
    print(f"{events} events written with their changes in {written:.1f} s")
    print(
        f"delivered {run.delivered} in {seconds:.2f} s: {run.delivered / seconds:,.0f}/s "
        f"({workers} workers); POST p50 {statistics.median(durations):.0f} ms, "
        f"p99 {durations[int(len(durations) * 0.99) - 1]:.0f} ms"
    )
    lost = events - got["distinct"]
    print(
        f"receiver: {got['distinct']} distinct webhook-ids, {got['total']} requests; "
        f"deliveries {states}; lost {lost}"
    )
    if lost or states.get("delivered") != events:
        sys.exit("webhook deliveries were lost")


if __name__ == "__main__":
    main()
