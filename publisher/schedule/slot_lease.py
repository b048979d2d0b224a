"""The heartbeat of a slot a daemon is running: its claim's lease renewed every third of the
lease while the daemon composes and sends (which may take an hour), so daemons on other
hosts leave it alone; a daemon that dies stops renewing, and its lease lapses.

A renewal that finds the claim no longer this daemon's (its lease lapsed, for instance while
the host was suspended or the database unreachable, and another daemon took the slot over)
is logged as an error and marks the run `lost`: the daemon then stops the send between
batches and leaves the slot to the new owner (the delivery ledger guarantees that nobody is
sent the edition twice meanwhile). The loop is publisher.support.heartbeat.LeaseHeartbeat,
shared with the send of a broadcast.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from publisher.store import Store
from publisher.store import schedule_state as state
from publisher.support.heartbeat import LeaseHeartbeat


class SlotHeartbeat(LeaseHeartbeat):
    """`with SlotHeartbeat(...):` around the run of a claimed slot (joined before the slot
    is finished: a beat after that would find the claim gone)."""

    def __init__(
        self,
        store: Store,
        campaign: str,
        slot: datetime,
        *,
        owner: str,
        lease: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        def renew() -> bool:
            return state.renew_slot(store, campaign, slot, owner=owner, now=clock(), lease=lease)

        at = slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        super().__init__(
            renew,
            every=lease.total_seconds() / 3,
            name="slot-heartbeat",
            what=f"campaign={campaign} slot={at}",
            owner=owner,
            taken="its lease lapsed and another daemon took the slot over; this daemon "
            "stops the run between batches",
        )
        self.store, self.campaign, self.slot = store, campaign, slot
        self.lease, self.clock = lease, clock
