"""Scheduling state in the store: pause/resume (`campaign_state`) and what happened to each
slot (`schedule_slots`).

A daemon *claims* a slot before running it (an insert under a unique constraint), so of two
daemons on one store only one runs a slot; a claim left behind by a daemon that died is taken
over on the next start. A claim is stale when its owner is gone, or when neither the slot nor
the delivery ledger of the slot's edition changed for `stale_after` (2 h): a long send keeps
its slot alive by writing ledger rows batch after batch, so another daemon does not take it
over. Every statement runs in its own short transaction: SQLite allows one writer at a time
and two daemons share the file.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError

from publisher.store import Store
from publisher.store.models import CampaignStateRow, DeliveryRow, EditionRow, ScheduleSlotRow

# Outcomes that end a slot for good; 'running' (claimed) and 'failed' may be run again.
FINAL = frozenset({"sent", "skipped", "paused", "missed", "coalesced"})
DEFAULT_STALE_AFTER = timedelta(hours=2)


@dataclass(frozen=True)
class SlotRecord:
    campaign: str
    slot: datetime
    status: str
    owner: str | None
    edition_id: int | None
    detail: str
    updated_at: datetime


@dataclass(frozen=True)
class LastEdition:
    number: int
    slot: datetime | None
    status: str
    composed_at: datetime
    sent_at: datetime | None


def this_process() -> str:
    """The owner name of claims made by this process: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


# --- pause / resume -----------------------------------------------------------------------


def set_paused(store: Store, campaign: str, paused: bool, *, now: datetime) -> bool:
    """Persist pause/resume; returns the previous state."""
    with store.session() as session:
        row = session.get(CampaignStateRow, campaign)
        before = bool(row and row.paused)
        if row is None:
            row = CampaignStateRow(campaign=campaign)
            session.add(row)
        row.paused = paused
        row.updated_at = now
        return before


def paused_campaigns(store: Store) -> set[str]:
    with store.session() as session:
        rows = session.scalars(select(CampaignStateRow.campaign).where(CampaignStateRow.paused))
        return set(rows)


def watched_since(store: Store, campaign: str, *, now: datetime) -> datetime:
    """When a daemon first scheduled the campaign (set to `now` the first time)."""
    with store.session() as session:
        row = session.get(CampaignStateRow, campaign)
        if row is None:
            row = CampaignStateRow(campaign=campaign, paused=False, updated_at=now)
            session.add(row)
        if row.watched_since is None:
            row.watched_since = now
        return row.watched_since


# --- slots --------------------------------------------------------------------------------


def last_slot(store: Store, campaign: str) -> datetime | None:
    """The newest slot anything was recorded for: a slot row or an edition."""
    with store.session() as session:
        recorded = session.scalar(
            select(func.max(ScheduleSlotRow.slot)).where(ScheduleSlotRow.campaign == campaign)
        )
        edition = session.scalar(
            select(func.max(EditionRow.slot)).where(EditionRow.campaign == campaign)
        )
    found = [_aware(t) for t in (recorded, edition) if t is not None]
    return max(found) if found else None


