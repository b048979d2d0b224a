"""A real `publisher serve --workers N` process, and which worker holds a connection, seen
from outside (Linux /proc): the serve process's children, the inode of a TCP connection in
/proc/net/tcp, and the worker whose file descriptors hold that inode."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.web_support import free_port, write_web_config

PUBLISHER = [sys.executable, "-m", "publisher.cli"]
SECRET = "workers-secret-key-0123456789abcdef"


def env_for(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PUBLISHER_SECRET_KEY"}
    return env | {"PUBLISHER_DATABASE_URL": database_url, "COLUMNS": "200"} | extra


@dataclass
class Workers:
    """The serve process, its port and what it wrote on stderr (read as it comes)."""

    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def workers(self) -> list[int]:
        """The worker processes: the children running uvicorn's worker (not the resource
        tracker multiprocessing starts beside them)."""
        return [pid for pid in children(self.process.pid) if b"spawn_main" in _cmdline(pid)]

    def wait_for_workers(self, count: int, timeout: float = 120) -> list[int]:
        """The workers, once there are `count` of them and each is accepting connections."""
        deadline = time.monotonic() + timeout
        while len(found := self.workers()) != count or not all(
            accepting(pid, self.port) for pid in found
        ):
            assert self.process.poll() is None, self.log
            assert time.monotonic() < deadline, f"workers {found}:\n{self.log}"
            time.sleep(0.05)
        return found

    def connection_to(self, worker: int) -> http.client.HTTPConnection:
        """A keep-alive connection that `worker` accepted (it answered /healthz on it)."""
        return connection_to(self.port, worker, [w for w in self.workers() if w != worker])


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        found += [int(child) for child in text.split()]
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return status != "Z"


def accepting(pid: int, port: int) -> bool:
    """The worker's event loop watches the listening socket (an epoll instance of the
    process lists its descriptor in /proc/PID/fdinfo): it has started serving."""
    listening = f"socket:[{_inode(port, 0)}]"
    held, polls = set(), []
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # gone
        return False
    for fd in descriptors:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target == listening:
            held.add(fd)
        elif target == "anon_inode:[eventpoll]":
            polls.append(fd)
    for fd in polls:
        try:
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        if any(line.split()[1] in held for line in info.splitlines() if line.startswith("tfd:")):
            return True
    return False


def _inode(server_port: int, client_port: int) -> int | None:
    """The inode of the connection between the two ports (client port 0: the listening
    socket)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
        if (local, remote) == (server_port, client_port):
            return int(fields[9])
    return None


def owner(connection: http.client.HTTPConnection, port: int, workers: list[int]) -> int | None:
    """The worker holding the server's end of `connection` (None: none of them)."""
    assert connection.sock is not None
    inode = _inode(port, connection.sock.getsockname()[1])
    wanted = f"socket:[{inode}]"
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                    return pid
            except OSError:  # closed meanwhile
                continue
    return None


def connection_to(port: int, worker: int, others: list[int]) -> http.client.HTTPConnection:
    """New connections until `worker` accepts one. The kernel gives a new connection to
    whichever worker calls accept first, often the same one; after a few tries the others
    are stopped (SIGSTOP) while one request goes out (`worker` is serving: milliseconds;
    at most 2 s, as uvicorn's supervisor kills a worker that misses its health check for
    5 s)."""
    assert accepting(worker, port), f"worker {worker} is not serving"
    for attempt in range(60):
        stop = attempt >= 3
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2 if stop else 60)
        try:
            if stop:
                for other in others:
                    os.kill(other, signal.SIGSTOP)
            connection.request("GET", "/healthz")
            answered = connection.getresponse().read() == b"ok\n"
        except TimeoutError:
            answered = False
        finally:
            for other in others if stop else ():
                os.kill(other, signal.SIGCONT)
        if answered and owner(connection, port, [worker]) == worker:
            assert connection.sock is not None
            connection.sock.settimeout(60)
            return connection
        connection.close()
    raise AssertionError(f"worker {worker} never accepted a connection")


@contextmanager
def serve_workers(
    project: Path,
    database_url: str,
    *options: str,
    workers: int = 2,
    env: dict[str, str] | None = None,
    own_group: bool = False,
) -> Iterator[Workers]:
    """`publisher serve --workers N` on a free port, until every worker is up; stopped
    (SIGTERM) afterwards if the test did not stop it."""
    port = free_port()
    write_web_config(project, port)
    command = [*PUBLISHER, "--config", str(project / "schedules.yaml"), "serve"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(workers), *options],
        env=env_for(database_url, **(env or {})),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=own_group,  # a process group of its own, as in a terminal
    )
    served = Workers(process, port)

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            served.lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        _wait_until_answering(served)
        served.wait_for_workers(workers)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=60)
        reader.join(timeout=10)


def _wait_until_answering(served: Workers, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout  # a loaded machine starts Python slowly
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{served.port}/healthz")
            return
        except httpx.TransportError:
            assert served.process.poll() is None, served.log
            assert time.monotonic() < deadline, "serve did not start:\n" + served.log
            time.sleep(0.1)
