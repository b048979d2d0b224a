"""Read-only queries the feed publisher needs beyond `store.items.list_items`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from publisher.store import Store
from publisher.store.editions import NOT_REACHED
from publisher.store.models import EditionRow, ItemRow
from publisher.store.state import load_publish_state, save_publish_state

__all__ = ["SentEdition", "StoredBuildState", "content_signature", "sent_editions"]


@dataclass(frozen=True)
class SentEdition:
    campaign: str
    number: int
    subject: str
    preheader: str
    sent_at: datetime  # aware UTC; composed_at when a sent edition has no sent_at


class StoredBuildState:
    """The feed builder's memory between builds (publish.state.BuildState), kept in the
    store's publish_state table instead of a file in the published feeds/ folder."""

    NAME = "feeds"

    def __init__(self, store: Store, *, now: datetime) -> None:
        self.store = store
        self.now = now

    def load(self) -> dict:
        return load_publish_state(self.store, self.NAME)

    def save(self, state: dict) -> None:
        save_publish_state(self.store, self.NAME, state, now=self.now)


def sent_editions(store: Store, campaign: str) -> list[SentEdition]:
    """A campaign's editions that reached someone, newest first: never drafts, never an
    edition whose send failed for everyone or that had nobody to go to (sent_at is set
    only when a send reached someone)."""
    query = (
        select(EditionRow)
        .where(EditionRow.campaign == campaign)
        .where(EditionRow.sent_at.is_not(None), EditionRow.status.not_in(NOT_REACHED))
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


def content_signature(store: Store, campaigns: set[str]) -> str:
    """A digest of everything feeds are made from (every item's id and content hash and
    staff's topics, the campaigns' sent editions): equal signatures mean the feeds need no
    rebuild. Reads short columns instead of whole items, so it costs a fraction of
    `list_items`."""
    digest = hashlib.sha256()
    with store.session() as session:
        for item_id, content_hash, override in session.execute(
            select(ItemRow.id, ItemRow.content_hash, ItemRow.topics_override)
            .where(ItemRow.retired_at.is_(None))
            .order_by(ItemRow.id)
        ):
            # staff's topics change which topic feeds carry the item (the content hash is
            # of the source's copy)
            topics = "" if override is None else f"\x1f{override}"
            digest.update(f"{item_id}\x1f{content_hash}{topics}\x1e".encode())
        if campaigns:
            editions = select(
                EditionRow.campaign,
                EditionRow.number,
                EditionRow.subject,
                EditionRow.preheader,
                EditionRow.status,
                EditionRow.sent_at,
                EditionRow.composed_at,
            ).where(EditionRow.campaign.in_(sorted(campaigns)))
            ordered = editions.order_by(EditionRow.campaign, EditionRow.number)
            for row in session.execute(ordered):
                digest.update(("\x1f".join(map(str, row)) + "\x1e").encode())
    return digest.hexdigest()
