"""Outgoing webhook endpoints (issue 22): where owners want events posted, which events, the
signing secret (`whsec_` + base64, as the Standard Webhooks spec says; shown once, then only
used to sign), enabled or disabled (by an owner, or after repeated failure: then with a
reason, shown as an alert). What is checked about a URL is publisher.deliver.webhooks."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update

from publisher.errors import PublisherError
from publisher.store import Store, dialect
from publisher.store.models import WebhookDeliveryRow, WebhookEndpointRow
from publisher.store.outbox import EVENTS

__all__ = [
    "Endpoint",
    "EndpointNotFound",
    "create_endpoint",
    "delete_endpoint",
    "disabled_alerts",
    "get_endpoint",
    "list_endpoints",
    "new_secret",
    "rotate_secret",
    "set_enabled",
    "take_unseen_secret",
    "update_endpoint",
]

_ENDPOINTS = cast(Table, WebhookEndpointRow.__table__)
_DELIVERIES = cast(Table, WebhookDeliveryRow.__table__)


class EndpointNotFound(PublisherError):
    """No webhook endpoint with that id."""


@dataclass(frozen=True)
class Endpoint:
    id: int
    url: str
    description: str
    events: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    created_at: datetime
    created_by: str
    waiting: int = 0  # deliveries not delivered yet
    failed: int = 0  # deliveries given up on (replayable)


def new_secret() -> str:
    """A signing secret as the Standard Webhooks spec writes it: whsec_ + base64 of 32
    random bytes (the standardwebhooks library strips the prefix and decodes the rest)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _events(events: list[str] | tuple[str, ...]) -> list[str]:
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise ValueError(f"unknown webhook events: {', '.join(unknown)}")
    return [event for event in EVENTS if event in events]


def create_endpoint(
    store: Store,
    url: str,
    events: list[str] | tuple[str, ...],
    *,
    description: str = "",
    by: str,
    now: datetime,
) -> tuple[Endpoint, str]:
    """A new, enabled endpoint and its secret (the only time the caller gets to show it)."""
    secret = new_secret()
    row = WebhookEndpointRow(
        url=url,
        description=description,
        events=_events(events),
        secret=secret,
        secret_unseen=True,
        enabled=True,
        created_at=now,
        created_by=by,
    )
    with store.session() as session:
        session.add(row)
        session.flush()
        return _endpoint(row), secret


def update_endpoint(
    store: Store,
    endpoint_id: int,
    *,
    url: str,
    events: list[str] | tuple[str, ...],
    description: str,
) -> Endpoint:
    """New URL, events and description; events written from now on follow the new list."""
    values = {"url": url, "events": _events(events), "description": description}
    with store.session() as session:
        result = session.execute(
            update(_ENDPOINTS).where(_ENDPOINTS.c.id == endpoint_id).values(**values)
        )
        if dialect.rowcount(result) == 0:
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")
    return get_endpoint(store, endpoint_id)


def set_enabled(
    store: Store, endpoint_id: int, enabled: bool, *, now: datetime, reason: str | None = None
) -> None:
    """Turn an endpoint on (its waiting deliveries go out) or off; `reason` when the
    deliverer disabled it after repeated failure (the overview's alert)."""
    values: dict[str, Any] = {"enabled": enabled, "disabled_reason": None, "disabled_at": None}
    if not enabled:
        values |= {"disabled_reason": reason, "disabled_at": now}
    with store.session() as session:
        result = session.execute(
            update(_ENDPOINTS).where(_ENDPOINTS.c.id == endpoint_id).values(**values)
        )
        if dialect.rowcount(result) == 0:
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")


def rotate_secret(store: Store, endpoint_id: int) -> str:
    """A new secret replaces the old at once (every later attempt is signed with it)."""
    secret = new_secret()
    with store.session() as session:
        result = session.execute(
            update(_ENDPOINTS)
            .where(_ENDPOINTS.c.id == endpoint_id)
            .values(secret=secret, secret_unseen=True)
        )
        if dialect.rowcount(result) == 0:
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")
    return secret


def take_unseen_secret(store: Store, endpoint_id: int) -> str | None:
    """The secret if it was never shown (a new endpoint, a new secret), marked shown in the
    same statement: the page shows it once, even to two tabs or a reload."""
    with store.session() as session:
        result = session.execute(
            update(_ENDPOINTS)
            .where(_ENDPOINTS.c.id == endpoint_id, _ENDPOINTS.c.secret_unseen.is_(True))
            .values(secret_unseen=False)
            .returning(_ENDPOINTS.c.secret)
        ).first()
    return None if result is None else str(result[0])


def delete_endpoint(store: Store, endpoint_id: int) -> None:
    with store.session() as session:
        session.execute(delete(_DELIVERIES).where(_DELIVERIES.c.endpoint_id == endpoint_id))
        session.execute(delete(_ENDPOINTS).where(_ENDPOINTS.c.id == endpoint_id))


def get_endpoint(store: Store, endpoint_id: int) -> Endpoint:
    found = [e for e in list_endpoints(store, only=endpoint_id)]
    if not found:
        raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")
    return found[0]


def list_endpoints(store: Store, *, only: int | None = None) -> list[Endpoint]:
    """Every endpoint (oldest first) with its waiting and failed deliveries counted."""
    query = select(WebhookEndpointRow).order_by(WebhookEndpointRow.id)
    counts = select(_DELIVERIES.c.endpoint_id, _DELIVERIES.c.state, func.count()).group_by(
        _DELIVERIES.c.endpoint_id, _DELIVERIES.c.state
    )
    if only is not None:
        query = query.where(WebhookEndpointRow.id == only)
        counts = counts.where(_DELIVERIES.c.endpoint_id == only)
    with store.session() as session:
        rows = list(session.scalars(query))
        per = {(int(r[0]), str(r[1])): int(r[2]) for r in session.execute(counts).all()}
        return [
            _endpoint(row, per.get((row.id, "pending"), 0), per.get((row.id, "failed"), 0))
            for row in rows
        ]


def disabled_alerts(store: Store) -> list[Endpoint]:
    """Endpoints the deliverer turned off after repeated failure: the overview warns."""
    return [e for e in list_endpoints(store) if not e.enabled and e.disabled_reason]


def _endpoint(row: WebhookEndpointRow, waiting: int = 0, failed: int = 0) -> Endpoint:
    return Endpoint(
        id=row.id,
        url=row.url,
        description=row.description or "",
        events=tuple(row.events or ()),
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        created_at=row.created_at,
        created_by=row.created_by,
        waiting=waiting,
        failed=failed,
    )
