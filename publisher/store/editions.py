"""Editions in the store: immutable numbered records of what a campaign sent.

(campaign, slot) and (campaign, number) are unique, so a retry, a restart or a second daemon
composing the same scheduled slot finds the existing edition instead of creating another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from publisher.errors import StoreError
from publisher.items import Item
from publisher.store import Store
from publisher.store.items import row_to_item
from publisher.store.models import (
    CurationRow,
    DeliveryRow,
    EditionItemRow,
    EditionRow,
    ItemRow,
)

__all__ = [
    "NOT_REACHED",
    "EditionHistory",
    "EditionSummary",
    "NewEdition",
    "StoredEdition",
    "campaign_history",
    "edition_item_list",
    "find_edition_by_slot",
    "get_edition",
    "list_editions",
    "newest_edition",
    "save_edition",
]


@dataclass(frozen=True)
class EditionHistory:
    """A campaign's earlier editions as compose needs them (publisher.compose.edition.History)."""

    previous_at: datetime | None = None  # when the previous edition was composed
    carried: frozenset[str] = frozenset()  # item ids any earlier edition carried
    next_number: int = 1


@dataclass(frozen=True)
class NewEdition:
    campaign: str
    number: int
    slot: datetime | None
    composed_at: datetime
    subject: str
    preheader: str
    html: str
    text: str
    placements: list[tuple[str, int, str]]  # (section, position, item id)
    # the editor's choices it was composed with (publisher.store.curation.SavedCuration's
    # record()); saving clears that revision of the campaign's choices in the same transaction
    curation: dict | None = None


@dataclass(frozen=True)
class StoredEdition:
    id: int
    campaign: str
    number: int
    slot: datetime | None
    composed_at: datetime
    subject: str
    preheader: str
    html: str
    text: str
    status: str
    sent_at: datetime | None
    item_count: int
    curation: dict | None = None  # the editor's choices it was composed with, if any


@dataclass(frozen=True)
class EditionSummary:
    id: int
    campaign: str
    number: int
    composed_at: datetime
    subject: str
    status: str
    item_count: int
    recipients: int  # reached: sent + uncertain (assumed sent)
    sent: int = 0
    uncertain: int = 0
    failed: int = 0  # failed or bounced
    skipped: int = 0
    uncertain_batches: tuple[int, ...] = ()  # batch numbers (`send --resend-batch N`)


NOT_REACHED = ("failed", "empty")  # editions that reached nobody: never listed publicly


def campaign_history(store: Store, campaign: str) -> EditionHistory:
    """Previous edition time, every item id already carried and the next edition number."""
    with store.session() as session:
        last = session.execute(
            select(EditionRow.composed_at, EditionRow.number)
            .where(EditionRow.campaign == campaign)
            .order_by(EditionRow.number.desc())
            .limit(1)
        ).first()
        carried = session.scalars(
            select(EditionItemRow.item_id)
            .join(EditionRow, EditionRow.id == EditionItemRow.edition_id)
            .where(EditionRow.campaign == campaign)
        ).all()
    return EditionHistory(
        previous_at=last.composed_at if last else None,
        carried=frozenset(carried),
        next_number=(last.number + 1) if last else 1,
    )


def save_edition(store: Store, edition: NewEdition) -> tuple[StoredEdition, bool]:
    """Insert the edition and its items; (stored, True). A slot taken already: (existing, False)."""
    try:
        with store.session() as session:
            row = EditionRow(
                campaign=edition.campaign,
                number=edition.number,
                slot=edition.slot,
                composed_at=edition.composed_at,
                subject=edition.subject,
                preheader=edition.preheader,
                html=edition.html,
                text=edition.text,
                status="composed",
                curation=edition.curation,
            )
            session.add(row)
            session.flush()
            if edition.curation and edition.curation.get("revision"):
                session.execute(
                    delete(CurationRow).where(
                        CurationRow.campaign == edition.campaign,
                        CurationRow.revision == edition.curation["revision"],
                    )
                )
            for section, position, item_id in edition.placements:
                session.add(
                    EditionItemRow(
                        edition_id=row.id, item_id=item_id, section=section, position=position
                    )
                )
            edition_id = row.id
    except IntegrityError:
        existing = find_edition_by_slot(store, edition.campaign, edition.slot)
        if existing is None:
            raise StoreError(
                f"{edition.campaign}: edition {edition.number} was stored concurrently; "
                "compose again"
            ) from None
        return existing, False
    stored = get_edition(store, edition_id)
    assert stored is not None
    return stored, True


