"""The claim of a broadcast being sent is a lease (migration 0032), as a daemon's slot claim
is (publisher.store.schedule_state): `owner` (host:pid of the sending process: a daemon, the
CLI, the web server's send-now) and `lease_until`, written by claim_broadcast, renewed by the
sender's heartbeat (`renew_broadcast`), cleared when the send ends (finish_broadcast).

A broadcast left `sending` whose lease lapsed, or whose owner is a process of this host that
no longer exists (killed, a reboot, out of memory), is found by the daemon
(`lapsed_broadcasts`) and taken over in one conditional UPDATE on the claim it read
(`take_over_broadcast`: of two daemons, one wins); the daemon then resumes the send. A
broadcast claimed before leases (`lease_until` NULL) keeps the old rule: an operator finishes
it with `publisher broadcast send --resume`, which takes the claim whoever had it
(`hold_broadcast`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from publisher.store import Store, leases
from publisher.store.broadcasts import Broadcast, _broadcast
from publisher.store.dialect import rowcount
from publisher.store.models import BroadcastRow

__all__ = ["hold_broadcast", "lapsed_broadcasts", "renew_broadcast", "take_over_broadcast"]

UNFINISHED = ("sending", "failed")  # a send started and did not finish: a resume goes on


def renew_broadcast(
    store: Store, broadcast_id: int, *, owner: str, now: datetime, lease: timedelta
) -> bool:
    """The heartbeat of a send: the claim now lasts until `now + lease`. False when it is no
    longer this owner's (another process took it over, or the send ended)."""
    row = BroadcastRow
    with store.session() as session:
        result = session.execute(
            update(row)
            .where(row.id == broadcast_id, row.owner == owner, row.lease_until.is_not(None))
            .values(lease_until=leases.until(now, lease))
        )
        return rowcount(result) == 1


def hold_broadcast(
    store: Store, broadcast_id: int, *, owner: str, now: datetime, lease: timedelta
) -> bool:
    """An operator's resume takes the claim of an unfinished send, whoever had it (a live
    sender's heartbeat then finds it gone and stops between batches: the ledger keeps
    everyone to one message). False when the broadcast is not unfinished."""
    row = BroadcastRow
    with store.session() as session:
        result = session.execute(
            update(row)
            .where(row.id == broadcast_id, row.status.in_(UNFINISHED))
            .values(owner=owner, lease_until=leases.until(now, lease))
        )
        return rowcount(result) == 1


def lapsed_broadcasts(store: Store, *, owner: str, now: datetime) -> list[Broadcast]:
    """Broadcasts left `sending` under a lease that lapsed, or whose owner is a process of
    this host that is gone, oldest first; never `owner`'s own (its heartbeat is running),
    nor one claimed before leases (NULL: an operator's resume)."""
    row = BroadcastRow
    with store.session() as session:
        rows = session.scalars(
            select(row)
            .where(row.status == "sending", row.lease_until.is_not(None), row.owner != owner)
            .order_by(row.id)
        )
        found = [_broadcast(r) for r in rows]
    return [b for b in found if leases.lapsed(b.owner, b.lease_until, now=now)]


def take_over_broadcast(
    store: Store, seen: Broadcast, *, owner: str, now: datetime, lease: timedelta
) -> bool:
    """Take the claim of a lapsed send from the state `seen` a taker read: one conditional
    UPDATE, so when several daemons read the same lapsed claim, exactly one gets it."""
    row = BroadcastRow
    with store.session() as session:
        result = session.execute(
            update(row)
            .where(
                row.id == seen.id,
                row.status == "sending",
                row.owner == seen.owner,
                row.lease_until == seen.lease_until,
            )
            .values(owner=owner, lease_until=leases.until(now, lease))
        )
        return rowcount(result) == 1
