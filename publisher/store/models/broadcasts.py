"""Broadcast tables: broadcasts (action alerts), who may send, approval requests and
decisions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from publisher.store.models.base import Base, UTCDateTime


class BroadcastRow(Base):
    """A broadcast written in /admin (publisher/store/broadcasts.py). `version` grows with
    every change (compare-and-set); once sending, its content lives in the edition
    `edition_id` (campaign key "~broadcast", number = this id)."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str] = mapped_column(String(60))
    topics: Mapped[list] = mapped_column(JSON, default=list)
    exclude: Mapped[list] = mapped_column(JSON, default=list)
    body: Mapped[str] = mapped_column(Text, default="")
    items: Mapped[list] = mapped_column(JSON, default=list)
    cta_label: Mapped[str | None] = mapped_column(Text, nullable=True)
    cta_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(Integer)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    edition_id: Mapped[int | None] = mapped_column(
        ForeignKey("editions.id", ondelete="SET NULL"), nullable=True
    )
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # while sending: the process sending it (host:pid) and when its claim lapses (epoch
    # seconds) unless renewed (publisher/store/broadcast_leases.py, migration 0032)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class SendPermissionRow(Base):
    """An editor an owner allowed to send (owners always may): publisher/store/approvals.py."""

    __tablename__ = "send_permissions"

    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    granted_by: Mapped[str] = mapped_column(String(320))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApprovalRow(Base):
    """A request for, or a decision on, one version of a send: a broadcast (subject: its id)
    or a campaign's next edition (subject: the campaign, version: its selection's
    fingerprint). Status waiting, approved, refused or voided (an edit came after it)."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[str] = mapped_column(String(320), default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(320), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")


Index("ix_approvals_subject", ApprovalRow.kind, ApprovalRow.subject, ApprovalRow.id)
Index("ix_approvals_status", ApprovalRow.status, ApprovalRow.id)
