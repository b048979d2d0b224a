"""An editor's choices for each campaign's next edition: a note, pinned and excluded items,
the order inside sections and a one-time subject, with who changed them last and when.

The store only keeps them; what they mean is publisher/compose/curation.py's, and how a
change is made (pinning un-excludes...) is the caller's, given as a function of the old
choices. Composing an edition records its choices in the edition and clears them here
(publisher.store.editions.save_edition), only if nobody changed them meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from publisher.store import Store
from publisher.store.models import CurationRow

__all__ = ["Choices", "SavedCuration", "change_curation", "clear_curation", "get_curation"]


@dataclass(frozen=True)
class Choices:
    """What an editor chose (item ids for pinned, excluded and order)."""

    note: str = ""
    pinned: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    subject: str = ""


@dataclass(frozen=True)
class SavedCuration:
    """A campaign's stored choices; revision 0, no one and no time when there are none."""

    campaign: str
    choices: Choices = Choices()
    revision: int = 0
    changed_by: str = ""
    changed_at: datetime | None = None

    def record(self) -> dict[str, object]:
        """As kept in the edition composed with it (JSON)."""
        when = self.changed_at.isoformat() if self.changed_at else None
        return {
            **asdict(self.choices),
            "revision": self.revision,
            "changed_by": self.changed_by,
            "changed_at": when,
        }


def _saved(row: CurationRow) -> SavedCuration:
    choices = Choices(
        note=row.note,
        pinned=tuple(row.pinned),
        excluded=tuple(row.excluded),
        order=tuple(row.item_order),
        subject=row.subject,
    )
    return SavedCuration(row.campaign, choices, row.revision, row.changed_by, row.changed_at)


def get_curation(store: Store, campaign: str) -> SavedCuration:
    """The campaign's choices for its next edition (empty when there are none)."""
    with store.session() as session:
        row = session.get(CurationRow, campaign)
        return SavedCuration(campaign) if row is None else _saved(row)


def change_curation(
    store: Store,
    campaign: str,
    change: Callable[[Choices], Choices],
    *,
    by: str,
    now: datetime,
) -> SavedCuration:
    """Apply `change` to the campaign's choices in one transaction (the row locked on
    PostgreSQL, so two editors' changes both count); a new revision, by `by` at `now`."""
    for attempt in range(2):
        try:
            with store.session() as session:
                query = select(CurationRow).where(CurationRow.campaign == campaign)
                row = session.scalars(query.with_for_update()).first()
                if row is None:
                    row = CurationRow(campaign=campaign, revision=0)
                    row.pinned, row.excluded, row.item_order = [], [], []
                    row.note, row.subject = "", ""
                    session.add(row)
                new = change(_saved(row).choices if row.revision else Choices())
                row.note, row.subject = new.note, new.subject
                row.pinned, row.excluded = list(new.pinned), list(new.excluded)
                row.item_order = list(new.order)
                row.revision, row.changed_by, row.changed_at = row.revision + 1, by[:320], now
                session.flush()
                return _saved(row)
        except IntegrityError:  # another editor made the first choice at the same moment
            if attempt:
                raise
    raise AssertionError("unreachable")


def clear_curation(store: Store, campaign: str, revision: int | None = None) -> bool:
    """Forget the campaign's choices (only `revision` of them, when given: a newer change
    stays); whether any were forgotten."""
    query = delete(CurationRow).where(CurationRow.campaign == campaign)
    if revision is not None:
        query = query.where(CurationRow.revision == revision)
    with store.session() as session:
        return bool(session.execute(query).rowcount)  # type: ignore[attr-defined]
