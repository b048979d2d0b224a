"""Small shared helpers for benchmarks: timing medians and peak memory."""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def measure(fn: Callable[[], Any], *, repeat: int = 5) -> tuple[float, float, Any]:
    """Run fn `repeat` times; return (median seconds, peak traced MiB of one run, last result)."""
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20, result


def row(label: str, seconds: float, extra: str = "") -> str:
    return f"{label:<48} {seconds * 1000:>10.1f} ms  {extra}"


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (status line, headers, Content-Length body) from a
    keep-alive connection; its status. The benchmarks' minimal client."""
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a benchmark's own server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentiles(latencies: list[float]) -> str:
    """p50 and p99 of latencies in seconds, as milliseconds."""
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"


@contextmanager
def throwaway_postgresql() -> Iterator[str]:
    """The URL of a database "bench" in a throwaway PostgreSQL cluster, stopped afterwards."""
    import psycopg

    from tests.pgcluster import start_cluster

    cluster = start_cluster()
    if cluster is None:
        raise SystemExit("no PostgreSQL server installed")
    try:
        with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "bench"')
        yield cluster.url("bench")
    finally:
        cluster.stop()


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (from /proc; none once it has ended)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def serve_workers(pid: int) -> list[int]:
    """The workers `publisher serve --workers N` started (not multiprocessing's resource
    tracker beside them)."""
    return [child for child in children(pid) if b"spawn_main" in _cmdline(child)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
