"""The heartbeat of a slot a daemon is running: its claim's lease renewed every third of the
lease while the daemon composes and sends (which may take an hour), so daemons on other
hosts leave it alone; a daemon that dies stops renewing, and its lease lapses.

A renewal that finds the claim no longer this daemon's (its lease lapsed, for instance while
the host was suspended or the database unreachable, and another daemon took the slot over)
is logged as an error and marks the run `lost`: the daemon then stops the send between
batches and leaves the slot to the new owner (the delivery ledger guarantees that nobody is
sent the edition twice meanwhile).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from publisher.store import Store
from publisher.store import schedule_state as state
from publisher.support.heartbeat import Heartbeat

log = logging.getLogger(__name__)


class SlotHeartbeat(Heartbeat):
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
        super().__init__(lease.total_seconds() / 3, "slot-heartbeat")
        self.store, self.campaign, self.slot = store, campaign, slot
        self.owner, self.lease, self.clock = owner, lease, clock
        self.lost = threading.Event()

    def beat(self) -> bool:
        ours = state.renew_slot(
            self.store, self.campaign, self.slot, owner=self.owner, now=self.clock(),
            lease=self.lease,
        )  # fmt: skip
        if not ours:
            log.error(
                "%s: the claim is no longer ours (%s): its lease lapsed and another daemon "
                "took the slot over; this daemon stops the run between batches",
                self,
                self.owner,
            )
            self.lost.set()
        return ours

    def failed(self, reason: str) -> None:
        log.warning("%s: renewing the lease failed (%s); trying again", self, reason)

    def __str__(self) -> str:
        slot = self.slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"campaign={self.campaign} slot={slot}"
