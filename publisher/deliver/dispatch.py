"""The dispatcher: take claimed batches (work items, publisher.deliver.workers), send them
concurrently through a backend, retry what is worth retrying, record the outcome.

The calling thread is the producer: it takes claimed batches (their rows `inflight`),
builds each one's request (`encode`: SendGrid serialises the body), and queues it for
`workers` sending threads, a few batches ahead (`build_ahead * workers` claimed and unsent: memory
stays flat, and a worker never waits for body building). A worker's backend marks its batch
`requested` (one UPDATE, through the hooks of publisher.deliver.retry) right before it writes
the request, back to `inflight` when the provider definitely refused it (429, 5xx,
connection refused) before the backoff sleep, and the worker records the outcome itself
before it takes another batch: after a crash at most one batch per worker is `requested`,
the only rows that may have reached the provider unrecorded (see publisher.store.ledger).
Batches still queued when the send stops (paused, Ctrl-C) were never requested: they stay
`inflight` and the resume sends them. The producer counts outcomes and reports progress.
Every ledger write is fenced by the work item's lease (publisher.store.work) and repeated
while the database is unreachable (Store.retrying): each is safe to repeat.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from queue import SimpleQueue
from typing import Generic, TypeVar

from publisher.deliver.base import BOUNCED, DeliveryBackend, Message, Recipient, Scheduled
from publisher.deliver.exactly_once import Cancellation
from publisher.deliver.retry import Mark, Outcome, RetryPolicy, Schedule, send_with_retries
from publisher.store import Store, ledger
from publisher.store.work import Lease, LeaseLost
from publisher.support import killpoints

LOG = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.001  # seconds: see Dispatcher.run
P = TypeVar("P")  # the backend's prepared edition (DeliveryBackend)
E = TypeVar("E")  # the backend's encoded batch

__all__ = ["DispatchResult", "Dispatcher", "Outcome", "RetryPolicy", "send_with_retries"]


@dataclass
class DispatchResult:
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    uncertain: int = 0
    unknown_batches: int = 0  # exactly-once mode: outcome unknown, to cancel and resend
    batches: int = 0
    requests: int = 0
    failed_batches: int = 0
    paused: bool = False
    stopped: bool = False  # asked to stop (daemon shutdown): the rest waits for a resume
    last_error: str | None = None


class _Recipients(Sequence[Recipient]):
    """A batch's recipients kept as plain tuples, a Recipient made when one is read.

    The collector stops tracking a plain tuple of strings and numbers at once, not a
    Recipient (a tuple subclass): the thousand Recipients of every batch waiting in the queue
    or in flight would be promoted to the oldest generation and bring on a full collection
    every few batches (~50 ms each here), a pause of every sending thread."""

    def __init__(self, rows: list[tuple[int, str, str | None, str, str, str]]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return _Recipients(self._rows[index])
        return Recipient._make(self._rows[index])

    def __iter__(self) -> Iterator[Recipient]:  # in C, not Sequence's index loop
        return map(Recipient._make, self._rows)


@dataclass
class _Batch(Generic[E]):
    number: int
    recipients: _Recipients
    encoded: E  # the backend's request built ahead (`encode`)


@dataclass
class Dispatcher(Generic[P, E]):
    store: Store
    backend: DeliveryBackend[P, E]
    message: Message
    policy: RetryPolicy
    now: datetime
    progress: Callable[[int], None] | None = None
    # Asked between batches: True stops taking new ones (SIGTERM to the daemon). Batches a
    # worker is sending finish; queued ones stay `inflight` (never requested) for a resume.
    should_stop: Callable[[], bool] | None = None
    sleep: Callable[[float], None] = time.sleep
    elapsed: Callable[[], float] = time.monotonic  # ledger times: `now` + time since start
    workers: int | None = None  # default settings.workers (exactly-once mode may use fewer)
    # Exactly-once mode (publisher.deliver.exactly_once): the backend's capability, handed
    # over by the send that chose the mode; None: the default mode.
    cancellation: Cancellation | None = None
    earliest: datetime | None = None  # exactly-once mode: never deliver before (--send-at)
    max_unknown: int = 1_000_000  # exactly-once mode: stop once this many batches are unknown
    lease: Lease | None = None  # the work items' holder: fences every ledger write
    result: DispatchResult = field(default_factory=DispatchResult)
    _started: float = field(default=0.0, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    # Ledger writes of this send, one at a time: a writer waiting here wakes as soon as the
    # other is done, where SQLite's busy handler would sleep (1, 2, 5, 10... ms) and retry.
    _writing: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._started = self.elapsed()

    def stamp(self) -> datetime:
        """The time ledger rows are written with: the caller's `now` advanced by the seconds
        this send has run (so the ledger shows progress: schedule_state reads it as liveness;
        the caller's clock stays the only source of the date)."""
        return self.now + timedelta(seconds=self.elapsed() - self._started)

    def run(self, claimed: Iterable[tuple[int, list[tuple]]]) -> DispatchResult:
        """Send `claimed`: (batch number, recipient rows (id, email, name, token) by id),
        each already claimed (`inflight`) when the iterator yields it."""
        # The producer is CPU-bound (claiming, encoding) while the workers mostly wait on the
        # network; with Python's 5 ms switch interval a worker whose answer arrived waits up
        # to 5 ms for the interpreter at each of its many small steps. 1 ms lets the workers
        # in promptly (bench.dispatch: about 10-25% more recipients/s at 4-8 workers).
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
        try:
            return self._run(claimed)
        finally:
            sys.setswitchinterval(interval)

    def _run(self, claimed: Iterable[tuple[int, list[tuple]]]) -> DispatchResult:
        prepared = self.backend.prepare(self.message)
        settings = self.backend.settings
        workers = max(1, self.workers or settings.workers)
        ahead = settings.build_ahead * workers  # `workers` sending, the rest queued
        ready: SimpleQueue[_Batch[E] | None] = SimpleQueue()
        done: SimpleQueue[tuple[_Batch[E], Outcome | BaseException | None]] = SimpleQueue()
        threads = [
            threading.Thread(
                target=self._work, args=(prepared, ready, done), name=f"deliver-{i}", daemon=True
            )
            for i in range(workers)
        ]
        for thread in threads:
            thread.start()
        outstanding, error = 0, None

        def record(block: bool) -> None:  # one finished batch (got first: Ctrl-C safe)
            nonlocal outstanding, error
            finished = done.get() if block else done.get_nowait()
            outstanding -= 1
            error = self._record(*finished) or error

        try:
            for number, rows in claimed:
                while outstanding >= ahead:  # wait for a worker to finish one
                    record(block=True)
                while not done.empty():  # record what finished meanwhile (liveness, progress)
                    record(block=False)
                if self.should_stop is not None and self.should_stop():
                    self.result.stopped = True
                    self._stop.set()
                if self._stop.is_set():  # paused, stopped, or a worker failed
                    break
                ready.put(self._prepare(prepared, number, rows))
                killpoints.reached("claim.queued")
                outstanding += 1
        except BaseException:  # also on Ctrl-C: queued batches stay inflight, never requested
            self._stop.set()
            raise
        finally:  # count what the workers recorded
            for _ in threads:
                ready.put(None)
            while outstanding:
                record(block=True)
            for thread in threads:
                thread.join()
        if error is not None:
            raise error
        if self.result.failed_batches >= self.policy.max_failed_batches:
            self.result.paused = True
        return self.result

    def _prepare(self, prepared: P, number: int, rows: list[tuple]) -> _Batch[E]:
        """Build a claimed batch's request, ahead of the workers."""
        public_url, mark = self.message.public_url, self.message.mark
        # plain tuples (see _Recipients); by id: a part of a batch is a range (mark_range)
        recipients = _Recipients([(r[0], r[1], r[2], r[3], public_url, mark(r[0])) for r in rows])
        return _Batch(
            number, recipients, self.backend.encode(prepared, recipients, self._key(number))
        )

    def claiming(self) -> AbstractContextManager[object]:
        """What the claims feeding this send hold while they write: on a store with one
        writer (SQLite) the same lock as the sending threads' ledger writes, so none of them
        waits in SQLite's busy handler; elsewhere nothing (claims of several processes
        queue in the database, and this process's outcomes must not wait for them)."""
        return self._writing if self.store.single_writer else nullcontext()

    def _write(self, what: str, action: Callable[[], object]) -> None:
        """One ledger transaction of this send, one at a time, repeated while the database
        is unreachable."""
        with self._writing:
            self.store.retrying(action, what=what, sleep=self.sleep)

    def _key(self, number: int) -> str:
        return f"{self.message.edition_id}-{number}"

    def _schedule(self) -> Schedule | None:
        """Exactly-once mode: how a batch sent now gets its provider batch id, delivering
        `hold` ahead (never before --send-at)."""
        if self.cancellation is None:
            return None
        at = self.stamp() + self.cancellation.hold
        return partial(self.cancellation.new_batch, max(at, self.earliest) if self.earliest else at)

    @property
    def _batch_rows(self) -> bool:
        """The ledger keeps a row per provider batch (exactly-once mode)."""
        return self.cancellation is not None

    def _mark(self, number: int) -> Mark:
        edition = self.message.edition_id

        def mark(
            part: Sequence[Recipient],
            status: str,
            scheduled: Scheduled | None,
            accepted: Sequence[Recipient],
        ) -> None:
            first, last = part[0].subscriber_id, part[-1].subscriber_id
            self._write(
                f"batch {number} ({status})",
                lambda: ledger.mark_range(
                    self.store, edition, number, first, last, status, now=self.stamp(),
                    provider_id=scheduled.batch_id if scheduled else None,
                    send_at=scheduled.send_at if scheduled else None,
                    sent=[r.subscriber_id for r in accepted],
                    batch_rows=self._batch_rows, lease=self.lease,
                ),
            )  # fmt: skip

        return mark

    def _work(
        self,
        prepared: P,
        ready: SimpleQueue[_Batch[E] | None],
        done: SimpleQueue[tuple[_Batch[E], Outcome | BaseException | None]],
    ) -> None:
        """A sending thread: take the next prepared batch, send it, record its outcome in
        the ledger before taking another (so at most `workers` batches are ever
        `requested`), hand the outcome to the producer for counting."""
        while (batch := ready.get()) is not None:
            if self._stop.is_set():
                done.put((batch, None))  # never requested: left inflight, resent on resume
                continue
            with self._lock:
                self.result.batches += 1
            try:
                outcome = send_with_retries(
                    self.backend,
                    prepared,
                    batch.recipients,
                    self._key(batch.number),
                    self.policy,
                    sleep=self.sleep,
                    mark=self._mark(batch.number),
                    encoded=batch.encoded,
                    schedule=self._schedule(),
                )
                self._finish(batch, outcome)
            except LeaseLost as exc:  # taken over: the other holder records this batch
                LOG.warning("%s; this worker leaves it", exc)
                done.put((batch, None))
                continue
            except BaseException as exc:  # noqa: BLE001 - re-raised by the producer
                self._stop.set()
                done.put((batch, exc))
                continue
            with self._lock:  # counted here, so a pause stops this worker's next batch
                if outcome.batch_error:
                    self.result.failed_batches += 1
                if self.result.failed_batches >= self.policy.max_failed_batches:
                    self._stop.set()
                if self.result.unknown_batches >= self.max_unknown:
                    self._stop.set()  # cancel (and resend) them before going on
            done.put((batch, outcome))

    def _finish(self, batch: _Batch[E], outcome: Outcome) -> None:
        """Write a batch's outcome to the ledger (in the worker, under the write lock). In
        exactly-once mode a batch of unknown outcome stays `requested` under its batch id:
        it is cancelled and sent again (publisher.deliver.exactly_once)."""
        failed, bounced = outcome.split_failed()
        unknown = bool(outcome.uncertain) and outcome.scheduled is not None  # exactly-once
        killpoints.reached("finish.before")
        self._write(
            f"the outcome of batch {batch.number}",
            lambda: ledger.finish_batch(
                self.store,
                self.message.edition_id,
                batch.number,
                failed=failed,
                bounced=bounced,
                uncertain=[] if unknown else outcome.uncertain,
                keep_requested=outcome.uncertain if unknown else (),
                batch_rows=self._batch_rows,
                lease=self.lease,
                now=self.stamp(),
            ),
        )
        killpoints.reached("finish.after")
        if unknown:
            with self._lock:
                self.result.unknown_batches += 1

    def _record(
        self, batch: _Batch[E], outcome: Outcome | BaseException | None
    ) -> BaseException | None:
        """In the producer: count a batch the worker recorded."""
        if outcome is None:
            return None
        if isinstance(outcome, BaseException):
            return outcome
        self._count(outcome, len(batch.recipients))
        return None

    def _count(self, outcome: Outcome, size: int) -> None:
        unknown = len(outcome.uncertain) if outcome.scheduled is not None else 0  # exactly-once
        _, bounced = outcome.split_failed()
        self.result.sent += size - len(outcome.failed) - len(outcome.uncertain)
        if self.progress:
            self.progress(size)
        self.result.requests += outcome.requests
        self.result.failed += len(outcome.failed) - len(bounced)
        self.result.bounced += len(bounced)
        self.result.uncertain += len(outcome.uncertain) - unknown
        if outcome.batch_error:
            self.result.last_error = outcome.batch_error
        elif outcome.failed:
            self.result.last_error = next(iter(outcome.failed.values())).removeprefix(BOUNCED)
