"""The delivery ledger and the work of a send: one row per (edition, subscriber),
provider batches, send work items under leases, the claimers' plan of the audience."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from publisher.store.models.base import Base, UTCDateTime


class DeliveryRow(Base):
    """The delivery ledger: one row per (edition, subscriber), written in batches."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id", name="uq_deliveries_edition_subscriber"),
        Index("ix_deliveries_edition_batch", "edition_id", "batch"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"))
    batch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# an edition's ledger by status then subscriber (the recipients list's keyset), and when each
# row was last written (the hourly chart, from the index alone); replaces 0018's
# ix_deliveries_edition_status, so the ledger's writes keep the same number of indexes
Index(
    "ix_deliveries_edition_recipient",
    DeliveryRow.edition_id,
    DeliveryRow.status,
    DeliveryRow.subscriber_id,
    DeliveryRow.updated_at,
)


class DeliveryBatchRow(Base):
    """One batch request of an edition: in exactly-once mode its provider batch id and
    delivery time (recorded before the request is written), and what became of it:
    'requested' (outcome unknown until answered), 'accepted', 'cancelled' (its recipients
    were sent again under a new batch), 'uncertain' (too late to cancel), 'refused'."""

    __tablename__ = "delivery_batches"
    __table_args__ = (
        UniqueConstraint("edition_id", "number", name="uq_delivery_batches_edition_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    provider_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    # the provider's cancellation was deleted after send_at (it frees one of its 10 slots)
    cancel_cleared: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SendWorkRow(Base):
    """One batch of an edition's send as a work item (publisher.store.work): `open` until
    its outcome is recorded, then `done`; a worker holds it under a lease (`holder`,
    `lease_until` in epoch seconds), renewed by its heartbeat and by every ledger write."""

    __tablename__ = "send_work"
    __table_args__ = (Index("ix_send_work_open", "status", "edition_id", "number"),)

    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(10))
    holder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    claims: Mapped[int] = mapped_column(Integer, default=0)
    # the subscriber ids the batch was cut from (its rows are written after the cut)
    first_id: Mapped[int] = mapped_column(Integer)
    last_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SendPlanRow(Base):
    """How far the claimers of an edition's send have read its audience (subscriber ids up
    to `after_id` are in batches), the number the next batch gets, and whether the audience
    is exhausted for this round (publisher.store.plan)."""

    __tablename__ = "send_plans"

    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    )
    after_id: Mapped[int] = mapped_column(Integer)
    next_number: Mapped[int] = mapped_column(Integer)
    complete: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
