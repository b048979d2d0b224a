"""Send workers: the claiming loop every sending process runs (the daemon or `publisher
send` for the edition it started, and any number of `publisher worker` processes for every
edition being sent), and the heartbeat that keeps a process's leases.

The store does the coordinating (publisher.store.work, publisher.store.plan): a batch is a
work item claimed with `SELECT ... FOR UPDATE SKIP LOCKED` under a lease; a process that
dies (SIGKILL, a host lost) stops renewing it and another one takes the batch over once the
lease lapses (at once on the same host: a holder whose pid is gone has no lease). A process
on SQLite runs the same loop; there one process sends at a time (SQLite has no row locks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from functools import partial
from typing import Any

from publisher.deliver.dispatch import Dispatcher
from publisher.store import Store, plan, work
from publisher.store.ledger import PENDING, UNCERTAIN
from publisher.support.heartbeat import Heartbeat

LOG = logging.getLogger(__name__)
POLL = 0.2  # seconds between looks for work while other processes hold the rest


def requested_to(dispatcher: Dispatcher[Any, Any]) -> str | None:
    """What a taken-over batch's `requested` rows become (publisher.store.plan.take_over)."""
    if dispatcher.cancellation is not None:  # exactly-once mode
        return None  # cancelled and resent once the edition's batches are done
    return PENDING if dispatcher.backend.settings.idempotent else UNCERTAIN


def claimed(
    store: Store,
    lease: work.Lease,
    edition_id: int,
    audience: Sequence[str],
    *,
    batch_size: int,
    now: Callable[[], datetime],
    requested: str | None,
    wait: bool,
    sleep: Callable[[float], None] = time.sleep,
    lock: AbstractContextManager[object] | None = None,
) -> Iterator[tuple[int, list[tuple[Any, ...]]]]:
    """Claim the edition's batches one after another (publisher.store.plan.claim_next),
    each `inflight` before it is yielded. `wait`: when the rest is held by other live
    processes, wait until they finish it or their leases lapse (the process that finishes
    the edition); otherwise stop. `lock`: held while claiming (Dispatcher.claiming)."""
    store.retrying(lambda: work.reap_dead(store, edition_id=edition_id), what="looking for work")
    claim = partial(plan.claim_next, store, lease, edition_id, audience, batch_size=batch_size)
    mine: set[int] = set()  # yielded: being sent (or done) by this process
    while True:
        with lock or nullcontext():
            got = store.retrying(
                lambda: claim(now=now(), requested_to=requested, mine=mine),
                what="claiming a batch",
            )
        if got is None:
            busy = partial(_others_busy, store, lease, edition_id)
            if not wait or not store.retrying(busy, what="looking for work"):
                return
            sleep(POLL)
            continue
        if got.taken_over:
            LOG.warning("edition %s: batch %s taken over", edition_id, got.number)
        mine.add(got.number)
        yield got.number, got.rows


def _others_busy(store: Store, lease: work.Lease, edition_id: int) -> bool:
    """Open items remain that other processes hold (or that a dead one's lapsing lease will
    free): keep looking. Items this process holds are in its own queue."""
    work.reap_dead(store, edition_id=edition_id)
    return bool(work.open_items(store, edition_id) - work.held_by(store, lease, edition_id))


class LeaseHeartbeat(Heartbeat):
    """Renews this process's batch leases every third of the lease while a send runs; what
    is left when it ends (a stop, an error) is given back, free for others at once."""

    def __init__(self, store: Store, lease: work.Lease) -> None:
        super().__init__(lease.seconds / 3, "lease-heartbeat")
        self.store, self.lease = store, lease

    def beat(self) -> bool:
        work.heartbeat(self.store, self.lease)
        return True

    def failed(self, reason: str) -> None:
        LOG.warning("lease heartbeat failed (%s); trying again", reason)

    def stopped(self) -> None:
        try:
            work.release(self.store, self.lease)
        except Exception as error:  # noqa: BLE001 - the leases then lapse by themselves
            LOG.warning("could not release this worker's batches: %s", error)


def claims_for(
    dispatcher: Dispatcher[Any, Any], audience: Sequence[str], *, wait: bool
) -> Iterator[tuple[int, list[tuple[Any, ...]]]]:
    """The batches `dispatcher` sends: claimed() with its store, lease, clock and lock."""
    lease = dispatcher.lease
    assert lease is not None  # a dispatcher fed by claims holds them under a lease
    return claimed(
        dispatcher.store,
        lease,
        dispatcher.message.edition_id,
        audience,
        batch_size=dispatcher.backend.settings.batch_size,
        now=dispatcher.stamp,
        lock=dispatcher.claiming(),
        requested=requested_to(dispatcher),
        wait=wait,
    )
