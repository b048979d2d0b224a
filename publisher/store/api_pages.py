"""What the JSON API reads in pages: subscribers and the events other systems pull
(unsubscribes, bounces, complaints). Keyset pages, never OFFSET: a page starts after the
last key of the one before, so rows inserted meanwhile never shift anyone out of a walk
and nobody is repeated.

Subscribers are paged by id. Events are paged in commit-safe order: on PostgreSQL an id is
taken at INSERT, not at commit, so a long transaction (a SendGrid batch) can commit a lower
id after a client already paged past a higher one. There each history row keeps its
inserting transaction's id (`txid`, migration 0033); events go by (txid, id) and only
those of transactions older than every one still running are handed out, so nothing can
later appear before a position already given. On SQLite (one writer, ids commit in order)
txid is 0 and events go by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, or_, select, tuple_

from publisher.store import Store, dialect
from publisher.store.models import SubscriberHistoryRow, SubscriberRow
from publisher.store.subscribers import Subscriber

__all__ = [
    "EVENT_STATUSES",
    "FIRST_EVENT",
    "EventPosition",
    "SubscriberEvent",
    "subscriber_events",
    "subscriber_page",
]

EVENT_STATUSES = ("unsubscribed", "bounced", "complained")


class EventPosition(NamedTuple):
    """Where a walk through the events stands: after the event (txid, id); (0, 0) before the
    first. txid is 0 on SQLite and for rows older than migration 0033."""

    txid: int
    id: int


FIRST_EVENT = EventPosition(0, 0)


@dataclass(frozen=True)
class SubscriberEvent:
    id: int
    kind: str  # unsubscribed | bounced | complained
    at: datetime
    subscriber_id: int
    email: str
    via: str
    position: EventPosition  # where a page ending with this event ends


def subscriber_page(
    store: Store,
    *,
    after: int = 0,
    limit: int = 50,
    status: str | None = None,
    text: str | None = None,
) -> list[Subscriber]:
    """Up to `limit` subscribers with an id above `after`, by id; `status` exactly, `text`
    contained in the address or name, whatever its case (`%` and `_` in it are plain
    characters). Erased people are never listed."""
    row = SubscriberRow
    query = select(row).where(row.id > after, row.email.not_like("%@erased.invalid"))
    if status:
        query = query.where(row.status == status)
    if text:
        # lower() on both sides: LIKE ignores case on SQLite (ASCII) but not on PostgreSQL;
        # the term's own % and _ are escaped, so "a_b" finds "a_b" and nothing else
        term = text.strip().lower()
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(
                func.lower(row.email).like(pattern, escape="\\"),
                func.lower(row.name).like(pattern, escape="\\"),
            )
        )
    query = query.order_by(row.id).limit(limit)
    with store.session() as session:
        return [
            Subscriber(r.id, r.email, r.name, tuple(r.topics or ()), r.status, r.token, r.ref)
            for r in session.scalars(query)
        ]


def subscriber_events(
    store: Store,
    *,
    after: EventPosition = FIRST_EVENT,
    limit: int = 100,
    kinds: tuple[str, ...] = EVENT_STATUSES,
) -> list[SubscriberEvent]:
    """Changes of people to unsubscribed, bounced or complained after position `after`,
    in an order fixed at commit. PostgreSQL (an id taken at INSERT may commit after a
    higher one): by (txid, id), only those whose transaction is older than every one still
    running (an event of a transaction still open, and any after it, waits for a later
    call). SQLite: by id. A sign-up by someone already in such a status changed nothing:
    left out."""
    history, people = SubscriberHistoryRow, SubscriberRow
    query = (
        select(history.id, history.status, history.at, history.subscriber_id, people.email)
        .add_columns(history.via, history.txid)
        .join(people, people.id == history.subscriber_id)
        .where(history.status.in_(kinds), history.action != "signup")
        .limit(limit)
    )
    settled_below = dialect.oldest_running_transaction(store.engine)
    if settled_below is None:
        query = query.where(history.id > after.id).order_by(history.id)
    else:
        query = query.where(
            tuple_(history.txid, history.id) > tuple_(after.txid, after.id),
            history.txid < settled_below,
        ).order_by(history.txid, history.id)
    with store.session() as session:
        return [
            SubscriberEvent(
                r.id, r.status, r.at, r.subscriber_id, r.email, r.via, EventPosition(r.txid, r.id)
            )
            for r in session.execute(query)
        ]
