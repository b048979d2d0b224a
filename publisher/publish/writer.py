"""Atomic, change-only file writes, done on background threads.

Writing a full build is mostly system calls (which release the GIL) while rendering is
Python; writer threads let the two overlap. Each file is fsynced before it is renamed
(publisher.support.files), and an fsync mostly waits for the disk: several writers let the file
system commit their files together instead of one after the other. The queue is bounded so
that at most a few rendered documents wait in memory.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from types import TracebackType

from publisher.errors import PublisherError
from publisher.support.files import write_atomic


class FeedWriteError(PublisherError):
    """A feed file could not be written (permissions, disk full...)."""


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically replace path with data unless it already holds exactly these bytes."""
    try:
        return write_atomic(path, data)
    except OSError as exc:
        raise FeedWriteError(f"cannot write {path}: {exc.strerror}") from None


class BackgroundWriter:
    """`submit(relpath, data)` returns at once; leaving the `with` block waits for every
    write and re-raises the first error. `changed`/`unchanged` list relative paths."""

    def __init__(self, root: Path, *, pending: int = 16, threads: int = 8) -> None:
        self.root = root
        self.changed: list[str] = []
        self.unchanged: list[str] = []
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=pending)
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._run, name=f"feed-writer-{n}", daemon=True)
            for n in range(threads)
        ]

    def __enter__(self) -> BackgroundWriter:
        for thread in self._threads:
            thread.start()
        return self

    def submit(self, relpath: str, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((relpath, data))

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain after a failure; the error is raised on exit
            relpath, data = job
            try:
                changed = write_if_changed(self.root / relpath, data)
            except BaseException as exc:  # noqa: BLE001 - handed to the submitting thread
                self._error = exc
                continue
            (self.changed if changed else self.unchanged).append(relpath)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        if exc is None and self._error is not None:
            raise self._error
