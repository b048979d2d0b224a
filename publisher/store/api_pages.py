"""What the JSON API reads in pages: subscribers and the events other systems pull
(unsubscribes, bounces, complaints). Keyset pages on the row id, never OFFSET: a page
starts after the last id of the one before, so rows inserted meanwhile never shift anyone
out of a walk (ids only grow) and nobody is repeated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from publisher.store import Store
from publisher.store.models import SubscriberHistoryRow, SubscriberRow
from publisher.store.subscribers import Subscriber

__all__ = ["EVENT_STATUSES", "SubscriberEvent", "subscriber_events", "subscriber_page"]

EVENT_STATUSES = ("unsubscribed", "bounced", "complained")


@dataclass(frozen=True)
class SubscriberEvent:
    id: int
    kind: str  # unsubscribed | bounced | complained
    at: datetime
    subscriber_id: int
    email: str
    via: str


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
    store: Store, *, after: int = 0, limit: int = 100, kinds: tuple[str, ...] = EVENT_STATUSES
) -> list[SubscriberEvent]:
    """Changes of people to unsubscribed, bounced or complained after history id `after`,
    oldest first (a sign-up by someone already in such a status changed nothing: left out)."""
    history, people = SubscriberHistoryRow, SubscriberRow
    query = (
        select(history.id, history.status, history.at, history.subscriber_id, people.email)
        .add_columns(history.via)
        .join(people, people.id == history.subscriber_id)
        .where(history.id > after, history.status.in_(kinds), history.action != "signup")
        .order_by(history.id)
        .limit(limit)
    )
    with store.session() as session:
        return [
            SubscriberEvent(r.id, r.status, r.at, r.subscriber_id, r.email, r.via)
            for r in session.execute(query)
        ]
