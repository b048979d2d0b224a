"""Broadcasts: one-off emails (action alerts) written in /admin (issue 21).

A broadcast is a draft (name, subject, preheader, sender, audience, Markdown body, items, a
call to action) until it is sent. Every change names the version it started from: a stale
one is refused (BroadcastConflict, compare-and-set like publisher.store.posts). Sending
claims it (`claim_broadcast`: one process only, whoever started it: the daemon at its time,
staff, the CLI), composes it ONCE into an edition of the reserved campaign key `BROADCAST`
numbered by the broadcast's id (`broadcast_edition`), and from then on the edition and its
delivery ledger are what is sent, exactly as a digest edition is.

Who it reaches: publisher.store.broadcast_audience (its names are importable from here
too). While it is sent, its claim is a lease: publisher.store.broadcast_leases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from publisher.config.models import BROADCAST_CAMPAIGN
from publisher.errors import StoreError
from publisher.store import Store, leases
from publisher.store.broadcast_audience import (
    Audience,
    audience_count,
    exclude_followers,
    excluded,
)
from publisher.store.dialect import rowcount
from publisher.store.models import BroadcastRow, EditionRow
from publisher.support.slug import slugify

__all__ = [
    "BROADCAST",
    "EDITABLE",
    "STATUSES",
    "Audience",
    "Broadcast",
    "BroadcastConflict",
    "BroadcastDraft",
    "BroadcastLocked",
    "BroadcastNotFound",
    "audience_count",
    "broadcast_edition",
    "broadcast_for_edition",
    "cancel_broadcast",
    "claim_broadcast",
    "create_broadcast",
    "due_broadcasts",
    "exclude_followers",
    "excluded",
    "finish_broadcast",
    "get_broadcast",
    "list_broadcasts",
    "schedule_broadcast",
    "update_broadcast",
]

BROADCAST = BROADCAST_CAMPAIGN  # the editions' campaign key; "~" is never in a campaign's name
STATUSES = ("draft", "scheduled", "sending", "sent", "failed", "cancelled")
EDITABLE = ("draft", "scheduled")  # once sending, the edition is what goes out
CLAIMABLE = ("draft", "scheduled")


@dataclass(frozen=True)
class BroadcastDraft:
    name: str
    subject: str
    preheader: str
    sender: str
    audience: Audience
    body: str  # Markdown
    items: tuple[str, ...] = ()  # item ids (publisher.items.Item.id) shown under the body
    cta_label: str | None = None
    cta_url: str | None = None


@dataclass(frozen=True)
class Broadcast:
    id: int
    slug: str
    draft: BroadcastDraft
    status: str  # one of STATUSES
    version: int  # +1 on every change
    send_at: datetime | None
    edition_id: int | None
    created_by: str
    updated_by: str
    created_at: datetime
    updated_at: datetime
    owner: str | None = None  # while sending: the process sending it (host:pid)
    lease_until: float | None = None  # its claim lapses then (epoch seconds) unless renewed


class BroadcastNotFound(StoreError):
    """No broadcast with that id."""


class BroadcastConflict(StoreError):
    """A change from a stale version: someone changed the broadcast in between."""

    def __init__(self, current: Broadcast, started_from: int) -> None:
        super().__init__(
            f"broadcast {current.id} was changed by {current.updated_by} (version "
            f"{current.version}) after you opened version {started_from}"
        )
        self.current = current
        self.started_from = started_from


class BroadcastLocked(StoreError):
    """The broadcast cannot be changed in its status (it is sending or was sent)."""


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def create_broadcast(store: Store, draft: BroadcastDraft, *, by: str, now: datetime) -> Broadcast:
    """A new draft (version 1) with a slug of its own made from its name."""
    with store.session() as session:
        row = BroadcastRow(
            status="draft", version=1, created_by=by, created_at=now, slug=_slug(session, draft)
        )
        _fill(row, draft, by, now)
        session.add(row)
        session.flush()
        return _broadcast(row)


def update_broadcast(
    store: Store, broadcast_id: int, draft: BroadcastDraft, *, version: int, by: str, now: datetime
) -> Broadcast:
    """Save `draft` over version `version` (a scheduled one stays scheduled); raises
    BroadcastConflict (stale version), BroadcastLocked (sending or sent), BroadcastNotFound."""
    with store.session() as session:
        row = _claim(session, broadcast_id, version, EDITABLE)
        _fill(row, draft, by, now)
        return _broadcast(row)


def schedule_broadcast(
    store: Store, broadcast_id: int, send_at: datetime, *, version: int, by: str, now: datetime
) -> Broadcast:
    """To go at `send_at` (the daemon sends it then); a scheduled one is moved."""
    with store.session() as session:
        row = _claim(session, broadcast_id, version, EDITABLE)
        row.status, row.send_at = "scheduled", _utc(send_at)
        row.updated_by, row.updated_at = by, now
        return _broadcast(row)


def cancel_broadcast(store: Store, broadcast_id: int, *, by: str, now: datetime) -> Broadcast:
    """A scheduled broadcast back to a draft (its time forgotten); BroadcastLocked otherwise."""
    with store.session() as session:
        result = session.execute(
            update(BroadcastRow)
            .where(BroadcastRow.id == broadcast_id, BroadcastRow.status == "scheduled")
            .values(
                status="draft", send_at=None, version=BroadcastRow.version + 1,
                updated_by=by, updated_at=now,
            )
        )  # fmt: skip
        row = _row(session, broadcast_id)
        if rowcount(result) == 0:
            raise BroadcastLocked(f"broadcast {broadcast_id} is {row.status}, not scheduled")
        return _broadcast(row)


def claim_broadcast(
    store: Store,
    broadcast_id: int,
    *,
    version: int | None = None,
    by: str,
    now: datetime,
    owner: str | None = None,
    lease: timedelta | None = None,
) -> Broadcast | None:
    """Start sending: a draft or scheduled broadcast (of `version`, when given) becomes
    `sending`, in one statement, so of two processes (two daemons, the daemon and staff)
    exactly one gets it; None for the others (it is no longer draft/scheduled, or the
    version moved on). BroadcastNotFound when there is no such broadcast. The claim is
    `owner`'s until `now + lease` (renewed: publisher.store.broadcast_leases)."""
    query = update(BroadcastRow).where(
        BroadcastRow.id == broadcast_id, BroadcastRow.status.in_(CLAIMABLE)
    )
    if version is not None:
        query = query.where(BroadcastRow.version == version)
    with store.session() as session:
        values: dict[str, Any] = {"status": "sending", "updated_by": by, "updated_at": now}
        values |= {"owner": owner, "lease_until": leases.until(now, lease)}
        result = session.execute(query.values(version=BroadcastRow.version + 1, **values))
        row = _row(session, broadcast_id)
        return _broadcast(row) if rowcount(result) else None


