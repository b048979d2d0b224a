"""Who a broadcast reaches (publisher.store.broadcasts): active subscribers following any
of the audience's topics (publisher.store.subscribers.follows: no topics means everyone; a
person who chose no topic follows everything), minus those who chose an excluded topic by
name, minus paused and suppressed people. `audience_count` counts them; the send leaves the
excluded ones out through `exclude_followers` plus the dispatcher's own reading of the
audience.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from publisher.store import Store
from publisher.store.audience_counts import count_reachable
from publisher.store.ledger import PENDING, SKIPPED
from publisher.store.models import DeliveryRow, SubscriberRow
from publisher.store.subscribers import follows

__all__ = ["Audience", "audience_count", "exclude_followers", "excluded"]


@dataclass(frozen=True)
class Audience:
    topics: tuple[str, ...] = ()  # empty: everyone
    exclude: tuple[str, ...] = ()  # people following any of these are left out


CHUNK = 5000


def excluded(topics: Sequence[str] | None, exclude: Sequence[str]) -> bool:
    """Whether a person with these topics is left out: they chose an excluded topic by name
    (a person who chose no topic, i.e. everything, is not left out by an exclusion)."""
    return bool(exclude) and bool(topics) and follows(topics or (), exclude)


def _active(session: Any, after: int) -> list[tuple[int, str, list[str]]]:
    """The next CHUNK active subscribers after id `after`: (id, email, topics)."""
    rows = session.execute(
        select(SubscriberRow.id, SubscriberRow.email, SubscriberRow.topics)
        .where(SubscriberRow.id > after, SubscriberRow.status == "active")
        .order_by(SubscriberRow.id)
        .limit(CHUNK)
    ).all()
    return [(int(sid), str(email), list(topics or ())) for sid, email, topics in rows]


def audience_count(store: Store, audience: Audience, *, now: datetime | None = None) -> int:
    """How many people the audience reaches now: active subscribers following any of its
    topics (all when none), less those who chose an excluded topic, less paused (at `now`,
    default the current time) and suppressed ones: who a send now would send to."""
    moment = now or datetime.now(UTC)
    return count_reachable(store, lambda topics: _in_audience(topics, audience), now=moment)


def _in_audience(topics: Sequence[str], audience: Audience) -> bool:
    return follows(topics, audience.topics) and not excluded(topics, audience.exclude)


def exclude_followers(store: Store, edition_id: int, audience: Audience, *, now: datetime) -> int:
    """Before the dispatcher reads the audience: a `skipped` ledger row for every active
    subscriber in the audience's topics who chose an excluded topic and has no row (or a
    `pending` one) in this edition, so the send never reaches them; how many."""
    if not audience.exclude:
        return 0
    found = 0
    after = 0
    while True:
        with store.session() as session:
            rows = _active(session, after)
            if not rows:
                return found
            after = rows[-1][0]
            left_out = [
                sid
                for sid, _email, topics in rows
                if follows(topics, audience.topics) and excluded(topics, audience.exclude)
            ]
            found += _skip(session, edition_id, left_out, now)


def _skip(session: Any, edition_id: int, ids: list[int], now: datetime) -> int:
    if not ids:
        return 0
    reason = "excluded: follows a topic the broadcast leaves out"
    rows = dict(
        session.execute(
            select(DeliveryRow.subscriber_id, DeliveryRow.status).where(
                DeliveryRow.edition_id == edition_id, DeliveryRow.subscriber_id.in_(ids)
            )
        ).all()
    )
    pending = [sid for sid in ids if rows.get(sid) == PENDING]
    if pending:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.edition_id == edition_id, DeliveryRow.subscriber_id.in_(pending))
            .values(status=SKIPPED, error=reason, updated_at=now)
        )
    new = [
        {"edition_id": edition_id, "subscriber_id": sid, "batch": None, "status": SKIPPED,
         "attempts": 0, "error": reason, "updated_at": now}
        for sid in ids if sid not in rows
    ]  # fmt: skip
    if new:
        session.execute(insert(DeliveryRow), new)
    return len(pending) + len(new)
