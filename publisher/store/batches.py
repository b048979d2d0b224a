"""Batches of an edition's send (table `delivery_batches`): what exactly-once mode needs to
cancel and resend a batch of unknown outcome, and what staff need to resend one uncertain
batch (`publisher send CAMPAIGN --resend-batch N`). Rows of `deliveries` carry the batch
number; see publisher.store.ledger for their states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from publisher.store import Store
from publisher.store.ledger import PENDING, REQUESTED, UNCERTAIN, _batch_status, _move
from publisher.store.models import DeliveryBatchRow, DeliveryRow

__all__ = [
    "BatchInfo",
    "cancelled",
    "cleared",
    "open_cancellations",
    "resend_batch",
    "too_late",
    "uncertain_batches",
    "unknown_batches",
]


@dataclass(frozen=True)
class BatchInfo:
    edition_id: int
    number: int
    provider_id: str
    send_at: datetime


def unknown_batches(store: Store, edition_id: int) -> list[BatchInfo]:
    """Batches written (or about to be) under a provider batch id whose answer was never
    recorded: the ones exactly-once mode cancels and sends again."""
    table = DeliveryBatchRow
    query = select(table.edition_id, table.number, table.provider_id, table.send_at).where(
        table.edition_id == edition_id,
        table.status == REQUESTED,
        table.provider_id.is_not(None),
        table.send_at.is_not(None),
    )
    with store.session() as session:
        rows = session.execute(query.order_by(table.number))
        return [BatchInfo(*row) for row in rows]  # type: ignore[arg-type]  # non-null here


def cancelled(store: Store, batch: BatchInfo, *, now: datetime) -> int:
    """The provider cancelled the batch: its requested rows go back to pending (they are
    sent again under a new batch id). One transaction."""
    note = f"batch {batch.number} cancelled at the provider ({batch.provider_id}); sent again"
    with store.session() as session:
        moved = _move(
            session,
            batch.edition_id,
            REQUESTED,
            PENDING,
            now,
            where=[DeliveryRow.batch == batch.number],
        )
        _batch_status(session.connection(), batch.edition_id, batch.number, "cancelled", now)
        session.execute(
            update(DeliveryBatchRow)
            .where(
                DeliveryBatchRow.edition_id == batch.edition_id,
                DeliveryBatchRow.number == batch.number,
            )
            .values(detail=note)
        )
    return moved


def too_late(store: Store, batch: BatchInfo, note: str, *, now: datetime) -> int:
    """Too late to cancel: the batch's requested rows become uncertain, with why."""
    with store.session() as session:
        moved = _move(
            session,
            batch.edition_id,
            REQUESTED,
            UNCERTAIN,
            now,
            error=note,
            where=[DeliveryRow.batch == batch.number],
        )
        _batch_status(
            session.connection(), batch.edition_id, batch.number, UNCERTAIN, now, detail=note
        )
    return moved


def open_cancellations(store: Store) -> list[BatchInfo]:
    """Cancellations the provider still holds (all editions: the limit is per account)."""
    table = DeliveryBatchRow
    query = select(table.edition_id, table.number, table.provider_id, table.send_at).where(
        table.status == "cancelled", table.cancel_cleared.is_(False)
    )
    with store.session() as session:
        return [BatchInfo(*row) for row in session.execute(query)]  # type: ignore[arg-type]


def cleared(store: Store, batch: BatchInfo, *, now: datetime) -> None:
    with store.session() as session:
        session.execute(
            update(DeliveryBatchRow)
            .where(
                DeliveryBatchRow.edition_id == batch.edition_id,
                DeliveryBatchRow.number == batch.number,
            )
            .values(cancel_cleared=True, updated_at=now)
        )


def uncertain_batches(store: Store, edition_id: int) -> dict[int, int]:
    """{batch number: uncertain recipients} of an edition."""
    query = (
        select(DeliveryRow.batch, func.count())
        .where(DeliveryRow.edition_id == edition_id, DeliveryRow.status == UNCERTAIN)
        .group_by(DeliveryRow.batch)
        .order_by(DeliveryRow.batch)
    )
    with store.session() as session:
        return {number or 0: n for number, n in session.execute(query)}


def resend_batch(store: Store, edition_id: int, number: int, *, now: datetime) -> int:
    """`--resend-batch N`: the uncertain rows of batch N go back to pending (staff checked
    the provider's activity feed: it never arrived)."""
    with store.session() as session:
        return _move(
            session, edition_id, UNCERTAIN, PENDING, now, where=[DeliveryRow.batch == number]
        )
