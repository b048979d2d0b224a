"""Many new active subscribers in one go: the API's group commit hands a whole batch of
creates by import keys to `add_active_many`, which answers each as `add_person` then
`add_active` would one at a time (in the order given), with a handful of statements for the
batch instead of several per person: one look-up of the addresses already stored, one of
the suppressed ones, one multi-row INSERT per table. Row triggers (the tallies, the list
counts) fire for each row of a multi-row INSERT as for a single one."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select

from publisher.store import Store, outbox
from publisher.store.consent import Context
from publisher.store.models import SubscriberHistoryRow, SubscriberRow, SuppressionRow
from publisher.store.subscribers import PENDING, Subscriber, new_token, stored_email_hash

__all__ = ["Added", "NewActive", "add_active_many"]


@dataclass(frozen=True)
class NewActive:
    """One person to add active at once; `address` as normalise_email gives it."""

    address: str
    name: str | None
    topics: Sequence[str]
    ctx: Context
    action: str = "added"


@dataclass(frozen=True)
class Added:
    """What became of one NewActive: the person made, or why not: `existing` is the status
    of the subscriber already stored under the address (an earlier one of the same batch
    included), `suppressed` the suppression's reason (bounced, complained, erased)."""

    subscriber: Subscriber | None = None
    existing: str | None = None
    suppressed: str | None = None


_SUBSCRIBERS = cast(Table, SubscriberRow.__table__)
_SUPPRESSIONS = cast(Table, SuppressionRow.__table__)
# built once: the API's batches run them all the time
_STORED = select(_SUBSCRIBERS.c.email, _SUBSCRIBERS.c.status).where(
    _SUBSCRIBERS.c.email.in_(bindparam("emails", expanding=True))
)
_SUPPRESSED = select(_SUPPRESSIONS.c.email_hash, _SUPPRESSIONS.c.reason).where(
    _SUPPRESSIONS.c.email_hash.in_(bindparam("hashes", expanding=True))
)
_ADD = insert(_SUBSCRIBERS).returning(_SUBSCRIBERS.c.id, _SUBSCRIBERS.c.email)
_ADD_HISTORY = insert(cast(Table, SubscriberHistoryRow.__table__))


def _history(
    subscriber_id: int, action: str, ctx: Context, now: datetime, status: str
) -> dict[str, Any]:
    return {
        "subscriber_id": subscriber_id,
        "at": now,
        "action": action,
        "via": ctx.via,
        "status": status,
        "ip": ctx.ip,
        "user_agent": (ctx.user_agent or "")[:500] or None,
        "form": ctx.form,
        "consent_text": ctx.consent_text,
        "detail": None,
    }


def _sorted_out(
    requests: Sequence[NewActive], stored: dict[str, str], suppressed: dict[str, str]
) -> tuple[list[Added | None], list[int]]:
    """Each request's refusal (None: to add) and the indexes of those to add, in order: an
    address stored, or added by an earlier request of the batch, is refused as `active`."""
    outcomes: list[Added | None] = []
    adding: list[int] = []
    for index, request in enumerate(requests):
        status = stored.get(request.address)
        reason = suppressed.get(stored_email_hash(request.address))
        if status is not None:
            outcomes.append(Added(existing=status))
        elif reason is not None:
            outcomes.append(Added(suppressed=reason))
        else:
            outcomes.append(None)
            adding.append(index)
            stored[request.address] = "active"
    return outcomes, adding


def add_active_many(store: Store, requests: Sequence[NewActive], *, now: datetime) -> list[Added]:
    """One Added per request, in order, all in one transaction: a new address becomes an
    active subscriber with the sign-up and the activation in their history and the status
    event in the webhook outbox (what add_active writes); an address already stored, or
    suppressed, is refused and nothing is written for it."""
    if not requests:
        return []
    addresses = sorted({r.address for r in requests})
    hashes = sorted({stored_email_hash(a) for a in addresses})
    with store.engine.begin() as connection:
        stored: dict[str, str] = {
            r[0]: r[1] for r in connection.execute(_STORED, {"emails": addresses})
        }
        suppressed: dict[str, str] = {
            r[0]: r[1] for r in connection.execute(_SUPPRESSED, {"hashes": hashes})
        }
        outcomes, adding = _sorted_out(requests, stored, suppressed)
        if adding:
            made = _insert(connection, [requests[i] for i in adding], now)
            for index, person in zip(adding, made, strict=True):
                outcomes[index] = Added(subscriber=person)
    return [outcome or Added() for outcome in outcomes]


def _insert(connection: Connection, requests: list[NewActive], now: datetime) -> list[Subscriber]:
    """The people (new addresses, distinct), their history and their webhook events."""
    rows = [_row(request, now) for request in requests]
    ids = {r[1]: int(r[0]) for r in connection.execute(_ADD, rows)}
    history: list[dict[str, Any]] = []
    events: list[tuple[int, str | None, str]] = []
    made = []
    for request, row in zip(requests, rows, strict=True):
        ident = ids[request.address]
        history.append(_history(ident, "signup", request.ctx, now, PENDING))
        history.append(_history(ident, request.action, request.ctx, now, "active"))
        events.append((ident, request.address, request.ctx.via))
        topics = tuple(row["topics"])
        made.append(Subscriber(ident, request.address, request.name, topics, "active",
                               row["token"], row["ref"]))  # fmt: skip
    connection.execute(_ADD_HISTORY, history)
    outbox.subscriber_events(connection, events, "active", now)
    return made


def _row(request: NewActive, now: datetime) -> dict[str, Any]:
    return {
        "email": request.address,
        "email_hash": stored_email_hash(request.address),  # what suppressions are matched on
        "name": request.name,
        "topics": sorted(set(request.topics)),
        "status": "active",
        "token": new_token(),
        "created_at": now,
        "updated_at": now,
        "ref": secrets.token_urlsafe(12),
        "retired_token": None,
        "status_reason": None,
    }
