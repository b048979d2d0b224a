"""Schedule tables: campaign state (pause), what happened to each slot, staff's slot
overrides, heartbeats of running daemons and workers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from publisher.store.models.base import Base, UTCDateTime


class CampaignStateRow(Base):
    """Staff-controlled state of a campaign that outlives a process (pause/resume)."""

    __tablename__ = "campaign_state"

    campaign: Mapped[str] = mapped_column(String(200), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When a daemon first scheduled this campaign: catch-up never reaches further back.
    watched_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ScheduleSlotRow(Base):
    """What happened to one scheduled slot of a campaign: claimed by a daemon ('running'),
    'sent', 'skipped' (nothing new), 'paused', 'missed' (downtime beyond grace), 'coalesced'
    (an older missed slot folded into a newer one) or 'failed'. One row per (campaign, slot)."""

    __tablename__ = "schedule_slots"
    __table_args__ = (UniqueConstraint("campaign", "slot", name="uq_schedule_slots_campaign_slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign: Mapped[str] = mapped_column(String(200), index=True)
    slot: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    edition_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # a running claim lapses at this time (epoch seconds) unless its daemon renews it
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class SlotOverrideRow(Base):
    """A staff member's change to ONE slot of a campaign: 'skip' (it never sends) or 'move'
    (it runs at `moved_to` instead of its own time). The slot keeps its identity: its
    schedule_slots record and its edition are still keyed by the original `slot`."""

    __tablename__ = "slot_overrides"
    __table_args__ = (UniqueConstraint("campaign", "slot", name="uq_slot_overrides_campaign_slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign: Mapped[str] = mapped_column(String(200))
    slot: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(8))
    moved_to: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    by: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProcessHeartbeatRow(Base):
    """A running `publisher run` daemon or `publisher worker` as it last said it was alive
    (issue 21): renewed every 30 s, deleted on a clean stop; a killed one's row stays
    behind until it is a day old."""

    __tablename__ = "process_heartbeats"
    __table_args__ = (UniqueConstraint("host", "pid", "started"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))  # daemon, worker
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(40))
    started: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
