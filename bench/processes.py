"""Several sending processes on one PostgreSQL store: `publisher send` (which starts the
edition's send and sends too) plus N-1 `publisher worker` processes, against the
local SendGrid-compatible server (its own process, 150 ms latency per request), on a
throwaway PostgreSQL cluster (tests/pgcluster.py). Prints recipients/s per process count,
each process's peak RSS, and the CPU the server and PostgreSQL used (which is the limit).

    python -m bench.dispatch --processes 1,2,4 [--subscribers 200000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.dispatch import API_KEY, NOW, ROOT, _serve_sendgrid, start, stats

CHILD = (
    "import sys, atexit\n"
    "from pathlib import Path\n"
    "def peak():\n"
    "    for line in Path('/proc/self/status').read_text().splitlines():\n"
    "        if line.startswith('VmHWM:'):\n"
    "            print('peak-rss-mib', int(line.split()[1]) // 1024, file=sys.stderr)\n"
    "atexit.register(peak)\n"
    "from publisher.cli import main\n"
    "main(sys.argv[1:])\n"
)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that were waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _postgres_cpu(cluster) -> float:
    """All server processes of the cluster (the postmaster's children included once they
    exit: connections are per process)."""
    pid = int((cluster.root / "data" / "postmaster.pid").read_text().split()[0])
    total = _cpu_seconds(pid)
    for child in Path("/proc").iterdir():
        if child.name.isdigit():
            try:
                stat = (child / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                total += sum(int(f) for f in stat[11:13]) / os.sysconf("SC_CLK_TCK")
    return total


def _cli(config: Path, url: str, *args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "SENDGRID_API_KEY": API_KEY,
        "PUBLISHER_DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, "-c", str(config), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _peak(stderr: str) -> int:
    found = [int(line.split()[1]) for line in stderr.splitlines() if line.startswith("peak-rss")]
    return found[-1] if found else -1


def one_run(config: Path, url: str, server_url: str, server_pid: int, processes: int, cluster):
    from publisher.store import open_store
    from tests.servers.data import add_edition

    store = open_store(url)
    with store.engine.begin() as connection:  # each run on the same empty ledger
        connection.exec_driver_sql("TRUNCATE deliveries, send_work, send_plans")
    with store.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE deliveries, subscribers"
        )
    number = int(time.time() * 1000) % 1_000_000_000
    add_edition(store, NOW, number=number)
    store.close()
    before, cpu_server, cpu_pg = stats(server_url), _cpu_seconds(server_pid), _postgres_cpu(cluster)
    cpu_ours = _children_cpu()
    workers = [_cli(config, url, "worker", "--idle-exit", "2") for _ in range(processes - 1)]
    started = time.perf_counter()
    driver = _cli(config, url, "send", "weekly", "--resume")
    _, err = driver.communicate()
    seconds = time.perf_counter() - started
    assert driver.returncode == 0, err[-2000:]
    peaks = [_peak(err)]
    for worker in workers:
        peaks.append(_peak(worker.communicate()[1]))
    after = stats(server_url)
    return {
        "seconds": seconds,
        "recipients": after["recipients"] - before["recipients"],
        "requests": after["requests"] - before["requests"],
        "peaks": peaks,
        "server_cpu": _cpu_seconds(server_pid) - cpu_server,
        "postgres_cpu": _postgres_cpu(cluster) - cpu_pg,
        "our_cpu": _children_cpu() - cpu_ours,  # the sending processes, once waited for
    }


def bench_processes(args: argparse.Namespace) -> None:
    from publisher.store import open_store
    from tests.conftest import write_config
    from tests.pgcluster import start_cluster
    from tests.servers.data import add_subscribers_fast, config_text

    cluster = start_cluster()
    if cluster is None:
        print("no PostgreSQL server installed (make postgres-server)")
        return
    server, server_url = start(_serve_sendgrid, args.latency)
    try:
        url = cluster.url(cluster.create_database())
        store = open_store(url)
        started = time.perf_counter()
        add_subscribers_fast(store, NOW, args.subscribers)
        store.close()
        print(
            f"  (setup: {args.subscribers:,} subscribers in {time.perf_counter() - started:.1f} s)"
        )
        with tempfile.TemporaryDirectory() as tmp:
            options = f"  sendgrid:\n    host: {server_url}\n    workers: {args.workers[0]}\n"
            config = write_config(Path(tmp), config_text("sendgrid", delivery=options))
            _table(args, config, url, server_url, server.pid, cluster)
    finally:
        server.terminate()
        cluster.stop()


def _table(args, config: Path, url: str, server_url: str, server_pid: int, cluster) -> None:
    print(
        f"processes: {args.subscribers:,} subscribers on PostgreSQL, {args.latency * 1000:.0f} ms "
        f"per request, {args.workers[0]} sending threads per process, {os.cpu_count()} cores"
    )
    print(
        f"  {'processes':>9}  {'seconds':>8}  {'recipients/s':>12}  {'requests':>8}  "
        f"{'peak RSS per process (MiB)':>28}  {'ours CPU':>8}  {'server CPU':>10}  "
        f"{'postgres CPU':>12}  {'cores busy':>10}"
    )
    for processes in args.processes:
        run = one_run(config, url, server_url, server_pid, processes, cluster)
        assert run["recipients"] == args.subscribers, run  # each exactly once
        rate = args.subscribers / run["seconds"]
        peaks = ", ".join(str(p) for p in run["peaks"])
        print(
            f"  {processes:>9}  {run['seconds']:8.2f}  {rate:>12,.0f}  {run['requests']:>8}  "
            f"{peaks:>28}  {run['our_cpu'] / run['seconds']:>7.0%}  "
            f"{run['server_cpu'] / run['seconds']:>9.0%}  "
            f"{run['postgres_cpu'] / run['seconds']:>11.0%}  "
            f"{(run['our_cpu'] + run['server_cpu'] + run['postgres_cpu']) / run['seconds']:>10.2f}"
        )
    print(
        "  (CPU columns: share of one core during the send, ours = all sending processes;"
        f" cores busy: their sum, of {os.cpu_count()})"
    )
