"""The webhook outbox: every event an endpoint may want is written here INSIDE the
transaction of the change it reports (issue 22), so a change that rolls back leaves no event
and a change that commits always has one. `enqueue` also writes one delivery per endpoint
that wants the event (enabled or not: a disabled endpoint gets its backlog when turned back
on); when no endpoint wants it, nothing is written. publisher.store.webhook_queue claims
and records the deliveries.

Payloads are `{type, timestamp, data}` and never carry a subscriber token or a secret.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Table, insert, select
from sqlalchemy.orm import Session

from publisher.store.models import WebhookDeliveryRow, WebhookEndpointRow, WebhookOutboxRow

# enqueue, subscriber_event and broadcast_sent take the caller's open Session or Connection:
# store-internal helpers for the store modules that make the changes, off the surface.
__all__ = ["EVENTS", "PENDING"]

EVENTS = (
    "subscriber.confirmed",
    "subscriber.unsubscribed",
    "subscriber.bounced",
    "subscriber.complained",
    "subscriber.erased",
    "edition.sent",
    "broadcast.sent",
    "post.published",
)
PENDING = "pending"

# a subscriber's new status -> the event reporting it
_STATUS_EVENTS = {
    "active": "subscriber.confirmed",
    "unsubscribed": "subscriber.unsubscribed",
    "bounced": "subscriber.bounced",
    "complained": "subscriber.complained",
}

_OUTBOX = cast(Table, WebhookOutboxRow.__table__)
_DELIVERIES = cast(Table, WebhookDeliveryRow.__table__)
_ENDPOINTS = cast(Table, WebhookEndpointRow.__table__)
_WHO_LISTENS = select(_ENDPOINTS.c.id, _ENDPOINTS.c.events)  # built once: on every write path


def enqueue(
    executor: Session | Connection,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    *,
    ordering_key: str,
) -> int | None:
    """Write one event (and its deliveries) in the caller's open transaction; its id, or
    None when no endpoint wants this type of event (nothing is written).
    `ordering_key` ("subscriber:12", "edition:3"): an endpoint receives the events of one
    key in the order they were written."""
    if event_type not in EVENTS:
        raise ValueError(f"unknown webhook event {event_type!r}")
    wanted = _listeners(executor, event_type)
    if not wanted:
        return None  # nobody listens: nothing to keep (the common case, on the hot paths)
    return _write(executor, wanted, event_type, data, now, ordering_key=ordering_key)


def _listeners(executor: Session | Connection, event_type: str) -> list[int]:
    endpoints = executor.execute(_WHO_LISTENS).all()
    return [int(found[0]) for found in endpoints if event_type in list(found[1] or ())]


@functools.lru_cache(maxsize=4)
def _who_listens_plain(dialect: Dialect) -> tuple[str, Callable[[Any], Any]]:
    """_WHO_LISTENS as plain SQL (built from the table once) and what the events column's
    type makes of what is stored."""
    quote = dialect.identifier_preparer.quote
    ident, events = _ENDPOINTS.c.id, _ENDPOINTS.c.events
    sql = f"SELECT {quote(ident.name)}, {quote(events.name)} FROM {quote(_ENDPOINTS.name)}"
    loaded = events.type.dialect_impl(dialect).result_processor(dialect, None)
    return sql, loaded if loaded is not None else (lambda value: value)


def _listeners_plain(connection: Connection, event_type: str) -> list[int]:
    """_listeners through the DBAPI cursor, on SQLite: the API's batched creates read the
    endpoints once a batch, and SQLAlchemy's statement machinery cost more than the read."""
    sql, loaded = _who_listens_plain(connection.dialect)
    found = connection.connection.cursor().execute(sql).fetchall()
    return [int(ident) for ident, events in found if event_type in list(loaded(events) or ())]


def _write(
    executor: Session | Connection,
    wanted: list[int],
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    *,
    ordering_key: str,
) -> int:
    payload = {"type": event_type, "timestamp": _iso(now), "data": data}
    row = {
        "event_type": event_type,
        "payload": payload,
        "ordering_key": ordering_key,
        "created_at": now,
    }
    event_id: int = executor.execute(
        insert(_OUTBOX).values(**row).returning(_OUTBOX.c.id)
    ).scalar_one()
    executor.execute(
        insert(_DELIVERIES),
        [
            {
                "event_id": event_id,
                "endpoint_id": endpoint_id,
                "ordering_key": ordering_key,
                "state": PENDING,
                "attempts": 0,
                "next_at": now,
                "created_at": now,
            }
            for endpoint_id in wanted
        ],
    )
    return int(event_id)


def subscriber_event(
    executor: Session | Connection,
    subscriber_id: int,
    status: str,
    now: datetime,
    *,
    email: str | None,
    via: str,
) -> None:
    """The event of a subscriber's new status, if one reports it (a pending sign-up does
    not). The email is the person's address (another system needs it to find them); never
    their token."""
    event_type = _STATUS_EVENTS.get(status)
    if event_type is None:
        return
    data = {"subscriber": {"id": subscriber_id, "email": email, "status": status}, "via": via}
    enqueue(executor, event_type, data, now, ordering_key=f"subscriber:{subscriber_id}")


def subscriber_events(
    executor: Session | Connection,
    events: list[tuple[int, str | None, str]],
    status: str,
    now: datetime,
) -> None:
    """subscriber_event for many (id, email, via) with the same new status: the endpoints
    listening are read once (the API's batched creates)."""
    event_type = _STATUS_EVENTS.get(status)
    if event_type is None or not events:
        return
    if isinstance(executor, Connection) and executor.dialect.name == "sqlite":
        wanted = _listeners_plain(executor, event_type)
    else:
        wanted = _listeners(executor, event_type)
    for subscriber_id, email, via in events if wanted else ():
        data = {"subscriber": {"id": subscriber_id, "email": email, "status": status}, "via": via}
        _write(executor, wanted, event_type, data, now, ordering_key=f"subscriber:{subscriber_id}")


def broadcast_sent(
    executor: Session | Connection,
    broadcast_id: int,
    now: datetime,
    *,
    subject: str,
    counts: dict[str, int],
) -> None:
    """THE HOOK of the broadcast part: call it inside the transaction that marks a broadcast
    sent (its session or connection), once, with the ledger's counts per status."""
    data = {"broadcast": {"id": broadcast_id, "subject": subject}, "counts": dict(counts)}
    enqueue(executor, "broadcast.sent", data, now, ordering_key=f"broadcast:{broadcast_id}")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
