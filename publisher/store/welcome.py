"""The welcome email's ledger: sent once per person, whatever happens.

Each version of the welcome (its subject, preheader, HTML and text as rendered) is stored
once as an edition of the reserved campaign key `WELCOME` (no configured campaign can be
named so: campaign names are slugs). A person's welcome is a delivery ledger row of such an
edition, inserted (`inflight`) before anything is sent: the row is the claim. The unique
(edition, subscriber) key refuses a second claim of the same version (confirm clicked twice,
two processes), and the claim transaction refuses a person who has a row in any welcome
version (the configuration changed between two confirmations). The row then moves through
the ledger's states like any digest recipient's (publisher.store.ledger: `requested` right
before the bytes are written, then `sent`, `failed` or `uncertain`); nothing here ever
sends a row again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from publisher.store import Store
from publisher.store.dialect import rowcount
from publisher.store.ledger import (
    FAILED,
    INFLIGHT,
    RECIPIENT_ATTEMPTS,
    REQUESTED,
    SENT,
    SKIPPED,
    UNCERTAIN,
)
from publisher.store.models import DeliveryRow, EditionRow, SubscriberRow

__all__ = [
    "WELCOME",
    "WelcomeCounts",
    "claim_welcome",
    "take_stale",
    "welcome_counts",
    "welcome_edition",
]

WELCOME = "~welcome"  # the editions' campaign key; "~" is never in a campaign's name


@dataclass(frozen=True)
class WelcomeCounts:
    sent: int = 0
    uncertain: int = 0  # no answer from the provider: may have arrived, never resent
    failed: int = 0  # refused (failed or bounced)
    sending: int = 0  # claimed, outcome not recorded yet (or the sender stopped)
    versions: int = 0  # how many different welcomes went out (configuration changes)
    last_sent_at: datetime | None = None


def welcome_edition(
    store: Store, *, subject: str, preheader: str, html: str, text: str, now: datetime
) -> int:
    """The id of the stored welcome with exactly this content, stored now if it is new. Its
    number is drawn from the content, so processes storing the same new version at once
    store it once (the unique (campaign, number) key; the loser finds the winner's)."""
    number = version_number(subject, preheader, html, text)
    found = _find_version(store, number)
    if found is not None:
        return found
    try:
        with store.session() as session:
            row = EditionRow(
                campaign=WELCOME,
                number=number,
                slot=None,
                composed_at=now,
                subject=subject,
                preheader=preheader,
                html=html,
                text=text,
                status="sending",  # open for as long as people confirm
            )
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        found = _find_version(store, number)
        if found is None:  # pragma: no cover - an integrity error of another kind
            raise
        return found


def version_number(subject: str, preheader: str, html: str, text: str) -> int:
    """28 bits of the content's SHA-256: the edition number of this welcome's version."""
    digest = hashlib.sha256("\x00".join((subject, preheader, html, text)).encode()).hexdigest()
    return int(digest[:7], 16)


def _find_version(store: Store, number: int) -> int | None:
    query = select(EditionRow.id).where(EditionRow.campaign == WELCOME, EditionRow.number == number)
    with store.session() as session:
        return session.scalar(query)


def _welcomed(subscriber_id: int) -> Select[int]:
    return (
        select(DeliveryRow.id)
        .join(EditionRow, EditionRow.id == DeliveryRow.edition_id)
        .where(EditionRow.campaign == WELCOME, DeliveryRow.subscriber_id == subscriber_id)
        .limit(1)
    )


def claim_welcome(store: Store, edition_id: int, subscriber_id: int, *, now: datetime) -> bool:
    """Claim the person's welcome: True when this call wrote the ledger row (`inflight`,
    batch = the subscriber id, so ledger.mark_range and ledger.finish_batch address it),
    False when the person has a welcome row already, in any version."""
    try:
        with store.session() as session:
            # A write first: claims of one person queue here (PostgreSQL: on their row;
            # SQLite: on the database's write lock) until the one before commits, so the
            # check below sees a concurrent claim, even of another version
            session.execute(
                update(SubscriberRow)
                .where(SubscriberRow.id == subscriber_id)
                .values(updated_at=SubscriberRow.updated_at)
            )
            if session.scalar(_welcomed(subscriber_id)) is not None:
                return False
            session.execute(
                insert(DeliveryRow).values(
                    edition_id=edition_id,
                    subscriber_id=subscriber_id,
                    batch=subscriber_id,
                    status=INFLIGHT,
                    attempts=1,
                    updated_at=now,
                )
            )
        return True
    except IntegrityError:  # the same version claimed concurrently: theirs
        return False


def welcome_counts(store: Store) -> WelcomeCounts:
    """Every welcome's ledger rows by outcome, across versions."""
    with store.session() as session:
        rows = session.execute(
            select(DeliveryRow.status, func.count(), func.max(DeliveryRow.updated_at))
            .join(EditionRow, EditionRow.id == DeliveryRow.edition_id)
            .where(EditionRow.campaign == WELCOME)
            .group_by(DeliveryRow.status)
        ).all()
        versions = session.scalar(
            select(func.count()).select_from(EditionRow).where(EditionRow.campaign == WELCOME)
        )
    by_status = {status: (count, last) for status, count, last in rows}

    def n(*statuses: str) -> int:
        return sum(by_status.get(s, (0, None))[0] for s in statuses)

    return WelcomeCounts(
        sent=n(SENT),
        uncertain=n(UNCERTAIN),
        failed=n(FAILED, "bounced"),
        sending=n(INFLIGHT, REQUESTED, "pending"),
        versions=versions or 0,
        last_sent_at=by_status.get(SENT, (0, None))[1],
    )


def take_stale(
    store: Store, *, before: datetime, now: datetime, limit: int = 100
) -> list[tuple[int, int]]:
    """Welcome rows whose sender stopped before recording an outcome (its process died),
    last touched before `before`: `requested` ones become `uncertain` (the bytes may have
    gone out: never resent); `inflight` ones (nothing was written) and `failed` ones with
    attempts left, of people still active, are taken over by this call and returned as
    (edition id, subscriber id) to be sent; those of people no longer active are `skipped`.
    A row is taken by one caller only (its attempts compared and counted up)."""
    welcome_rows = select(EditionRow.id).where(EditionRow.campaign == WELCOME)
    mine = (DeliveryRow.edition_id.in_(welcome_rows), DeliveryRow.updated_at < before)
    with store.session() as session:
        session.execute(
            update(DeliveryRow)
            .where(*mine, DeliveryRow.status == REQUESTED)
            .values(
                status=UNCERTAIN,
                updated_at=now,
                error="requested when its sender stopped; may have been accepted, assumed sent",
            )
        )
        left = session.execute(
            select(DeliveryRow.id, DeliveryRow.edition_id, DeliveryRow.subscriber_id,
                   DeliveryRow.status, DeliveryRow.attempts, SubscriberRow.status)
            .join(SubscriberRow, SubscriberRow.id == DeliveryRow.subscriber_id)
            .where(*mine, DeliveryRow.status.in_((INFLIGHT, FAILED)),
                   DeliveryRow.attempts < RECIPIENT_ATTEMPTS)
            .order_by(DeliveryRow.id)
            .limit(limit)
        ).all()  # fmt: skip
    taken = []
    for row_id, edition_id, subscriber_id, status, attempts, person in left:
        active = person == "active"
        values = (
            {"status": INFLIGHT, "attempts": attempts + 1, "error": None}
            if active
            else {"status": SKIPPED, "error": "no longer active"}
        )
        with store.session() as session:
            result = session.execute(
                update(DeliveryRow)
                .where(
                    DeliveryRow.id == row_id,
                    DeliveryRow.status == status,
                    DeliveryRow.attempts == attempts,
                )
                .values(updated_at=now, **values)
            )
            if rowcount(result) and active:
                taken.append((edition_id, subscriber_id))
    return taken
