"""How many active subscribers a send would reach, counted without reading them one by one:
per distinct topic list from the counts the database's own triggers keep (migration 0030),
less the people a send holds back (paused, or an address on the suppression list)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from publisher.store import Store
from publisher.store.models import (
    SubscriberListRow,
    SubscriberPauseRow,
    SubscriberRow,
    SuppressionRow,
)
from publisher.store.subscribers import follows

__all__ = [
    "count_audience",
    "count_reachable",
]


def count_audience(store: Store, audience: Sequence[str]) -> int:
    """Active subscribers who follow a campaign with this audience (paused and suppressed
    people included: count_reachable leaves them out)."""
    with store.session() as session:
        if not audience:
            query = select(func.count()).where(SubscriberRow.status == "active")
            return session.scalar(query) or 0
        return _count_active(session, lambda topics: follows(topics, audience))


def count_reachable(
    store: Store, chooses: Callable[[Sequence[str]], bool], *, now: datetime
) -> int:
    """How many active subscribers whose topics `chooses` accepts a send at `now` would
    reach: not paused, not suppressed. Counted per distinct list of topics (a few hundred
    at most) rather than per person, so a live count over a million people stays quick;
    only the held-back people (paused, or an address on the suppression list) are read
    one by one."""
    with store.session() as session:
        reached = _count_active(session, chooses)
        held = _held_back(session, now)
        for start in range(0, len(held), 5000):  # bounded IN lists
            chunk = held[start : start + 5000]
            rows: list[Any] = list(
                session.scalars(select(SubscriberRow.topics).where(SubscriberRow.id.in_(chunk)))
            )
            reached -= sum(1 for topics in rows if chooses(list(topics or ())))
    return reached


def _count_active(session: Session, chooses: Callable[[Sequence[str]], bool]) -> int:
    """Active subscribers whose topics `chooses` accepts, counted per distinct topic list:
    read from the counts per list the database's own triggers keep exact (migration
    0030), a few hundred rows whatever the number of subscribers."""
    groups = session.execute(
        select(SubscriberListRow.topics, SubscriberListRow.n).where(
            SubscriberListRow.status == "active", SubscriberListRow.n != 0
        )
    ).all()
    return sum(int(n) for text, n in groups if chooses(_topics_of(text)))


def _topics_of(text: str | None) -> list[str]:
    value = json.loads(text) if text else None
    return [str(t) for t in value] if isinstance(value, list) else []


def _held_back(session: Session, now: datetime) -> list[int]:
    """Ids of the active subscribers a send now holds back: paused, or suppressed (their
    stored address's hash, subscribers.email_hash, on the suppression list)."""
    # driven from the pauses in force (an index on until), each checked by its subscriber's
    # key: as a join, SQLite (no statistics) walked every active subscriber instead
    active = (
        select(SubscriberRow.id)
        .where(SubscriberRow.id == SubscriberPauseRow.subscriber_id)
        .where(SubscriberRow.status == "active")
    )
    held = set(
        session.scalars(
            select(SubscriberPauseRow.subscriber_id).where(
                SubscriberPauseRow.until > now, active.exists()
            )
        )
    )
    held.update(_suppressed_ids(session))
    return sorted(held)


def _suppressed_ids(db: Session | Connection) -> set[int]:
    """Ids of the active subscribers whose address is on the suppression list: one
    statement, the suppressed hashes an IN subquery on the indexed subscribers.email_hash,
    so only the matches leave the database however long the list. SQLite walks the
    suppressions' key and looks each up by that index, with or without statistics;
    PostgreSQL hashes or probes as its statistics say. No status condition in SQL: without
    statistics (nothing here runs ANALYZE) SQLite's planner walked every active subscriber
    along the status index instead; the few suppressed inactive rows are dropped here."""
    return {int(sid) for sid, status in db.execute(_SUPPRESSED) if status == "active"}


# built once; tests/test_subscriber_email_hash.py reads both planners' plans for it
_SUPPRESSED = select(SubscriberRow.id, SubscriberRow.status).where(
    SubscriberRow.email_hash.in_(select(SuppressionRow.email_hash))
)
