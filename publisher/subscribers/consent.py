"""What a subscriber's request means, on top of the store's transactions
(publisher.store.consent): a sign-up leaves an active subscriber as they are and makes
anyone else `pending` until they confirm, unsubscribing stops everything from `active` or
`pending`,
confirming activates and clears the pause and the suppression, staff add people active at
once, "download my data" gathers everything kept, "delete me" suppresses the address and
erases the rest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from publisher.store import Store
from publisher.store.consent import (
    CLI,
    Context,
    add_pending,
    clear_pause,
    email_events,
    erase_personal_data,
    history,
    paused_until,
    record_history,
    reopen_pending,
    set_subscriber_status,
    subscribed_since,
)
from publisher.store.subscribers import PENDING, Subscriber, normalise_email, subscriber_at
from publisher.store.suppression import suppress, unsuppress

__all__ = ["activate", "add_by_staff", "erase", "export_data", "sign_up", "unsubscribe"]


def sign_up(
    store: Store,
    email: str,
    *,
    name: str | None,
    topics: Sequence[str],
    ctx: Context,
    now: datetime,
) -> tuple[Subscriber, bool]:
    """Record a sign-up with its consent. Returns the subscriber and whether a confirmation
    must be sent (new, still pending, or opted out and asking again); an active subscriber
    is left as they are. ValueError for an address that is not one."""
    address = normalise_email(email)
    while True:  # again only if the status changed between reading and writing it
        known = subscriber_at(store, address)
        if known is None:
            return add_pending(store, address, name=name, topics=topics, ctx=ctx, now=now), True
        if known.status == "active":
            detail = "already active: unchanged"
            record_history(
                store, known.id, "signup", ctx=ctx, now=now, status="active", detail=detail
            )
            return known, False
        reopened = reopen_pending(
            store, known.id, only_from=known.status, name=name, topics=topics, ctx=ctx, now=now
        )
        if reopened is not None:
            return reopened, True


def unsubscribe(store: Store, subscriber_id: int, *, ctx: Context, now: datetime) -> bool:
    """Stop everything (one-click, the preference centre, `subscribers remove`)."""
    return set_subscriber_status(
        store,
        subscriber_id,
        "unsubscribed",
        action="unsubscribe",
        ctx=ctx,
        now=now,
        only_from=("active", PENDING),
    )


def activate(
    store: Store, subscriber: Subscriber, *, action: str, ctx: Context, now: datetime
) -> bool:
    """Confirmed by the person (confirmation link, resubscribe with their own token) or added
    by staff: active again, off the suppression list."""
    changed = set_subscriber_status(store, subscriber.id, "active", action=action, ctx=ctx, now=now)
    if changed:
        clear_pause(store, subscriber.id)
    unsuppress(store, subscriber.email)
    return changed


def add_by_staff(
    store: Store, email: str, *, name: str | None, topics: Sequence[str], now: datetime
) -> tuple[Subscriber, bool]:
    """`subscribers add`: active at once (staff vouch for the consent). (subscriber, created)"""
    subscriber, _ = sign_up(store, email, name=name, topics=topics, ctx=CLI, now=now)
    created = subscriber.status == PENDING
    activate(store, subscriber, action="added", ctx=CLI, now=now)
    return subscriber, created


def export_data(store: Store, subscriber: Subscriber, *, now: datetime) -> dict[str, Any]:
    """Everything we keep about the person ("download my data")."""
    until = paused_until(store, subscriber.id, now=now)
    since = subscribed_since(store, subscriber.id)
    created = since.isoformat() if since else None
    events = email_events(store, subscriber.email)
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "topics": list(subscriber.topics),
        "paused_until": until.isoformat() if until else None,
        "subscribed_since": created,
        "history": history(store, subscriber.id),
        "email_events": [
            {"event": e, "at": at.isoformat() if at else None, "url": url} for e, at, url in events
        ],
    }


def erase(store: Store, subscriber: Subscriber, *, now: datetime, source: str = "web") -> None:
    """ "Delete me": every personal datum goes; the row stays (anonymised) only because the
    delivery ledger points at it, and the address survives as a suppression hash."""
    suppress(store, subscriber.email, reason="erased", source=source, now=now)
    erase_personal_data(store, subscriber, now=now)
