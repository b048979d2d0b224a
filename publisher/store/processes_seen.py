"""Which daemons (`publisher run`) and sending workers (`publisher worker`) are alive, as
they say themselves: each writes a row of `process_heartbeats` when it starts, renews its
`last_seen` every 30 seconds from a heartbeat thread and deletes the row when it stops
cleanly. A killed process leaves its row behind, no longer renewed: what that means (two
minutes without a beat: stopped or killed) is the reader's rule
(publisher.schedule.presence), not the store's.

Time is passed in (the process's clock); a beat that fails (the database away) is logged
and the next one tries again: it never stops the process it describes."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Self

from sqlalchemy import Select, delete, select

import publisher
from publisher.store import Store, dialect
from publisher.store.models import ProcessHeartbeatRow
from publisher.support.heartbeat import Heartbeat

__all__ = [
    "BEAT_EVERY",
    "KEEP_FOR",
    "KINDS",
    "Presence",
    "SeenProcess",
    "forget_seen",
    "prune_seen",
    "record_seen",
    "seen_processes",
]

LOG = logging.getLogger(__name__)
KINDS = ("daemon", "worker")
BEAT_EVERY = 30.0  # seconds between two beats of a live process
KEEP_FOR = timedelta(days=1)  # a row not renewed for this long is deleted by the next beat


@dataclass(frozen=True)
class SeenProcess:
    """One process as its last beat described it."""

    kind: str  # daemon, worker
    host: str
    pid: int
    version: str
    started: datetime
    last_seen: datetime


def record_seen(
    store: Store,
    *,
    kind: str,
    host: str,
    pid: int,
    version: str,
    started: datetime,
    now: datetime,
    prune_before: datetime | None = None,
) -> None:
    """One beat: the row of (host, pid, started) created or its `last_seen` set to `now`;
    rows last seen before `prune_before` are deleted in the same transaction."""
    if kind not in KINDS:
        raise ValueError(f"unknown process kind {kind!r}")
    with store.session() as session:
        if prune_before is not None:
            session.execute(
                delete(ProcessHeartbeatRow).where(ProcessHeartbeatRow.last_seen < prune_before)
            )
        row = session.scalar(_select_one(host, pid, started))
        if row is None:  # the first beat (only this process beats for its own row)
            row = ProcessHeartbeatRow(
                kind=kind, host=host[:255], pid=pid, version=version[:40], started=started
            )
            session.add(row)
        row.last_seen = now


def _select_one(host: str, pid: int, started: datetime) -> Select[ProcessHeartbeatRow]:
    return select(ProcessHeartbeatRow).where(
        ProcessHeartbeatRow.host == host,
        ProcessHeartbeatRow.pid == pid,
        ProcessHeartbeatRow.started == started,
    )


def forget_seen(store: Store, *, host: str, pid: int, started: datetime) -> bool:
    """A clean stop: the process's row deleted (False if there was none)."""
    with store.session() as session:
        row = session.scalar(_select_one(host, pid, started))
        if row is None:
            return False
        session.delete(row)
        return True


def seen_processes(store: Store, *, since: datetime | None = None) -> list[SeenProcess]:
    """Every process row (last seen at or after `since`), daemons first, newest beat first."""
    query = select(ProcessHeartbeatRow)
    if since is not None:
        query = query.where(ProcessHeartbeatRow.last_seen >= since)
    with store.session() as session:
        rows = list(session.scalars(query))
        found = [
            SeenProcess(r.kind, r.host, r.pid, r.version, r.started, r.last_seen) for r in rows
        ]
    return sorted(found, key=lambda p: (KINDS.index(p.kind), -p.last_seen.timestamp(), p.pid))


def prune_seen(store: Store, *, before: datetime) -> int:
    """Delete the rows last seen before `before`; how many went."""
    with store.session() as session:
        result = session.execute(
            delete(ProcessHeartbeatRow).where(ProcessHeartbeatRow.last_seen < before)
        )
        return dialect.rowcount(result)


class Presence(Heartbeat):
    """`with Presence(store, "daemon", clock=...):` around a process's life: its row is
    written on entry, renewed every `every` seconds and deleted on a clean exit (not on
    SIGKILL, of course: the row then stays and stops being renewed)."""

    def __init__(
        self,
        store: Store,
        kind: str,
        *,
        clock: Callable[[], datetime],
        every: float = BEAT_EVERY,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        super().__init__(every, f"{kind}-presence")
        self.store, self.kind, self.clock = store, kind, clock
        self.host = host or socket.gethostname()
        self.pid = pid or os.getpid()
        # whole seconds: (host, pid, started) is the row's key, compared after a round trip
        self.started = clock().replace(microsecond=0)

    def beat(self) -> bool:
        now = self.clock()
        record_seen(
            self.store, kind=self.kind, host=self.host, pid=self.pid,
            version=publisher.__version__, started=self.started, now=now,
            prune_before=now - KEEP_FOR,
        )  # fmt: skip
        return True

    def failed(self, reason: str) -> None:
        LOG.warning("%s heartbeat failed (%s); the next beat tries again", self.kind, reason)

    def stopped(self) -> None:
        try:
            forget_seen(self.store, host=self.host, pid=self.pid, started=self.started)
        except Exception as error:  # noqa: BLE001 - the row then shows as stopped or killed
            LOG.warning("could not remove this %s's heartbeat: %s", self.kind, error)

    def __enter__(self) -> Self:
        try:  # seen at once, not only after the first interval
            self.beat()
        except Exception as error:  # noqa: BLE001 - a database away at start: the next beat
            self.failed(str(error).split("\n")[0])
        return super().__enter__()
