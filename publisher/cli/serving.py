"""`publisher serve --workers N`: N uvicorn worker processes on one listening socket.

uvicorn's own supervisor (its `Multiprocess`, as `Supervisor`: SIGHUP and SIGTTIN/SIGTTOU
made to fit) binds the socket, starts the workers (spawned: fresh interpreters, nothing
inherited but the environment) and restarts one that dies; it calls `make_app` in each, by
its import string. What the parent resolved (the configuration
file, the database URL, the signing key — with --dev the throwaway key made once in the
parent, so a link signed by one worker is good on another —, the SendGrid key, the limits)
reaches the workers in a `ServeSpec`: JSON in a file only this user can read, in a private
folder removed when the parent ends; its path is in the environment, never a secret itself.

What each worker keeps for itself, and so what N workers mean (docs/operators.md, the serve
section): the per-key API rate limit is counted per worker, each allowing its share
(`worker_limits`); the API key cache, the login hashing thread and the group commit's
writer thread are per process; the sign-up and staff log-in limits (password failures,
second-factor codes) are in the store, shared."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from publisher.web.bounds import BoundedProtocol, Limits, server_options

SPEC_VARIABLE = "PUBLISHER_SERVE_SPEC"
FACTORY = "publisher.cli.serving:make_app"
PROTOCOL = "publisher.cli.serving:WorkerProtocol"
READY_TIMEOUT = 120  # seconds a new worker may take to serve after SIGHUP


@dataclass(frozen=True)
class ServeSpec:
    """Everything a worker needs to build the same application as the parent would."""

    config_path: str
    database_url: str
    pool_size: int
    secret_key: str
    webhook_key: str | None  # the SendGrid public key as configured (None: unset)
    limits: Limits
    workers: int
    verbose: int = 0


def worker_limits(limits: Limits, workers: int) -> Limits:
    """The limits one of `workers` workers applies. Each counts API calls per key on its
    own (a connection stays with one worker): its share of the per-minute limit, rounded
    up, so all together never allow a key much more than the limit."""
    return replace(limits, api_per_minute=math.ceil(limits.api_per_minute / workers))


@contextmanager
def spec_file(spec: ServeSpec) -> Iterator[Path]:
    """The spec written where only this user can read it, for as long as the server runs
    (a worker that dies is restarted, and reads it again)."""
    folder = Path(tempfile.mkdtemp(prefix="publisher-serve-"))  # mode 0700
    try:
        path = folder / "spec.json"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(asdict(spec), out)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_spec(path: Path) -> ServeSpec:
    fields: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return ServeSpec(**(fields | {"limits": Limits(**fields["limits"])}))


def supervise(spec: ServeSpec, options: dict[str, Any]) -> bool:
    """uvicorn's supervisor (what `uvicorn.run` does for workers > 1) until a signal ends
    it (True), or until a worker could not start (False): uvicorn then stops every worker
    rather than restart one that would fail again (exit code STARTUP_FAILURE)."""
    import uvicorn

    bounds = server_options(spec.limits) | {"http": PROTOCOL}
    config = uvicorn.Config(FACTORY, factory=True, workers=spec.workers, **options, **bounds)
    sock = config.bind_socket()
    supervisor = Supervisor(config, sockets=[sock])
    try:
        supervisor.run()
    finally:
        sock.close()
    return all(process.exitcode != STARTUP_FAILURE for process in supervisor.processes)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # uvicorn logs warnings only (log_level)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, its signals made to fit: SIGHUP replaces every worker, one at
    a time, each new one reading the configuration file again (the spec file is still
    there: it goes when the server ends); SIGTTIN and SIGTTOU (one worker more, one fewer)
    are refused, since each worker allows its share of the per-key API limit counted for
    `--workers` (`worker_limits`)."""

    def restart_all(self) -> None:
        """SIGHUP: a new worker is serving before the one it replaces is stopped. If one
        cannot start (the configuration file broken meanwhile), the running workers are
        kept as they are and the restart ends there."""
        for index, old in enumerate(self.processes):
            new = Process(self.config, self.sockets)
            new.start()
            if not self._ready(new):
                new.kill()
                new.join()
                if not self._stopping():
                    _say(
                        "warning: SIGHUP: a new worker did not start; the running workers "
                        "keep serving as they were"
                    )
                return
            old.terminate()
            old.join()
            self.processes[index] = new
        _say(f"SIGHUP: {len(self.processes)} workers replaced, the configuration file read again")

    def _ready(self, process: Process) -> bool:
        """The new worker is serving. uvicorn waits its health check's 5 seconds only, too
        short for a new interpreter on a loaded machine; a stop asked for meanwhile (SIGTERM,
        Ctrl-C) ends the wait."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self._stopping():
            if not process.process.is_alive():
                return False
            if process.is_ready(timeout=1):
                return True
            time.sleep(0.1)
        return False

    def _stopping(self) -> bool:
        return self.should_exit.is_set() or any(
            sig in (signal.SIGINT, signal.SIGTERM) for sig in self.signal_queue
        )

    def handle_ttin(self) -> None:
        self._refuse("SIGTTIN")

    def handle_ttou(self) -> None:
        self._refuse("SIGTTOU")

    def _refuse(self, name: str) -> None:
        _say(
            f"warning: {name} ignored: the number of workers stays {self.processes_num}, "
            "each allowing its share of the per-key API limit; restart with --workers"
        )


class WorkerProtocol(BoundedProtocol):
    """The bounded protocol of a worker: uvicorn names it by import string (its Config is
    pickled to the worker, a class made at run time is not); `make_app` sets its limits
    before the first connection."""


def make_app() -> Starlette:
    """uvicorn's factory in each worker: the spec's application, or exit 3 with one line
    (never a traceback: uvicorn would restart a worker that failed to start, forever)."""
    from publisher.errors import PublisherError

    try:
        return _build(read_spec(Path(os.environ[SPEC_VARIABLE])))
    except (PublisherError, OSError, KeyError, TypeError, ValueError) as exc:
        print(f"error: a worker could not start: {exc}", file=sys.stderr, flush=True)
        sys.exit(STARTUP_FAILURE)


def _build(spec: ServeSpec) -> Starlette:
    from publisher.cli.base import configure_logging, utc_now
    from publisher.cli.web import access_log
    from publisher.config import load_config
    from publisher.store import Store
    from publisher.web import create_app
    from publisher.web.webhook import load_key

    configure_logging(spec.verbose)
    config = load_config(Path(spec.config_path))  # checked by the parent already
    store = Store(spec.database_url, pool_size=spec.pool_size)  # migrated by the parent
    WorkerProtocol.limits = spec.limits
    application = create_app(
        config,
        store,
        secret_key=spec.secret_key,
        now=utc_now,
        webhook_key=load_key(spec.webhook_key),
        limits=worker_limits(spec.limits, spec.workers),
    )
    access_log()
    return application


__all__ = [
    "ServeSpec",
    "Supervisor",
    "make_app",
    "read_spec",
    "spec_file",
    "supervise",
    "worker_limits",
]
