"""Webhook deliveries (one per event and endpoint, written by publisher.store.outbox) claimed
under leases, their attempts recorded, and replays.

A delivery is `pending` until an attempt succeeds (`delivered`) or the deliverer gives up
(`failed`). A process claims due pending deliveries of enabled endpoints that nobody holds
(or whose lease lapsed: its holder died) with `SELECT ... FOR UPDATE SKIP LOCKED` on
PostgreSQL (on SQLite the UPDATE takes the write lock before it reads), and never one while
an earlier delivery of the same endpoint and ordering key is still pending: each endpoint
receives one subscriber's events in order. Recording an outcome checks the lease is still
the recorder's, so a process that lost its lease never moves a delivery on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, select, update

from publisher.store import Store, dialect, processes
from publisher.store.models import (
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WebhookOutboxRow,
)
from publisher.store.outbox import PENDING

__all__ = [
    "DELIVERED",
    "FAILED",
    "Attempt",
    "Delivery",
    "Due",
    "Outcome",
    "attempts",
    "claim_due",
    "deliveries",
    "prune",
    "reap_dead",
    "record_outcome",
    "record_outcomes",
    "release",
    "replay",
    "replay_failed_since",
    "state_counts",
]

DELIVERED, FAILED = "delivered", "failed"
_D = cast(Table, WebhookDeliveryRow.__table__)
_E = cast(Table, WebhookEndpointRow.__table__)
_O = cast(Table, WebhookOutboxRow.__table__)
_A = cast(Table, WebhookAttemptRow.__table__)
_EARLIER = _D.alias("earlier")  # a table alias, not an ORM one: cheaper to build each claim


@dataclass(frozen=True)
class Due:
    """A claimed delivery: what to POST where, signed with what."""

    delivery_id: int
    event_id: int
    endpoint_id: int
    url: str
    secret: str
    payload: dict[str, Any]
    attempts: int  # made before this one


@dataclass(frozen=True)
class Outcome:
    """One attempt, as the deliverer saw it, and what follows from it."""

    ok: bool
    status_code: int | None
    duration_ms: int
    error: str | None = None
    response: str | None = None  # already truncated
    retry_at: datetime | None = None  # not ok: when to try again; None: give up
    disable: str | None = None  # giving up disables the endpoint, with this reason


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: int
    event_type: str
    ordering_key: str
    state: str
    attempts: int
    next_at: datetime
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class Attempt:
    id: int
    delivery_id: int
    event_type: str
    at: datetime
    status_code: int | None
    duration_ms: int
    ok: bool
    error: str | None
    response: str | None


def claim_due(
    store: Store, *, holder: str, now: datetime, lease: timedelta, limit: int = 50
) -> list[Due]:
    """Take up to `limit` due deliveries (the longest due first) under a lease until
    now + `lease`."""
    earlier = _EARLIER.c
    blocked = (
        select(earlier.id)
        .where(
            earlier.endpoint_id == _D.c.endpoint_id,
            earlier.ordering_key == _D.c.ordering_key,
            earlier.id < _D.c.id,
            earlier.state == PENDING,
        )
        .exists()
    )
    free = (_D.c.holder.is_(None)) | (_D.c.lease_until < now)
    chosen = (
        select(_D.c.id)
        .join(_E, _E.c.id == _D.c.endpoint_id)
        .where(_D.c.state == PENDING, _D.c.next_at <= now, _E.c.enabled.is_(True), free, ~blocked)
        # longest due first; in the due index's own order (state, next_at, then the row id),
        # so the scan stops at `limit` instead of sorting every due delivery each claim
        .order_by(_D.c.next_at, _D.c.id)
        .limit(limit)
    )
    statement = (
        update(_D)
        .where(_D.c.id.in_(dialect.skip_locked(store.engine, chosen, _D)))
        .values(holder=holder, lease_until=now + lease)
        .returning(_D.c.id)
    )
    with store.engine.connect() as connection:  # a read first: idle passes take no write lock
        if connection.execute(chosen.limit(1)).first() is None:
            return []
    with store.engine.begin() as connection:
        ids: list[int] = list(connection.execute(statement).scalars())
        if not ids:
            return []
        rows = connection.execute(
            select(_D.c.id, _D.c.event_id, _D.c.endpoint_id, _D.c.attempts)
            .add_columns(_E.c.url, _E.c.secret, _O.c.payload)
            .join(_E, _E.c.id == _D.c.endpoint_id)
            .join(_O, _O.c.id == _D.c.event_id)
            .where(_D.c.id.in_(ids))
            .order_by(_D.c.id)
        ).all()
    return [Due(r[0], r[1], r[2], r[4], r[5], dict(r[6]), r[3]) for r in rows]


def record_outcome(store: Store, due: Due, outcome: Outcome, *, holder: str, now: datetime) -> str:
    """Log the attempt and move the delivery on: `delivered`, `pending` (retry at
    `outcome.retry_at`) or `failed` (and the endpoint disabled when `outcome.disable`).
    Returns the new state, or "lost" when another process took the lease over meanwhile
    (the attempt is logged all the same)."""
    return record_outcomes(store, [(due, outcome)], holder=holder, now=now)[0]


def record_outcomes(
    store: Store, results: list[tuple[Due, Outcome]], *, holder: str, now: datetime
) -> list[str]:
    """record_outcome for a whole claimed batch in one transaction (a commit per delivery
    would cap a SQLite store at its commits per second)."""
    if not results:
        return []
    states: dict[int, str] = {}
    with store.engine.begin() as connection:
        connection.execute(insert(_A), [_attempt_row(d, o, now) for d, o in results])
        # the delivered ones in one statement; RETURNING says which were still ours
        ok = [due.delivery_id for due, outcome in results if outcome.ok]
        if ok:
            moved = connection.execute(
                update(_D)
                .where(_D.c.id.in_(ok), _D.c.holder == holder, _D.c.state == PENDING)
                .values(_moved(Outcome(True, 200, 0), now))
                .returning(_D.c.id)
            )
            taken: list[int] = list(moved.scalars())
            states |= dict.fromkeys(taken, DELIVERED)
        for due, outcome in results:
            if outcome.ok:
                continue
            values = _moved(outcome, now)
            held = (_D.c.id == due.delivery_id, _D.c.holder == holder, _D.c.state == PENDING)
            result = connection.execute(update(_D).where(*held).values(values))
            if dialect.rowcount(result) == 0:
                continue
            states[due.delivery_id] = str(values["state"])
            if values["state"] == FAILED and outcome.disable:
                connection.execute(
                    update(_E)
                    .where(_E.c.id == due.endpoint_id, _E.c.enabled.is_(True))
                    .values(enabled=False, disabled_reason=outcome.disable, disabled_at=now)
                )
    return [states.get(due.delivery_id, "lost") for due, _ in results]


def _moved(outcome: Outcome, now: datetime) -> dict[str, Any]:
    if outcome.ok:
        values: dict[str, Any] = {"state": DELIVERED, "delivered_at": now}
    elif outcome.retry_at is not None:
        values = {"state": PENDING, "next_at": outcome.retry_at}
    else:
        values = {"state": FAILED}
    return values | {"attempts": _D.c.attempts + 1, "holder": None, "lease_until": None}


def _attempt_row(due: Due, outcome: Outcome, now: datetime) -> dict[str, Any]:
    return {
        "delivery_id": due.delivery_id,
        "endpoint_id": due.endpoint_id,
        "at": now,
        "status_code": outcome.status_code,
        "duration_ms": outcome.duration_ms,
        "error": outcome.error,
        "response": outcome.response,
        "ok": outcome.ok,
    }


def release(store: Store, *, holder: str) -> int:
    """Give back what this process holds (a clean stop): others take it at once."""
    with store.engine.begin() as connection:
        result = connection.execute(
            update(_D)
            .where(_D.c.holder == holder, _D.c.state == PENDING)
            .values(holder=None, lease_until=None)
        )
    return dialect.rowcount(result)


def prune(store: Store, *, before: datetime) -> int:
    """Delivered deliveries written before `before` go, with their attempts and events no
    other delivery needs; failed and waiting ones stay (they can be replayed). How many."""
    old = select(_D.c.id).where(_D.c.state == DELIVERED, _D.c.created_at < before)
    with store.engine.begin() as connection:
        ids: list[int] = list(connection.scalars(old.limit(5000)))
        if not ids:
            return 0
        connection.execute(delete(_A).where(_A.c.delivery_id.in_(ids)))
        connection.execute(delete(_D).where(_D.c.id.in_(ids)))
        needed = select(_D.c.event_id).where(_D.c.event_id == _O.c.id).exists()
        connection.execute(delete(_O).where(_O.c.created_at < before, ~needed))
    return len(ids)


def reap_dead(store: Store) -> int:
    """Deliveries held by processes of this host that no longer exist (a killed daemon) are
    free at once, without waiting out their lease."""
    query = select(_D.c.holder).where(_D.c.state == PENDING, _D.c.holder.is_not(None)).distinct()
    with store.engine.connect() as connection:
        holders: list[str] = list(connection.scalars(query))
    dead = [holder for holder in holders if processes.gone(holder)]
    if not dead:
        return 0
    with store.engine.begin() as connection:
        result = connection.execute(
            update(_D)
            .where(_D.c.holder.in_(dead), _D.c.state == PENDING)
            .values(holder=None, lease_until=None)
        )
    return dialect.rowcount(result)


def replay(store: Store, endpoint_id: int, delivery_id: int, *, now: datetime) -> bool:
    """Send one delivery again (delivered or failed) as soon as a deliverer runs: same
    webhook-id, so a receiver that has it already can tell."""
    return _replay(store, now, _D.c.endpoint_id == endpoint_id, _D.c.id == delivery_id) > 0


def replay_failed_since(store: Store, endpoint_id: int, since: datetime, *, now: datetime) -> int:
    """Every failed delivery of the endpoint written since `since`, again; how many."""
    return _replay(
        store, now, _D.c.endpoint_id == endpoint_id, _D.c.state == FAILED, _D.c.created_at >= since
    )


def _replay(store: Store, now: datetime, *where: Any) -> int:
    not_held = (_D.c.holder.is_(None)) | (_D.c.lease_until < now) | (_D.c.state != PENDING)
    with store.engine.begin() as connection:
        result = connection.execute(
            update(_D)
            .where(and_(*where), not_held)
            .values(state=PENDING, attempts=0, next_at=now, holder=None, lease_until=None)
        )
    return dialect.rowcount(result)


def deliveries(store: Store, endpoint_id: int, *, limit: int = 50) -> list[Delivery]:
    """The endpoint's newest deliveries, newest first."""
    query = (
        select(_D, _O.c.event_type)
        .join(_O, _O.c.id == _D.c.event_id)
        .where(_D.c.endpoint_id == endpoint_id)
        .order_by(_D.c.id.desc())
        .limit(limit)
    )
    with store.begin() as connection:  # a read: joins an enclosing one_transaction()
        rows = connection.execute(query).mappings().all()
    return [
        Delivery(
            r["id"],
            r["event_id"],
            r["event_type"],
            r["ordering_key"],
            r["state"],
            r["attempts"],
            r["next_at"],
            r["created_at"],
            r["delivered_at"],
        )  # fmt: skip
        for r in rows
    ]


def attempts(store: Store, endpoint_id: int, *, limit: int = 50) -> list[Attempt]:
    """The endpoint's newest attempts, newest first."""
    query = (
        select(_A, _O.c.event_type)
        .join(_D, _D.c.id == _A.c.delivery_id)
        .join(_O, _O.c.id == _D.c.event_id)
        .where(_A.c.endpoint_id == endpoint_id)
        .order_by(_A.c.id.desc())
        .limit(limit)
    )
    with store.begin() as connection:  # a read: joins an enclosing one_transaction()
        rows = connection.execute(query).mappings().all()
    return [
        Attempt(
            r["id"],
            r["delivery_id"],
            r["event_type"],
            r["at"],
            r["status_code"],
            r["duration_ms"],
            bool(r["ok"]),
            r["error"],
            r["response"],
        )  # fmt: skip
        for r in rows
    ]


def state_counts(store: Store) -> dict[str, int]:
    """Deliveries per state, every endpoint together (the benchmark's nothing-lost check)."""
    with store.begin() as connection:  # a read: joins an enclosing one_transaction()
        rows = connection.execute(select(_D.c.state, func.count()).group_by(_D.c.state)).all()
    return {str(r[0]): int(r[1]) for r in rows}
