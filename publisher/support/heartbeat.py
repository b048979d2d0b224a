"""A thread that renews a lease while a `with` block runs: the one loop behind a daemon's
slot lease (publisher.schedule.slot_lease) and a sending process's batch leases
(publisher.deliver.workers)."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self


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
