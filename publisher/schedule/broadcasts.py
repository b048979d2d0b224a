"""The daemon's broadcast jobs (publisher/schedule/daemon.py runs them): every poll, the
scheduled broadcasts whose time has come; every third of the lease, the broadcasts whose
send process died mid-send (killed, a reboot, out of memory: left `sending` with a lapsed
lease, or an owner that is a gone process of this host), each taken over by exactly one
daemon (publisher.store.broadcast_leases) and finished as `publisher broadcast send
--resume` finishes it: the delivery ledger sends nobody the broadcast twice, and leaves an
uncertain recipient uncertain. Then the sent broadcasts' public copies."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from publisher.config import PublisherConfig
from publisher.deliver.broadcasts import (
    DueReport,
    broadcast_status,
    resume_broadcast,
    send_due_broadcasts,
)
from publisher.errors import PublisherError
from publisher.publish.broadcasts import write_broadcast_pages
from publisher.store import Store, audit
from publisher.store.broadcast_leases import lapsed_broadcasts, take_over_broadcast
from publisher.store.broadcasts import Broadcast

log = logging.getLogger(__name__)


def send_due(
    config: PublisherConfig, store: Store, now: datetime, *, owner: str, lease: timedelta
) -> DueReport:
    """The broadcasts whose time has come, sent under this daemon's lease; their copies."""
    report = send_due_broadcasts(config, store, now=now, owner=owner, lease=lease)
    if report.sent:
        write_broadcast_pages(config, store)
    return report


def take_over(
    config: PublisherConfig,
    store: Store,
    *,
    owner: str,
    lease: timedelta,
    clock: Callable[[], datetime],
) -> DueReport:
    """Take over and finish every broadcast whose send process died (see the module's
    docstring); one another daemon takes first is left to it."""
    report = DueReport([], [])
    now = clock()
    for seen in lapsed_broadcasts(store, owner=owner, now=now):
        if not take_over_broadcast(store, seen, owner=owner, now=now, lease=lease):
            continue  # another daemon was quicker
        log.info("broadcast %s: %s", seen.id, takeover_note(seen, now))
        try:
            sent = resume_broadcast(
                config, store, seen.id, by="scheduler", now=now, owner=owner, lease=lease,
                clock=clock,
            )  # fmt: skip
        except PublisherError as exc:
            log.warning("broadcast %s not finished: %s", seen.id, exc)
            report.problems.append((seen.id, str(exc)))
            continue
        report.sent.append((seen.id, broadcast_status(sent)))
        what = f"{seen.id}: from {seen.owner}: {sent.status}"
        audit.record(store, "scheduler", "broadcast taken over", what, ip=None, now=now)
    if report.sent:
        write_broadcast_pages(config, store)
    return report


def takeover_note(seen: Broadcast, now: datetime) -> str:
    """Why the daemon takes a send over, for the log."""
    if seen.lease_until is not None and seen.lease_until < now.timestamp():
        at = datetime.fromtimestamp(seen.lease_until, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"taking over the send from {seen.owner} (its lease lapsed at {at})"
    return f"taking over the send from {seen.owner} (its process is gone from this host)"
