"""A thread that renews a lease while a `with` block runs: the one loop behind a daemon's
slot lease (publisher.schedule.slot_lease) and a sending process's batch leases
(publisher.deliver.workers)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)


class Heartbeat:
    """`beat()` every `every` seconds until the block ends or a beat returns False. A beat
    that raises is handed to `failed` (a lost database: the next beat tries again);
    `stopped()` runs once the thread is joined."""

    def __init__(self, every: float, name: str) -> None:
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def beat(self) -> bool:
        raise NotImplementedError

    def failed(self, reason: str) -> None:
        raise NotImplementedError

    def stopped(self) -> None:
        """After the last beat (nothing by default)."""

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if not self.beat():
                    return
            except Exception as exc:  # noqa: BLE001 - the next beat tries again
                self.failed(str(exc).split("\n")[0])

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.stopped()


class LeaseHeartbeat(Heartbeat):
    """Renew a claim's lease (`renew()`: True while the claim is still ours) every third of
    the lease, around the work it covers: a daemon's slot (publisher.schedule.slot_lease),
    the send of a broadcast (publisher.deliver.broadcasts). A renewal that finds the claim
    no longer ours (its lease lapsed, e.g. while the host was suspended, and another process
    took it over) is logged as an error and sets `lost`: the work stops between batches and
    leaves the claim to the new owner (the ledger keeps everyone to one message)."""

    def __init__(
        self,
        renew: Callable[[], bool],
        *,
        every: float,
        name: str,
        what: str,
        owner: str,
        taken: str,
    ) -> None:
        super().__init__(every, name)
        self.renew, self.what, self.owner, self.taken = renew, what, owner, taken
        self.lost = threading.Event()

    def beat(self) -> bool:
        ours = self.renew()
        if not ours:
            log.error("%s: the claim is no longer ours (%s): %s", self, self.owner, self.taken)
            self.lost.set()
        return ours

    def failed(self, reason: str) -> None:
        log.warning("%s: renewing the lease failed (%s); trying again", self, reason)

    def __str__(self) -> str:
        return self.what
