"""What the store holds on record about one subscriber, read only: their history of
changes, a pause in force, since when they are subscribed, the webhook events kept for their
address. The changes themselves are publisher.store.consent's transactions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from publisher.store import Store
from publisher.store.models import (
    SubscriberHistoryRow,
    SubscriberPauseRow,
    SubscriberRow,
    WebhookEventRow,
)

__all__ = [
    "count_history",
    "email_events",
    "history",
    "paused_until",
    "subscribed_since",
]


def paused_until(store: Store, subscriber_id: int, *, now: datetime) -> datetime | None:
    with store.session() as session:
        until = session.scalar(
            select(SubscriberPauseRow.until).where(
                SubscriberPauseRow.subscriber_id == subscriber_id
            )
        )
    return until if until is not None and until > now else None


def history(store: Store, subscriber_id: int) -> list[dict[str, Any]]:
    columns = (
        "at",
        "action",
        "via",
        "status",
        "ip",
        "user_agent",
        "form",
        "consent_text",
        "detail",
    )
    with store.session() as session:
        rows = session.scalars(
            select(SubscriberHistoryRow)
            .where(SubscriberHistoryRow.subscriber_id == subscriber_id)
            .order_by(SubscriberHistoryRow.id)
        ).all()
        return [
            {c: (getattr(r, c).isoformat() if c == "at" else getattr(r, c)) for c in columns}
            for r in rows
        ]


def count_history(store: Store) -> int:
    """History rows of every subscriber together (a benchmark checks nothing was lost)."""
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(SubscriberHistoryRow)) or 0


def subscribed_since(store: Store, subscriber_id: int) -> datetime | None:
    with store.session() as session:
        row = session.get(SubscriberRow, subscriber_id)
        return row.created_at if row else None


def email_events(
    store: Store, email: str, *, limit: int = 10_000
) -> list[tuple[str, datetime | None, str | None]]:
    """(event, when, url) of the webhook events kept for an address, oldest first."""
    with store.session() as session:
        events = session.execute(
            select(WebhookEventRow.event, WebhookEventRow.occurred_at, WebhookEventRow.url)
            .where(WebhookEventRow.email == email)
            .order_by(WebhookEventRow.occurred_at)
            .limit(limit)
        ).all()
    return [(e, at, url) for e, at, url in events]
