"""The JSON API under load: a real `publisher serve` process on SQLite (WAL), or with
`--db postgresql` on a throwaway PostgreSQL cluster (tests/pgcluster.py).

* subscriber creates per second through POST /api/v1/subscribers from `--clients` (20)
  concurrent keep-alive clients, with a key that may import confirmed people (the whole
  request path: key, rate limit, validation, the consent transactions, the audit log);
* the same with an Idempotency-Key on every request;
* GET /healthz from as many clients: the floor the server itself sets;

with p50/p99 latency; afterwards the store is counted: every 201 is a person (nothing lost,
nothing doubled). Webhook deliveries per second: `python -m bench webhooks`.

    .venv/bin/python -m bench.api [--creates 4000] [--clients 20] [--db postgresql]
                                  [--workers N] [--threads]

`--workers N` is passed to `publisher serve`: N worker processes (docs/operators.md); the
server's CPU is then that of the supervisor and every worker together. `--threads` prints
the CPU per create of each server thread (one worker) and of the bench client itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    children,
    free_port,
    percentiles,
    read_response,
    serve_workers,
    throwaway_postgresql,
)
from publisher.store import open_store
from publisher.store.api_keys import create_key
from publisher.store.subscribers import count_by_status

CONFIG = """\
organisation:
  name: Bench Org
  website: https://www.example.org
  public_url: http://127.0.0.1:{port}
  postal_address: 1 Main St
  from_email: news@example.org
campaigns:
  - name: weekly
    title: Weekly
    subject: This week
    audience: [labor]
"""
CLIENTS = 20


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: str, body: bytes
) -> int:
    """One keep-alive request with a minimal client (httpx would take the server's CPU)."""
    writer.write(head.encode() + body)
    return await read_response(reader)


async def _run(
    port: int, count: int, clients: int, make: object
) -> tuple[float, list[float], dict[int, int]]:
    pending = list(range(count))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while pending:
            n = pending.pop()
            head, body = make(n)  # type: ignore[operator]
            started = time.perf_counter()
            status = await _request(reader, writer, head, body)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies, statuses


def _creator(port: int, token: str, prefix: str, idempotent: bool) -> object:
    def make(n: int) -> tuple[str, bytes]:
        body = json.dumps(
            {
                "email": f"{prefix}{n}@example.org",
                "topics": ["labor"],
                "consent": {"text": "Signed the petition", "form": "bench"},
            }
        ).encode()
        extra = f"Idempotency-Key: {prefix}-{n}\r\n" if idempotent else ""
        head = (
            f"POST /api/v1/subscribers HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n"
        )
        return head, body

    return make


def _health(port: int) -> object:
    def make(n: int) -> tuple[str, bytes]:
        return f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n", b""

    return make


@contextmanager
def _database(db: str, folder: Path) -> Iterator[str]:
    """The store's URL: a SQLite file in `folder`, or a database of a throwaway cluster."""
    if db == "sqlite":
        yield f"sqlite:///{folder}/bench.db"
        return
    with throwaway_postgresql() as url:
        yield url


def _start(folder: Path, port: int, url: str, workers: int = 1) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "PUBLISHER_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "PUBLISHER_DATABASE_URL": url,
    }
    command = [sys.executable, "-m", "publisher.cli", "--config", str(folder / "schedules.yaml")]
    log = open(folder / "serve.log", "wb")  # noqa: SIM115 (the server's, while it runs)
    server = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--api-per-minute", "100000000"]
        + ["--workers", str(workers)],
        env=env,
        stderr=log,
    )
    deadline = time.monotonic() + 120  # a loaded machine starts it slowly
    while time.monotonic() < deadline and server.poll() is None:
        try:
            answered = httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.TransportError:
            answered = False
        if answered and (workers == 1 or len(serve_workers(server.pid)) == workers):
            return server
        time.sleep(0.1)
    print((folder / "serve.log").read_text(errors="replace")[-2000:], file=sys.stderr)
    server.kill()
    raise SystemExit("publisher serve did not start")


