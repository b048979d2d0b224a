"""A throwaway PostgreSQL cluster for the test session, on 127.0.0.1 and a free port.

Debian's server binaries live in /usr/lib/postgresql/<version>/bin (not on PATH); initdb
refuses to run as root, so as root the cluster belongs to the `postgres` user. Durability is
switched off: the cluster lives for one test session only. Each test gets its own database
(`Cluster.create_database`, through the `database_url` fixture in tests/conftest.py), so no
test sees another's rows.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_counter = itertools.count(1)


def server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    bin: Path
    root: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        options = self._options()
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", log, "-w", "start")

    def _options(self) -> str:
        # autovacuum off: GET /api/v1/events holds back what committed after any transaction
        # still running anywhere on the server (commit order), and an autoanalyze is one;
        # a test reading events just written must not depend on when the launcher wakes
        return (
            f"-k {self.root} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            "-c autovacuum=off"
        )

    def restart(self, down_for: float = 1.0) -> None:
        """Stop the server (every connection dropped), stay down `down_for` seconds, start
        it again: what a database failover or restart looks like to its clients."""
        import time

        data = str(self.root / "data")
        self._run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        time.sleep(down_for)
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", data, "-o", self._options(), "-l", log, "-w", "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    template: str | None = None

    def _migrated_template(self) -> str:
        """A database migrated once, copied for each test (migrating each is slower)."""
        if self.template is None:
            import psycopg

            from publisher.store import open_store

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute('CREATE DATABASE "publisher_template"')
            open_store(self.url("publisher_template")).close()
            self.template = "publisher_template"
        return self.template

    def create_database(self) -> str:
        import psycopg

        template = self._migrated_template()
        name = f"t{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_cluster() -> Cluster | None:
    """A running cluster, or None when no PostgreSQL server is installed."""
    binaries = server_bin()
    if binaries is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="publisher-pg-"))
    os.chmod(root, 0o755)
    cluster = Cluster(binaries, root, _free_port())
    cluster.start()
    return cluster