def claim_slot(
    store: Store,
    campaign: str,
    slot: datetime,
    *,
    owner: str,
    now: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> bool:
    """Take the slot for this process; False if it is finished or another live daemon has it."""
    try:
        with store.session() as session:
            session.add(
                ScheduleSlotRow(
                    campaign=campaign, slot=slot, status="running", owner=owner, updated_at=now
                )
            )
        return True
    except IntegrityError:
        pass
    record = get_slot(store, campaign, slot)
    if record is None or not _claimable(
        store, record, owner=owner, now=now, stale_after=stale_after
    ):
        return False
    with store.session() as session:  # conditional: of two daemons taking over, one wins
        result = session.execute(
            update(ScheduleSlotRow)
            .where(
                ScheduleSlotRow.campaign == campaign,
                ScheduleSlotRow.slot == slot,
                ScheduleSlotRow.status == record.status,
                ScheduleSlotRow.updated_at == record.updated_at,
            )
            .values(status="running", owner=owner, updated_at=now)
        )
        assert isinstance(result, CursorResult)  # an UPDATE always gives a cursor result
        return result.rowcount == 1


def _claimable(
    store: Store, record: SlotRecord, *, owner: str, now: datetime, stale_after: timedelta
) -> bool:
    if record.status in FINAL:
        return False
    if record.status == "failed" or record.owner == owner or _owner_gone(record.owner):
        return True
    if now - record.updated_at <= stale_after:
        return False
    progress = last_progress(store, record.campaign, record.slot)
    return progress is None or now - progress > stale_after


def last_progress(store: Store, campaign: str, slot: datetime) -> datetime | None:
    """When the delivery ledger of the slot's edition last changed (a running send writes it
    batch after batch: its liveness); None if nothing was sent for the slot yet."""
    with store.session() as session:
        latest = session.scalar(
            select(func.max(DeliveryRow.updated_at))
            .join(EditionRow, EditionRow.id == DeliveryRow.edition_id)
            .where(EditionRow.campaign == campaign, EditionRow.slot == slot)
        )
    return _aware(latest) if latest is not None else None


def _owner_gone(owner: str | None) -> bool:
    """A claim made on this host by a process that no longer exists."""
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def finish_slot(
    store: Store,
    campaign: str,
    slot: datetime,
    status: str,
    *,
    now: datetime,
    edition_id: int | None = None,
    detail: str = "",
) -> None:
    with store.session() as session:
        session.execute(
            update(ScheduleSlotRow)
            .where(ScheduleSlotRow.campaign == campaign, ScheduleSlotRow.slot == slot)
            .values(status=status, edition_id=edition_id, detail=detail, updated_at=now)
        )


def record_slots(
    store: Store,
    campaign: str,
    slots: Iterable[datetime],
    status: str,
    *,
    now: datetime,
    detail: str = "",
) -> int:
    """Record slots that will not run (missed, paused...); existing records are kept."""
    written = 0
    for slot in slots:
        try:
            with store.session() as session:
                session.add(
                    ScheduleSlotRow(
                        campaign=campaign, slot=slot, status=status, detail=detail, updated_at=now
                    )
                )
            written += 1
        except IntegrityError:
            continue
    return written


def get_slot(store: Store, campaign: str, slot: datetime) -> SlotRecord | None:
    with store.session() as session:
        row = session.scalar(
            select(ScheduleSlotRow).where(
                ScheduleSlotRow.campaign == campaign, ScheduleSlotRow.slot == slot
            )
        )
        return _record(row) if row else None


def slot_records(store: Store, campaign: str, *, limit: int = 50) -> list[SlotRecord]:
    """The campaign's slot records, newest first."""
    with store.session() as session:
        rows = session.scalars(
            select(ScheduleSlotRow)
            .where(ScheduleSlotRow.campaign == campaign)
            .order_by(ScheduleSlotRow.slot.desc())
            .limit(limit)
        )
        return [_record(row) for row in rows]


def unfinished_slots(
    store: Store,
    campaign: str,
    *,
    owner: str,
    now: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> list[datetime]:
    """Slots a crashed or failed run left behind, oldest first: resumed on start."""
    with store.session() as session:
        rows = session.scalars(
            select(ScheduleSlotRow)
            .where(
                ScheduleSlotRow.campaign == campaign,
                ScheduleSlotRow.status.in_(["running", "failed"]),
            )
            .order_by(ScheduleSlotRow.slot)
        )
        records = [_record(row) for row in rows]
    return [
        r.slot
        for r in records
        if _claimable(store, r, owner=owner, now=now, stale_after=stale_after)
    ]


def has_edition(store: Store, campaign: str, slot: datetime) -> bool:
    with store.session() as session:
        found = session.scalar(
            select(EditionRow.id).where(EditionRow.campaign == campaign, EditionRow.slot == slot)
        )
        return found is not None


def last_edition(store: Store, campaign: str) -> LastEdition | None:
    with store.session() as session:
        row = session.scalar(
            select(EditionRow)
            .where(EditionRow.campaign == campaign)
            .order_by(EditionRow.number.desc())
            .limit(1)
        )
        if row is None:
            return None
        return LastEdition(row.number, row.slot, row.status, row.composed_at, row.sent_at)


def _record(row: ScheduleSlotRow) -> SlotRecord:
    return SlotRecord(
        campaign=row.campaign,
        slot=_aware(row.slot),
        status=row.status,
        owner=row.owner,
        edition_id=row.edition_id,
        detail=row.detail or "",
        updated_at=_aware(row.updated_at),
    )


def _aware(value: datetime) -> datetime:
    """func.max() bypasses the column type on SQLite: make sure the time is UTC-aware."""
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
