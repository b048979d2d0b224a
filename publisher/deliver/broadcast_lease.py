"""The lease of a broadcast while this process sends it (publisher.store.broadcast_leases):
renewed every third of the lease by a heartbeat (publisher.support.heartbeat.LeaseHeartbeat,
the loop a daemon's slot claim uses too), so the daemon leaves a live send alone and takes
over one whose process died. A renewal that finds the claim gone (another process took the
send over) stops this send between batches."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from publisher.store import Store
from publisher.store.broadcast_leases import renew_broadcast
from publisher.support.heartbeat import LeaseHeartbeat

__all__ = ["SendLease", "running_clock"]


def running_clock(start: datetime) -> Callable[[], datetime]:
    """A clock that starts at `start` (the sender's `now`, perhaps PUBLISHER_NOW) and runs
    with the real seconds: the lease stays on the clock its claim was written with."""
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


class SendLease(LeaseHeartbeat):
    """`with SendLease(...):` around the send of a claimed broadcast."""

    def __init__(
        self,
        store: Store,
        broadcast_id: int,
        *,
        owner: str,
        lease: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        def renew() -> bool:
            return renew_broadcast(store, broadcast_id, owner=owner, now=clock(), lease=lease)

        super().__init__(
            renew,
            every=lease.total_seconds() / 3,
            name="broadcast-heartbeat",
            what=f"broadcast={broadcast_id}",
            owner=owner,
            taken="another process took the send over; this one stops between batches",
        )

    def should_stop(self, also: Callable[[], bool] | None) -> Callable[[], bool]:
        """The send's stop test: the claim lost, or `also` (the caller's own)."""
        return lambda: self.lost.is_set() or bool(also and also())
