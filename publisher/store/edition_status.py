"""An edition's status as its sends start and finish: a finished send's ledger tallied
(publisher.store.tallies) and, the first time it reached anyone, `edition.sent` (or
`broadcast.sent`) written to the webhook outbox in the same transaction. The names are on
the surface as `publisher.store.ledger`'s (re-exported there)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from publisher.store import Store, outbox, tallies
from publisher.store.models import BroadcastRow, DeliveryRow, EditionRow

# the names are publisher.store.ledger's (its __all__), not this module's own
__all__: list[str] = []


def set_edition_status(
    store: Store, edition_id: int, status: str, *, sent_at: datetime | None = None
) -> None:
    values: dict[str, object] = {"status": status}
    if sent_at is not None:
        values["sent_at"] = sent_at
    with store.session() as session:
        session.execute(update(EditionRow).where(EditionRow.id == edition_id).values(**values))
        counted = None
        if status == "sending":
            tallies.forget(session, edition_id)
        else:  # a send finished: what the staff pages show until the next one starts
            counted = _tally(session, edition_id)
        if sent_at is not None:  # the first time it reached anyone: reported once
            _edition_sent(session, edition_id, status, sent_at, counted)


def _tally(session: Session, edition_id: int) -> dict[str, int] | None:
    """Count the finished edition's ledger once and keep it (None: not tallied)."""
    campaign = session.scalar(select(EditionRow.campaign).where(EditionRow.id == edition_id))
    if campaign is None or campaign.startswith("~"):  # see publisher.store.tallies
        return None
    counts = _counts_by_status(session, edition_id)
    tallies.write(session, edition_id, counts)
    return counts


def _edition_sent(
    session: Session, edition_id: int, status: str, now: datetime, counted: dict[str, int] | None
) -> None:
    """edition.sent with the ledger's counts (`counted`: just counted, else counted here),
    in the transaction that marks it sent."""
    edition = session.get(EditionRow, edition_id)
    if edition is None or edition.campaign.startswith("~"):  # the welcome, a broadcast
        broadcast = session.scalar(
            select(BroadcastRow).where(BroadcastRow.edition_id == edition_id)
        )
        if broadcast is not None:  # a broadcast's edition reports as the broadcast
            counts = _counts_by_status(session, edition_id)
            subject = broadcast.subject
            outbox.broadcast_sent(session, broadcast.id, now, subject=subject, counts=counts)
        return
    per_status = (
        counted if counted is not None else _counts_by_status(session, edition_id)
    ).items()
    data = {
        "edition": {
            "id": edition.id,
            "campaign": edition.campaign,
            "number": edition.number,
            "subject": edition.subject,
            "status": status,
        },
        "counts": dict(per_status),
    }
    outbox.enqueue(session, "edition.sent", data, now, ordering_key=f"edition:{edition_id}")


def _counts_by_status(session: Session, edition_id: int) -> dict[str, int]:
    rows = session.execute(
        select(DeliveryRow.status, func.count())
        .where(DeliveryRow.edition_id == edition_id)
        .group_by(DeliveryRow.status)
    ).all()
    return {str(name): int(n) for name, n in rows}
