"""One slot of a campaign skipped or moved by staff (`slot_overrides`), once: the cadence
stays in schedules.yaml. What an override means for the daemon and the overview is decided
in publisher/schedule/steering.py; the store only keeps them (one per campaign and slot)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import delete, or_, select

from publisher.store import Store
from publisher.store.models import SlotOverrideRow

__all__ = [
    "Action",
    "SlotOverride",
    "clear_override",
    "get_override",
    "overrides",
    "set_override",
]

Action = Literal["skip", "move"]


@dataclass(frozen=True)
class SlotOverride:
    campaign: str
    slot: datetime  # the slot's own time (UTC): its identity
    action: str  # 'skip' | 'move'
    moved_to: datetime | None  # UTC, for 'move'
    by: str
    at: datetime

    @property
    def runs_at(self) -> datetime | None:
        """When the slot runs: its new time, its own, or never (skipped)."""
        if self.action == "skip":
            return None
        return self.moved_to or self.slot


def set_override(
    store: Store,
    campaign: str,
    slot: datetime,
    action: Action,
    *,
    by: str,
    now: datetime,
    moved_to: datetime | None = None,
) -> SlotOverride:
    """Skip or move `slot`, replacing an earlier override of the same slot (in one
    transaction)."""
    if (action == "move") != (moved_to is not None):
        raise ValueError("a move needs moved_to; a skip takes none")
    with store.session() as session:
        session.execute(
            delete(SlotOverrideRow).where(
                SlotOverrideRow.campaign == campaign, SlotOverrideRow.slot == slot
            )
        )
        session.flush()
        row = SlotOverrideRow(
            campaign=campaign, slot=slot, action=action, moved_to=moved_to, by=by, at=now
        )
        session.add(row)
        session.flush()
        return _override(row)


def clear_override(store: Store, campaign: str, slot: datetime) -> SlotOverride | None:
    """Undo the override of `slot`; returns what was undone (None: there was none)."""
    with store.session() as session:
        row = session.scalar(
            select(SlotOverrideRow).where(
                SlotOverrideRow.campaign == campaign, SlotOverrideRow.slot == slot
            )
        )
        if row is None:
            return None
        found = _override(row)
        session.delete(row)
        return found


def get_override(store: Store, campaign: str, slot: datetime) -> SlotOverride | None:
    with store.session() as session:
        row = session.scalar(
            select(SlotOverrideRow).where(
                SlotOverrideRow.campaign == campaign, SlotOverrideRow.slot == slot
            )
        )
        return _override(row) if row else None


def overrides(store: Store, campaign: str, *, after: datetime) -> list[SlotOverride]:
    """The campaign's overrides of slots after `after`, or moved to a time after it; by slot."""
    row = SlotOverrideRow
    with store.session() as session:
        rows = session.scalars(
            select(row)
            .where(row.campaign == campaign, or_(row.slot > after, row.moved_to > after))
            .order_by(row.slot)
        )
        return [_override(r) for r in rows]


def _override(row: SlotOverrideRow) -> SlotOverride:
    return SlotOverride(
        campaign=row.campaign,
        slot=_aware(row.slot),
        action=row.action,
        moved_to=_aware(row.moved_to) if row.moved_to else None,
        by=row.by,
        at=_aware(row.at),
    )


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
