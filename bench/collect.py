"""Collection benchmark: 200 remote feeds on 20 loopback hosts (tests/servers/feeds.py, in
its own process), each request answered after 300 ms, collected into a fresh SQLite store
one at a time (the baseline: `collect.concurrency` 1) and then at once (8, 16, 32 fetches,
at most 2 per host), all in the same run.

    python -m bench.collect [--feeds 200] [--hosts 20] [--latency 0.3] [--concurrency 1,8,16,32]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.dispatch import peak_mib, reset_peak

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.servers: the same feed servers the tests use

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PER_HOST = 2


def _serve(hosts: int, latency: float, queue: Any) -> None:
    from tests.servers.feeds import FeedFarm

    farm = FeedFarm(hosts, latency=latency).start()
    queue.put([farm.url(k, "") for k in range(hosts)])
    time.sleep(3600)


def start_farm(hosts: int, latency: float) -> tuple[Any, list[str]]:
    """The servers in a process of their own: they must not share the collector's GIL."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_serve, args=(hosts, latency, queue), daemon=True)
    process.start()
    return process, queue.get(timeout=30)


def config_text(bases: list[str], feeds: int, concurrency: int) -> str:
    lines = [f"collect: {{concurrency: {concurrency}, per_host: {PER_HOST}}}", "sources:"]
    for n in range(feeds):  # grouped by host, as a configuration usually is
        base = bases[n * len(bases) // feeds]
        lines.append(f'  - {{name: f{n:04d}, type: feed, url: "{base}/ok/{n}"}}')
    return "\n".join(lines) + "\n"


def run(folder: Path, bases: list[str], feeds: int, concurrency: int) -> tuple[float, float, int]:
    """One cold collection into a fresh store: (seconds, peak RSS MiB, items stored)."""
    from publisher.config import load_config
    from publisher.sources.collect import collect_all
    from publisher.store import open_store
    from publisher.store.sink import StoreSink
    from tests.conftest import write_config

    where = folder / f"c{concurrency}"
    where.mkdir()
    config = load_config(write_config(where, config_text(bases, feeds, concurrency)))
    store = open_store(f"sqlite:///{where}/bench.db")
    reset_peak()
    started = time.perf_counter()
    report = collect_all(config, StoreSink(store), now=NOW)
    seconds = time.perf_counter() - started
    if report.problems:
        raise SystemExit(f"bench.collect: unexpected problems: {report.problems[:3]}")
    return seconds, peak_mib(), report.inserted


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.collect")
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument(
        "--concurrency",
        type=lambda v: [int(c) for c in v.split(",")],
        default=[1, 8, 16, 32],
        help="comma-separated; the first is the baseline",
    )
    args, _ = parser.parse_known_args()  # `python -m bench collect` passes module names too
    process, bases = start_farm(args.hosts, args.latency)
    print(
        f"  {args.feeds} feeds on {len(bases)} hosts, {args.latency * 1000:.0f} ms a request, "
        f"at most {PER_HOST} per host; a fresh SQLite store each run"
    )
    print(
        f"  {'concurrency':>11} {'wall s':>8} {'sources/s':>10} {'items':>6} "
        f"{'peak RSS MiB':>13} {'speed-up':>9}"
    )
    baseline = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for concurrency in args.concurrency:
                seconds, peak, items = run(Path(tmp), bases, args.feeds, concurrency)
                baseline = baseline or seconds
                print(
                    f"  {concurrency:>11} {seconds:>8.2f} {args.feeds / seconds:>10.1f} "
                    f"{items:>6} {peak:>13.1f} {baseline / seconds:>8.1f}x",
                    flush=True,
                )
    finally:
        process.kill()
    print("  target: >= 10x the sequential baseline at the default concurrency (16)")


if __name__ == "__main__":
    main()
