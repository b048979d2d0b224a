"""Numbers of an edition that need no provider's webhook: what people did through the
edition's own links (`page_events`: an unsubscribe, a preference change, once per person,
edition and kind), the permanent refusals an SMTP server answered (the delivery ledger),
and the raw SendGrid clicks the scanner check reads. Also the store's link key, which
signs which edition a subscriber link came from (publisher.support.marks).
"""

from __future__ import annotations

import secrets
import weakref
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError

from publisher.store import Store
from publisher.store.models import DeliveryRow, LinkKeyRow, PageEventRow, WebhookEventRow

__all__ = [
    "PAGE_KINDS",
    "click_times",
    "delivered_times",
    "link_key",
    "page_counts",
    "record_page_event",
    "smtp_refusals",
]

PAGE_KINDS = ("unsubscribe", "preferences")
# a row the provider took (or may have): only a person who was sent the email clicked its link
_RECEIVED = ("sent", "uncertain")
# an SMTP server's permanent refusal at DATA is kept as a failure (the content, not the
# address, may be the reason) with the server's reply: "550 ...", "554 ..."
_FIVE_XX = "5__ %"
_KEYS: weakref.WeakKeyDictionary[Store, str] = weakref.WeakKeyDictionary()


def link_key(store: Store, *, now: datetime) -> str:
    """The store's link key, made on first use (every process then reads the same one).
    It never changes, so each process keeps it once read."""
    cached = _KEYS.get(store)
    if cached is not None:
        return cached
    with store.session() as session:
        found = session.scalar(select(LinkKeyRow.key).where(LinkKeyRow.id == 1))
    if found is None:
        try:
            with store.session() as session:
                session.add(LinkKeyRow(id=1, key=secrets.token_urlsafe(32), created_at=now))
        except IntegrityError:
            pass  # made by another process meanwhile: read theirs
        with store.session() as session:
            found = session.scalar(select(LinkKeyRow.key).where(LinkKeyRow.id == 1))
    if found is None:  # pragma: no cover - the row was just written
        raise RuntimeError("the link key could not be stored")
    _KEYS[store] = found
    return found


def record_page_event(
    store: Store, edition_id: int, subscriber_id: int, kind: str, *, now: datetime
) -> bool:
    """Count that the person did `kind` (PAGE_KINDS) through the edition's links: only when
    the edition was sent to them, and once (a second click counts nothing). True if new."""
    if kind not in PAGE_KINDS:
        raise ValueError(f"unknown page event kind {kind!r}")
    received = select(DeliveryRow.id).where(
        DeliveryRow.edition_id == edition_id,
        DeliveryRow.subscriber_id == subscriber_id,
        DeliveryRow.status.in_(_RECEIVED),
    )
    done = select(PageEventRow.id).where(
        PageEventRow.edition_id == edition_id,
        PageEventRow.subscriber_id == subscriber_id,
        PageEventRow.kind == kind,
    )
    try:
        with store.session() as session:
            if session.scalar(received) is None or session.scalar(done) is not None:
                return False
            session.add(
                PageEventRow(edition_id=edition_id, subscriber_id=subscriber_id, kind=kind, at=now)
            )
    except IntegrityError:  # the same click twice at once: the other one counted it
        return False
    return True


def page_counts(store: Store, edition_id: int) -> dict[str, int]:
    """People per kind (PAGE_KINDS, each present) who acted through the edition's links."""
    query = (
        select(PageEventRow.kind, func.count())
        .where(PageEventRow.edition_id == edition_id)
        .group_by(PageEventRow.kind)
    )
    with store.session() as session:
        found = {str(kind): count for kind, count in session.execute(query)}
    return {kind: found.get(kind, 0) for kind in PAGE_KINDS}


def smtp_refusals(store: Store, edition_id: int) -> int:
    """Recipients an SMTP server refused for good: 5xx at RCPT (ledger `bounced`) or at
    DATA (`failed` with the server's 5xx reply)."""
    refused = or_(
        DeliveryRow.status == "bounced",
        and_(DeliveryRow.status == "failed", DeliveryRow.error.like(_FIVE_XX)),
    )
    query = select(func.count()).where(DeliveryRow.edition_id == edition_id, refused)
    with store.session() as session:
        return session.scalar(query) or 0


def click_times(store: Store, edition_id: int) -> list[tuple[str, str, datetime]]:
    """(recipient, url, when) of every SendGrid click of the edition with all three."""
    query = select(WebhookEventRow.email, WebhookEventRow.url, WebhookEventRow.occurred_at).where(
        WebhookEventRow.edition_id == edition_id,
        WebhookEventRow.event == "click",
        WebhookEventRow.email.is_not(None),
        WebhookEventRow.url.is_not(None),
        WebhookEventRow.occurred_at.is_not(None),
    )
    with store.session() as session:
        return [(str(e), str(u), at) for e, u, at in session.execute(query) if at is not None]


def delivered_times(store: Store, edition_id: int) -> dict[str, datetime]:
    """When SendGrid says each recipient who clicked a link of the edition had their copy
    delivered (the first time): what the link-scanner check compares the clicks with (only
    the clickers: a big edition's other recipients were read and converted for nothing)."""
    clickers = select(WebhookEventRow.email).where(
        WebhookEventRow.edition_id == edition_id, WebhookEventRow.event == "click"
    )
    query = (
        select(WebhookEventRow.email, func.min(WebhookEventRow.occurred_at))
        .where(
            WebhookEventRow.edition_id == edition_id,
            WebhookEventRow.event == "delivered",
            WebhookEventRow.email.is_not(None),
            WebhookEventRow.occurred_at.is_not(None),
            WebhookEventRow.email.in_(clickers),
        )
        .group_by(WebhookEventRow.email)
    )
    with store.session() as session:
        return {str(e): at for e, at in session.execute(query) if at is not None}
