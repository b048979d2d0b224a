"""Read-only queries the feed publisher needs beyond `Store.list_items`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from publisher.store import Store
from publisher.store.models import EditionRow


@dataclass(frozen=True)
class SentEdition:
    campaign: str
    number: int
    subject: str
    preheader: str
    sent_at: datetime  # aware UTC; composed_at when a sent edition has no sent_at


def sent_editions(store: Store, campaign: str) -> list[SentEdition]:
    """A campaign's editions that went out, newest first (drafts are never published)."""
    query = (
        select(EditionRow)
        .where(EditionRow.campaign == campaign)
        .where(or_(EditionRow.sent_at.is_not(None), EditionRow.status == "sent"))
        .order_by(EditionRow.number.desc())
    )
    with store.session() as session:
        return [
            SentEdition(
                campaign=row.campaign,
                number=row.number,
                subject=row.subject,
                preheader=row.preheader or "",
                sent_at=row.sent_at or row.composed_at,
            )
            for row in session.scalars(query)
        ]
