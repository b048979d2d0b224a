"""Edition tallies: an edition's delivery-ledger rows per status, written when a send of
it finishes and deleted when one starts (publisher.store.ledger), so the staff pages read
ten small rows instead of counting a quarter of a million ledger rows per edition. The
ledger stays the truth: an edition without a tally, or with rows still in transit (another
process sending), is counted. Welcome and broadcast editions (campaign "~...") change
outside a send and are always counted."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from publisher.store import Store
from publisher.store.models import DeliveryRow, EditionTallyRow

__all__ = ["edition_counts"]

IN_TRANSIT = ("pending", "inflight", "requested")  # rows a send may still change


def count_ledger(session: Session, edition_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {i: {} for i in edition_ids}
    if not edition_ids:
        return out
    query = (
        select(DeliveryRow.edition_id, DeliveryRow.status, func.count())
        .where(DeliveryRow.edition_id.in_(list(edition_ids)))
        .group_by(DeliveryRow.edition_id, DeliveryRow.status)
    )
    for edition_id, status, count in session.execute(query):
        out[edition_id][str(status)] = int(count)
    return out


def forget(session: Session, edition_id: int) -> None:
    """A send starts: the ledger is about to change."""
    session.execute(delete(EditionTallyRow).where(EditionTallyRow.edition_id == edition_id))


def write(session: Session, edition_id: int, counts: dict[str, int]) -> None:
    """A send finished: keep its counts (`counts`: the ledger per status, just counted)."""
    forget(session, edition_id)
    rows = [{"edition_id": edition_id, "status": s, "count": n} for s, n in counts.items()]
    if rows:
        session.execute(insert(EditionTallyRow), rows)


def edition_counts(store: Store, edition_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Ledger rows per status of each edition: its tally when it has one and no row is in
    transit, else counted; one session, at most three statements."""
    ids = list(dict.fromkeys(edition_ids))
    if not ids:
        return {}
    with store.session() as session:
        kept: dict[int, dict[str, int]] = {}
        for edition_id, status, count in session.execute(
            select(EditionTallyRow.edition_id, EditionTallyRow.status, EditionTallyRow.count)
            .where(EditionTallyRow.edition_id.in_(ids))
        ):  # fmt: skip
            kept.setdefault(edition_id, {})[status] = count
        if kept:  # rows in transit: a send is running (perhaps in another process)
            moving = session.scalars(
                select(DeliveryRow.edition_id)
                .where(DeliveryRow.edition_id.in_(list(kept)))
                .where(DeliveryRow.status.in_(IN_TRANSIT))
                .distinct()
            )
            for edition_id in moving:
                kept.pop(edition_id, None)
        counted = count_ledger(session, [i for i in ids if i not in kept])
    return {i: kept.get(i) or counted.get(i, {}) for i in ids}