def broadcast_edition(
    store: Store,
    broadcast_id: int,
    *,
    subject: str,
    preheader: str,
    html: str,
    text: str,
    now: datetime,
) -> int:
    """The id of the broadcast's edition (campaign BROADCAST, number = the broadcast's id),
    stored now with this content if it has none yet: composed once, whatever happens after
    (a resume sends the stored one)."""
    with store.session() as session:
        existing = _row(session, broadcast_id).edition_id
        if existing is not None:
            return existing
    try:
        with store.session() as session:
            edition = EditionRow(
                campaign=BROADCAST, number=broadcast_id, slot=None, composed_at=now,
                subject=subject, preheader=preheader, html=html, text=text, status="composed",
            )  # fmt: skip
            session.add(edition)
            session.flush()
            _row(session, broadcast_id).edition_id = edition.id
            return edition.id
    except IntegrityError:  # composed concurrently: theirs
        with store.session() as session:
            found = session.scalar(
                select(EditionRow.id).where(
                    EditionRow.campaign == BROADCAST, EditionRow.number == broadcast_id
                )
            )
            if found is None:  # pragma: no cover - an integrity error of another kind
                raise
            _row(session, broadcast_id).edition_id = found
            return found


def finish_broadcast(
    store: Store,
    broadcast_id: int,
    status: str,
    *,
    now: datetime,
    owner: str | None = None,
    release: bool = True,
) -> Broadcast:
    """Record how its send ended ("sent", "failed", or "sending" while unfinished) and end
    its lease (`release=False`: leave it to lapse, so that another process finishes the
    send). With `owner`, only while the claim is still that owner's: a sender whose
    broadcast was taken over leaves the outcome to the new owner."""
    with store.session() as session:
        row = _row(session, broadcast_id)
        if owner is not None and row.owner != owner:
            return _broadcast(row)
        if row.status != status:
            row.status, row.version, row.updated_at = status, row.version + 1, now
        if release:
            row.lease_until = None
        return _broadcast(row)


