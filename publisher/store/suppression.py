"""Suppression: addresses never to be mailed, and holding paused subscribers back.

An entry is the SHA-256 of the normalised address, so erasure keeps nothing readable while a
later import or sign-up of the same address is still recognised. The hash is unkeyed on
purpose: the CLI and the web must agree without sharing a secret, and rotating the signing
key must not forget who asked never to be mailed.

`hold_back` is how a send skips paused and suppressed subscribers: before the dispatcher reads
the recipients, their ledger rows are written `skipped` with the reason, so the ledger says
why and `ledger.iter_due` (which only returns subscribers without a row or with a `pending`
one) never offers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, and_, bindparam, delete, insert, select, update

from publisher.store import Store, dialect
from publisher.store.audience_counts import _suppressed_ids
from publisher.store.models import (
    DeliveryRow,
    SubscriberPauseRow,
    SubscriberRow,
    SuppressionRow,
)
from publisher.store.subscribers import email_hash, follows

__all__ = [
    "SKIPPED",
    "hold_back",
    "suppress",
    "suppression_reason",
    "unsuppress",
]

SKIPPED = "skipped"  # the ledger's own word (publisher.store.ledger.SKIPPED)


def table_of(model: type) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def suppress(store: Store, email: str, *, reason: str, source: str, now: datetime) -> None:
    """Add (or re-label) the address's suppression entry."""
    digest = email_hash(email)
    with store.session() as session:
        row = session.get(SuppressionRow, digest)
        if row is None:
            session.add(
                SuppressionRow(email_hash=digest, reason=reason, source=source, created_at=now)
            )
        else:
            row.reason, row.source = reason, source


def unsuppress(store: Store, email: str) -> bool:
    """The person confirmed again (double opt-in, or resubscribed with their own token)."""
    with store.session() as session:
        result = session.execute(
            delete(SuppressionRow).where(SuppressionRow.email_hash == email_hash(email))
        )
        return dialect.rowcount(result) > 0


# built once: building a statement costs more than running it (the API's creates)
_REASON = select(SuppressionRow.reason).where(SuppressionRow.email_hash == bindparam("hash"))


def suppression_reason(store: Store, email: str) -> str | None:
    with store.engine.connect() as connection:  # Core: the API's creates call it a lot
        return connection.scalar(_REASON, {"hash": email_hash(email)})


def _held(store: Store, edition_id: int, audience: Sequence[str], now: datetime) -> dict[int, str]:
    """Active followers of the campaign not yet reached by this edition who are paused or
    suppressed, with the reason. Both are read from their own (small) side: the pauses in
    force, and the suppressed ids (store.audience_counts._suppressed_ids), each by its key."""
    subscribers, deliveries, pauses = (
        table_of(SubscriberRow),
        table_of(DeliveryRow),
        table_of(SubscriberPauseRow),
    )
    s, d, p = subscribers.c, deliveries.c, pauses.c
    join = and_(d.subscriber_id == s.id, d.edition_id == edition_id)
    unreached = (s.status == "active", (d.status.is_(None)) | (d.status == "pending"))
    paused = (
        select(s.id, s.topics, p.until)
        .select_from(pauses.join(subscribers, p.subscriber_id == s.id).outerjoin(deliveries, join))
        .where(p.until > now, *unreached)
    )
    suppressed = select(s.id, s.topics).select_from(subscribers.outerjoin(deliveries, join))
    held: dict[int, str] = {}
    with store.engine.connect() as connection:
        ids = sorted(_suppressed_ids(connection))
        for start in range(0, len(ids), 1000):  # bounded IN lists, by primary key
            chunk = suppressed.where(s.id.in_(ids[start : start + 1000]), *unreached)
            for row in connection.execute(chunk):
                if not audience or follows(row.topics or (), audience):
                    held[int(row.id)] = "suppressed address"
        for row in connection.execute(paused):  # a pause is named first
            if not audience or follows(row.topics or (), audience):
                held[int(row.id)] = f"paused until {_aware(row.until).date().isoformat()}"
    return held


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def hold_back(store: Store, edition_id: int, audience: Sequence[str], *, now: datetime) -> int:
    """Write `skipped` ledger rows (with the reason) for the paused and suppressed
    subscribers of this edition; returns how many. Run before the dispatcher reads recipients."""
    held = _held(store, edition_id, audience, now)
    if not held:
        return 0
    table = table_of(DeliveryRow)
    with store.engine.begin() as connection:
        existing: set[int] = set(
            connection.execute(
                select(table.c.subscriber_id).where(
                    table.c.edition_id == edition_id, table.c.subscriber_id.in_(list(held))
                )
            ).scalars()
        )
        for sid in existing:
            connection.execute(
                update(table)
                .where(table.c.edition_id == edition_id, table.c.subscriber_id == sid)
                .values(status=SKIPPED, error=held[sid], updated_at=now)
            )
        new = [
            dict(
                edition_id=edition_id,
                subscriber_id=sid,
                batch=None,
                status=SKIPPED,
                attempts=0,
                error=reason,
                updated_at=now,
            )
            for sid, reason in held.items()
            if sid not in existing
        ]
        if new:
            connection.execute(insert(table), new)
    return len(held)
