"""Leases on claims, shared by the daemons' slot claims (publisher.store.schedule_state) and
the claim of a broadcast being sent (publisher.store.broadcast_leases): a claim names its
`owner` (host:pid) and holds until `lease_until` (epoch seconds), renewed by a heartbeat
while the owner works. Another process may take it over once the lease has lapsed, or at
once when the owner is a process of this host that no longer exists."""

from __future__ import annotations

from datetime import datetime, timedelta

from publisher.store import processes

__all__ = ["DEFAULT_LEASE", "lapsed", "until"]

DEFAULT_LEASE = timedelta(seconds=60)


def until(now: datetime, lease: timedelta | None) -> float | None:
    """When a lease taken at `now` lapses (epoch seconds); None without a lease."""
    return None if lease is None else now.timestamp() + lease.total_seconds()


def lapsed(owner: str | None, lease_until: float | None, *, now: datetime) -> bool:
    """Whether another process may take the claim over: its owner is a process of this host
    that is gone, or its lease lapsed. A claim without a lease never lapses by time: each
    kind of claim keeps its own rule for those written before leases."""
    if processes.gone(owner):
        return True
    return lease_until is not None and now.timestamp() > lease_until