def get_broadcast(store: Store, broadcast_id: int) -> Broadcast | None:
    with store.session() as session:
        row = session.get(BroadcastRow, broadcast_id)
        return _broadcast(row) if row is not None else None


def broadcast_for_edition(store: Store, edition_id: int) -> Broadcast | None:
    """The broadcast whose edition this is (None: a digest's or the welcome's)."""
    with store.session() as session:
        row = session.scalars(select(BroadcastRow).where(BroadcastRow.edition_id == edition_id))
        found = row.first()
        return _broadcast(found) if found is not None else None


def list_broadcasts(store: Store, *, limit: int = 50, before: int | None = None) -> list[Broadcast]:
    """Newest first; `before`: only those with a smaller id (the next page, keyset)."""
    query = select(BroadcastRow).order_by(BroadcastRow.id.desc()).limit(limit)
    if before is not None:
        query = query.where(BroadcastRow.id < before)
    with store.session() as session:
        rows = session.scalars(query)
        return [_broadcast(row) for row in rows]


def due_broadcasts(store: Store, *, now: datetime) -> list[Broadcast]:
    """Scheduled broadcasts whose time has come, oldest time first."""
    with store.session() as session:
        rows = session.scalars(
            select(BroadcastRow)
            .where(BroadcastRow.status == "scheduled", BroadcastRow.send_at <= now)
            .order_by(BroadcastRow.send_at, BroadcastRow.id)
        )
        return [_broadcast(row) for row in rows]


# --- rows ---------------------------------------------------------------------------------


def _row(session: Any, broadcast_id: int) -> BroadcastRow:
    row = session.get(BroadcastRow, broadcast_id, populate_existing=True)
    if row is None:
        raise BroadcastNotFound(f"no broadcast {broadcast_id}")
    return row


def _claim(session: Any, broadcast_id: int, version: int, statuses: Sequence[str]) -> BroadcastRow:
    """Compare and set the version in one statement (of two saves from one version, one
    wins, on SQLite too), only in one of `statuses`; the row, to be changed."""
    result = session.execute(
        update(BroadcastRow)
        .where(
            BroadcastRow.id == broadcast_id,
            BroadcastRow.version == version,
            BroadcastRow.status.in_(statuses),
        )
        .values(version=version + 1)
    )
    row = _row(session, broadcast_id)
    if rowcount(result) == 0:
        if row.status not in statuses:
            raise BroadcastLocked(f"broadcast {broadcast_id} is {row.status}: it cannot change")
        raise BroadcastConflict(_broadcast(row), version)
    return row


def _slug(session: Any, draft: BroadcastDraft) -> str:
    """A slug from the name, unique among broadcasts (-2, -3… when taken)."""
    base = (slugify(draft.name) or "broadcast")[:100]
    taken = set(
        session.scalars(select(BroadcastRow.slug).where(BroadcastRow.slug.like(f"{base}%")))
    )
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def _fill(row: BroadcastRow, draft: BroadcastDraft, by: str, now: datetime) -> None:
    row.name, row.subject, row.preheader = draft.name, draft.subject, draft.preheader
    row.sender, row.body = draft.sender, draft.body
    row.topics, row.exclude = list(draft.audience.topics), list(draft.audience.exclude)
    row.items, row.cta_label, row.cta_url = list(draft.items), draft.cta_label, draft.cta_url
    row.updated_by, row.updated_at = by, now


def _broadcast(row: BroadcastRow) -> Broadcast:
    draft = BroadcastDraft(
        name=row.name, subject=row.subject, preheader=row.preheader, sender=row.sender,
        audience=Audience(tuple(row.topics or ()), tuple(row.exclude or ())), body=row.body,
        items=tuple(row.items or ()), cta_label=row.cta_label, cta_url=row.cta_url,
    )  # fmt: skip
    return Broadcast(
        id=row.id, slug=row.slug, draft=draft, status=row.status, version=row.version,
        send_at=_utc(row.send_at) if row.send_at else None, edition_id=row.edition_id,
        created_by=row.created_by, updated_by=row.updated_by, created_at=row.created_at,
        updated_at=row.updated_at, owner=row.owner, lease_until=row.lease_until,
    )  # fmt: skip