def _cpu(pid: int) -> float:
    """Seconds of CPU the process and its live children (the workers of `--workers N`)
    have used (user + system, every thread), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # ended meanwhile
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu(child) for child in children(pid))


def _thread_cpu(pid: int) -> dict[str, float]:
    """Seconds of CPU each thread of the process has used, by "thread id (name)"."""
    found: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        role = "the event loop" if tid == str(pid) else name
        found[f"{tid} ({role})"] = (int(fields[11]) + int(fields[12])) / tick
    return found


def _measured(
    pid: int,
    run: Coroutine[Any, Any, tuple[float, list[float], dict[int, int]]],
    threads: bool = False,
) -> tuple[float, list[float], dict[int, int], float]:
    """A run and the server's CPU per request in it (less load-dependent than the rate);
    with `threads`, each server thread's CPU per request and the client's are printed: the
    server process is GIL-bound, so these say where a request's time goes."""
    before, each, mine = _cpu(pid), _thread_cpu(pid) if threads else {}, os.times()
    seconds, latencies, statuses = asyncio.run(run)
    count = max(len(latencies), 1)
    if threads:
        used = os.times()
        client = used.user + used.system - mine.user - mine.system
        print(f"  bench client (this process): {client / count * 1000:.3f} ms/request")
        for thread, spent in sorted(_thread_cpu(pid).items()):
            if spent - each.get(thread, 0.0) >= 0.01:
                per = (spent - each.get(thread, 0.0)) / count * 1000
                print(f"  server thread {thread}: {per:.3f} ms/request")
    return seconds, latencies, statuses, (_cpu(pid) - before) / count


def _line(label: str, count: int, result: tuple[float, list[float], dict[int, int], float]) -> str:
    seconds, latencies, statuses, cpu = result
    return (
        f"{label:<34} {count / seconds:8.0f}/s  {percentiles(latencies)}  "
        f"server CPU {cpu * 1000:.2f} ms/request  statuses {statuses}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.api")
    parser.add_argument("--creates", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="publisher serve --workers N")
    parser.add_argument(
        "--threads", action="store_true", help="CPU per request of each server thread (creates)"
    )
    args = parser.parse_args(
        argv if argv is not None else sys.argv[2:] if sys.argv[1:2] == ["api"] else sys.argv[1:]
    )
    from datetime import UTC, datetime

    with tempfile.TemporaryDirectory() as tmp, _database(args.db, Path(tmp)) as url:
        folder, port = Path(tmp), free_port()
        (folder / "schedules.yaml").write_text(CONFIG.format(port=port), encoding="utf-8")
        store = open_store(url)
        _, token = create_key(
            store, "bench", kind="scoped", created_by="bench", now=datetime.now(UTC),
            scopes=["subscribers:write", "subscribers:import"],
        )  # fmt: skip
        server = _start(folder, port, url, args.workers)
        try:
            pid, n, clients = server.pid, args.creates, args.clients
            # every worker past its start (imports, its first requests) before measuring
            asyncio.run(_run(port, 500 * args.workers, clients, _health(port)))
            floor = _measured(pid, _run(port, n, clients, _health(port)))
            creates = _run(port, n, clients, _creator(port, token, "a", False))
            plain = _measured(pid, creates, threads=args.threads and args.workers == 1)
            keyed = _measured(pid, _run(port, n, clients, _creator(port, token, "b", True)))
        finally:
            server.terminate()
            server.wait(10)
        stored = sum(count_by_status(store).values())
        store.close()
    created = plain[2].get(201, 0) + keyed[2].get(201, 0)
    where = "SQLite (WAL)" if args.db == "sqlite" else "PostgreSQL"
    workers = f", {args.workers} workers" if args.workers > 1 else ""
    print(f"{args.clients} clients, {args.creates} requests each run, {where}{workers}")
    print(_line("GET /healthz (the floor)", args.creates, floor))
    print(_line("POST /subscribers", args.creates, plain))
    print(_line("POST /subscribers + Idempotency-Key", args.creates, keyed))
    print(f"answered 201: {created}; people in the store: {stored}; lost: {created - stored}")


if __name__ == "__main__":
    main()