def _to_stored(row: EditionRow, item_count: int) -> StoredEdition:
    return StoredEdition(
        id=row.id,
        campaign=row.campaign,
        number=row.number,
        slot=row.slot,
        composed_at=row.composed_at,
        subject=row.subject,
        preheader=row.preheader,
        html=row.html,
        text=row.text,
        status=row.status,
        sent_at=row.sent_at,
        item_count=item_count,
        curation=row.curation,
    )


def _item_count(session, edition_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(EditionItemRow)
            .where(EditionItemRow.edition_id == edition_id)
        )
        or 0
    )


def get_edition(store: Store, edition_id: int) -> StoredEdition | None:
    with store.session() as session:
        row = session.get(EditionRow, edition_id)
        return None if row is None else _to_stored(row, _item_count(session, row.id))


def newest_edition(store: Store, campaign: str) -> StoredEdition | None:
    """The campaign's edition with the highest number."""
    query = (
        select(EditionRow.id)
        .where(EditionRow.campaign == campaign)
        .order_by(EditionRow.number.desc())
        .limit(1)
    )
    with store.session() as session:
        newest = session.scalar(query)
    return None if newest is None else get_edition(store, newest)


def find_edition_by_slot(
    store: Store, campaign: str, slot: datetime | None
) -> StoredEdition | None:
    if slot is None:
        return None
    with store.session() as session:
        row = session.scalars(
            select(EditionRow).where(EditionRow.campaign == campaign, EditionRow.slot == slot)
        ).first()
        return None if row is None else _to_stored(row, _item_count(session, row.id))


def list_editions(store: Store, campaign: str | None = None) -> list[EditionSummary]:
    """Editions newest first, with item counts and their ledger: sent, uncertain (counted
    as reached, listed apart), failed or bounced, skipped, and the uncertain batches."""
    items = (
        select(EditionItemRow.edition_id, func.count().label("n"))
        .group_by(EditionItemRow.edition_id)
        .subquery()
    )
    query = (
        select(EditionRow, items.c.n)
        .outerjoin(items, items.c.edition_id == EditionRow.id)
        .order_by(EditionRow.campaign, EditionRow.number.desc())
    )
    if campaign:
        query = query.where(EditionRow.campaign == campaign)
    ledger_query = select(
        DeliveryRow.edition_id, DeliveryRow.status, DeliveryRow.batch, func.count()
    ).group_by(DeliveryRow.edition_id, DeliveryRow.status, DeliveryRow.batch)
    with store.session() as session:
        counts: dict[int, dict[str, int]] = {}
        uncertain: dict[int, list[int]] = {}
        for edition_id, status, batch, n in session.execute(ledger_query):
            per = counts.setdefault(edition_id, {})
            per[status] = per.get(status, 0) + n
            if status == "uncertain":
                uncertain.setdefault(edition_id, []).append(batch or 0)
        rows = [(cast(EditionRow, r), cast("int | None", n)) for r, n in session.execute(query)]
        return [
            _summary(row, n_items or 0, counts.get(row.id, {}), uncertain) for row, n_items in rows
        ]


def _summary(
    row: EditionRow, n_items: int, c: dict[str, int], uncertain: dict[int, list[int]]
) -> EditionSummary:
    return EditionSummary(
        id=row.id,
        campaign=row.campaign,
        number=row.number,
        composed_at=row.composed_at,
        subject=row.subject,
        status=row.status,
        item_count=n_items,
        recipients=c.get("sent", 0) + c.get("uncertain", 0),
        sent=c.get("sent", 0),
        uncertain=c.get("uncertain", 0),
        failed=c.get("failed", 0) + c.get("bounced", 0),
        skipped=c.get("skipped", 0),
        uncertain_batches=tuple(sorted(uncertain.get(row.id, []))),
    )


def edition_item_list(store: Store, edition_id: int) -> list[tuple[str, Item]]:
    """(section, Item) of an edition in reading order (items since deleted are left out)."""
    with store.session() as session:
        rows = session.execute(
            select(EditionItemRow.section, ItemRow)
            .join(ItemRow, ItemRow.id == EditionItemRow.item_id)
            .where(EditionItemRow.edition_id == edition_id)
            .order_by(EditionItemRow.position)
        ).all()
        return [(section, row_to_item(item)) for section, item in rows]
