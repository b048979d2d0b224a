"""Scheduling state in the store: pause/resume (`campaign_state`) and what happened to each
slot (`schedule_slots`).

A daemon *claims* a slot before running it (an insert under a unique constraint), so of
several daemons on one store, on one host or many, only one runs a slot. A claim is a lease:
`owner` (host:pid) and `lease_until` (epoch seconds, `now` + the lease), renewed by the
running daemon's heartbeat (`renew_slot`) while it composes and sends, cleared when the slot
is finished. Another daemon takes a running claim over when its lease has lapsed, or at once
when its owner is a process of this host that no longer exists; the takeover is one
conditional UPDATE on the state the claimer read, so of two daemons taking over, one wins.

Claims written before leases (`lease_until` NULL: a daemon of an older version, in the middle
of a send during an upgrade) keep the old rule: taken over when the owner is gone, or when
neither the slot nor the delivery ledger of its edition changed for `stale_after` (2 h; a
long send writes ledger rows batch after batch). Every statement runs in its own short
transaction: SQLite allows one writer at a time and several daemons share the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from publisher.store import Store, dialect, leases
from publisher.store.leases import DEFAULT_LEASE
from publisher.store.models import CampaignStateRow, DeliveryRow, EditionRow, ScheduleSlotRow

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_STALE_AFTER",
    "FINAL",
    "LastEdition",
    "SlotRecord",
    "claim_slot",
    "finish_slot",
    "get_slot",
    "has_edition",
    "last_edition",
    "last_progress",
    "last_slot",
    "paused_campaigns",
    "record_slots",
    "renew_slot",
    "set_paused",
    "slot_records",
    "take_over",
    "unfinished_slots",
    "watched_since",
]

# Outcomes that end a slot for good; 'running' (claimed), 'failed' and 'held' (its edition
# waits for approval, issue 21) may be run again.
FINAL = frozenset({"sent", "skipped", "paused", "missed", "coalesced"})
DEFAULT_STALE_AFTER = timedelta(hours=2)  # claims without a lease only (see above)


@dataclass(frozen=True)
class SlotRecord:
    campaign: str
    slot: datetime
    status: str
    owner: str | None
    edition_id: int | None
    detail: str
    updated_at: datetime
    lease_until: float | None = None  # epoch seconds; None: finished, or an old claim
    id: int = 0


@dataclass(frozen=True)
class LastEdition:
    number: int
    slot: datetime | None
    status: str
    composed_at: datetime
    sent_at: datetime | None


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
    lease: timedelta | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> bool:
    """Take the slot for this process until `now + lease`; False if it is finished or another
    daemon holds it. Without `lease` the claim is of the kind written before leases (the
    daemon always passes one; the tests of the old rule do not)."""
    until = leases.until(now, lease)
    try:
        with store.session() as session:
            session.add(
                ScheduleSlotRow(
                    campaign=campaign,
                    slot=slot,
                    status="running",
                    owner=owner,
                    updated_at=now,
                    lease_until=until,
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
    return take_over(store, record, owner=owner, now=now, lease=lease)


def take_over(
    store: Store, record: SlotRecord, *, owner: str, now: datetime, lease: timedelta | None
) -> bool:
    """Claim a slot from the state `record` a claimer read: one conditional UPDATE, so when
    several daemons read the same lapsed claim, exactly one of them takes it."""
    row = ScheduleSlotRow
    with store.session() as session:
        result = session.execute(
            update(row)
            .where(
                row.id == record.id,
                row.status == record.status,
                row.owner == record.owner,  # None compiles to IS NULL
                row.lease_until == record.lease_until,
                row.updated_at == record.updated_at,
            )
            .values(
                status="running", owner=owner, updated_at=now, lease_until=leases.until(now, lease)
            )
        )
        return dialect.rowcount(result) == 1


def renew_slot(
    store: Store, campaign: str, slot: datetime, *, owner: str, now: datetime, lease: timedelta
) -> bool:
    """The heartbeat of a running slot: its lease now lasts until `now + lease`. False when
    the claim is no longer this owner's (its lease lapsed and another daemon took it over)."""
    row = ScheduleSlotRow
    with store.session() as session:
        result = session.execute(
            update(row)
            .where(
                row.campaign == campaign,
                row.slot == slot,
                row.owner == owner,
                row.status == "running",
            )
            .values(lease_until=leases.until(now, lease))
        )
        return dialect.rowcount(result) == 1


def _claimable(
    store: Store, record: SlotRecord, *, owner: str, now: datetime, stale_after: timedelta
) -> bool:
    if record.status in FINAL:
        return False
    if record.status in ("failed", "held") or record.owner == owner:
        return True
    if leases.lapsed(record.owner, record.lease_until, now=now):
        return True
    if record.lease_until is not None:  # a renewed lease holds however long the send takes
        return False
    if now - record.updated_at <= stale_after:  # a claim from before leases: the old rule
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


def finish_slot(
    store: Store,
    campaign: str,
    slot: datetime,
    status: str,
    *,
    now: datetime,
    edition_id: int | None = None,
    detail: str = "",
    owner: str | None = None,
) -> bool:
    """Record the slot's outcome and clear its lease. With `owner`, only while the claim is
    still that owner's: a daemon whose slot was taken over leaves the outcome to the new
    owner. False when nothing was written."""
    row = ScheduleSlotRow
    where = [row.campaign == campaign, row.slot == slot]
    if owner is not None:
        where.append(row.owner == owner)
    with store.session() as session:
        result = session.execute(
            update(row)
            .where(*where)
            .values(
                status=status,
                edition_id=edition_id,
                detail=detail,
                updated_at=now,
                lease_until=None,
            )
        )
        return dialect.rowcount(result) >= 1


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
    failed: bool = True,
) -> list[datetime]:
    """Slots a crashed or failed run left behind, oldest first: resumed on start. With
    `failed=False` only the running claims another daemon left (lease lapsed, owner gone):
    what a running daemon takes over (a failed slot waits for the next start)."""
    statuses = ["running", "failed", "held"] if failed else ["running"]
    with store.session() as session:
        rows = session.scalars(
            select(ScheduleSlotRow)
            .where(
                ScheduleSlotRow.campaign == campaign,
                ScheduleSlotRow.status.in_(statuses),
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
        lease_until=row.lease_until,
        id=row.id,
    )


def _aware(value: datetime) -> datetime:
    """func.max() bypasses the column type on SQLite: make sure the time is UTC-aware."""
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
