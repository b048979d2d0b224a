"""What the lease tests share (tests/test_slot_leases.py: a daemon's slot claim;
tests/test_broadcast_leases.py: a broadcast's send claim): the lease and the other host,
a clock the test moves, waiting on a state of the store, racing threads, and the real
`publisher` processes they kill and start against a fake SendGrid."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import ROOT
from tests.servers.sendgrid import FakeSendGrid

LEASE = timedelta(seconds=60)
ELSEWHERE = "host-b.example:4242"  # a sender on another machine: its pid cannot be checked
API_KEY = "SG.lease-tests-key"
T = TypeVar("T")


class Clock:
    """A fake clock the test moves (read by the sender or daemon and by its heartbeat)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll a state of the store (never a guess of how long something takes); the bound
    only catches a hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def race(takers: Sequence[Callable[[], T]]) -> list[T | None]:
    """Run the takers at once (a barrier releases them together); their results."""
    barrier = threading.Barrier(len(takers))
    results: list[T | None] = [None] * len(takers)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = takers[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(takers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a taker hung"
    return results


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=API_KEY, latency=0.05, validate="first") as fake:
        yield fake


def publisher_process(
    project: Path, url: str, log: str, *args: str, kill_at: str | None = None
) -> subprocess.Popen:
    """`publisher <args>` in the project on the store at `url`, its stderr in `log`;
    `kill_at`: where it kills itself (PUBLISHER_KILL_AT)."""
    env = {
        **os.environ,
        "PUBLISHER_DATABASE_URL": url,
        "SENDGRID_API_KEY": API_KEY,
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "200",
    }
    env.pop("PUBLISHER_KILL_AT", None)
    env.pop("PUBLISHER_NOW", None)  # the real clock: leases lapse in real seconds
    if kill_at:
        env["PUBLISHER_KILL_AT"] = kill_at
    return subprocess.Popen(
        [sys.executable, "-m", "publisher.cli", *args],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(project / log).open("w"),
    )


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(30)
