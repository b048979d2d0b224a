"""What a subscriber's request means, on top of the store's transactions
(publisher.store.consent): a sign-up makes a new address `pending` until they confirm and
changes nobody else (an active, unsubscribed, bounced or complained person, or an erased
or suppressed address, stays exactly as it is and is not mailed: a stranger can type any
address), unsubscribing stops everything from `active` or `pending`, confirming activates
and clears the pause and the suppression, staff add people active at once, "download my
data" gathers everything kept, "delete me" suppresses the address and erases the rest.
Unsubscribing and confirming give the person a new token."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from publisher.errors import PublisherError
from publisher.store import Store
from publisher.store.consent import (
    CLI,
    Context,
    add_active,
    add_pending,
    clear_pause,
    erase_personal_data,
    record_history,
    renew_pending,
    set_subscriber_status,
)
from publisher.store.subscriber_record import email_events, history, paused_until, subscribed_since
from publisher.store.subscribers import PENDING, Subscriber, normalise_email, subscriber_at
from publisher.store.suppression import suppress, suppression_reason, unsuppress

__all__ = [
    "StaffRefused",
    "activate",
    "add_by_staff",
    "add_person",
    "erase",
    "export_data",
    "resubscribe_refusal",
    "sign_up",
    "staff_refusal",
    "unsubscribe",
]


def sign_up(
    store: Store,
    email: str,
    *,
    name: str | None,
    topics: Sequence[str],
    ctx: Context,
    now: datetime,
) -> tuple[Subscriber | None, bool]:
    """Record a sign-up with its consent. Returns the subscriber (None: nobody was stored,
    the address is suppressed) and whether a confirmation may be mailed (new or still
    pending). Anyone else is left exactly as they are, with the request in their history.
    ValueError for an address that is not one."""
    address = normalise_email(email)
    known = subscriber_at(store, address)
    if suppression_reason(store, address) is not None:  # erased, or never to be mailed
        return known, False
    if known is None:
        return add_pending(store, address, name=name, topics=topics, ctx=ctx, now=now), True
    if known.status == PENDING:
        renewed = renew_pending(store, known.id, name=name, topics=topics, ctx=ctx, now=now)
        if renewed is not None:
            return renewed, True
        known = subscriber_at(store, address) or known  # confirmed or left meanwhile
    detail = f"already {known.status}: unchanged"
    record_history(store, known.id, "signup", ctx=ctx, now=now, status=known.status, detail=detail)
    return known, False


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
        rotate=True,  # links in earlier (and forwarded) emails stop working
    )


def activate(
    store: Store, subscriber: Subscriber, *, action: str, ctx: Context, now: datetime
) -> bool:
    """Confirmed by the person (confirmation link, resubscribe with their own token) or added
    by staff: active again, off the suppression list. Confirming rotates the token: the
    confirmation link (bound to it) then opens nothing more."""
    rotate = action == "confirm"
    changed = set_subscriber_status(
        store, subscriber.id, "active", action=action, ctx=ctx, now=now, rotate=rotate
    )
    if changed:
        clear_pause(store, subscriber.id)
    unsuppress(store, subscriber.email)
    return changed


def add_by_staff(
    store: Store, email: str, *, name: str | None, topics: Sequence[str], now: datetime
) -> tuple[Subscriber, bool]:
    """`subscribers add`: active at once (staff vouch for the consent). (subscriber, created)"""
    address = normalise_email(email)
    known = subscriber_at(store, address)
    if known is None:
        known = add_pending(store, address, name=name, topics=topics, ctx=CLI, now=now)
    activate(store, known, action="added", ctx=CLI, now=now)
    return known, known.status == PENDING


class StaffRefused(PublisherError):
    """What staff asked for cannot be done to this person; the message says why."""


def staff_refusal(
    address: str, *, existing: str | None = None, suppressed: str | None = None
) -> StaffRefused:
    """Why add_person refuses `address`: a subscriber with the `existing` status is stored
    under it, or it is `suppressed` for that reason (the API's batched creates say the same)."""
    if existing is not None:
        return StaffRefused(f"{address} is already on the list ({existing}): not added again.")
    why = "was erased at the person's request" if suppressed == "erased" else "is never mailed"
    return StaffRefused(f"{address} {why} ({suppressed}): staff cannot add it back.")


def add_person(
    store: Store,
    email: str,
    *,
    name: str | None,
    topics: Sequence[str],
    ctx: Context,
    now: datetime,
    normalised: bool = False,
) -> Subscriber:
    """/admin's "Add a person": someone new, active at once, the note on where their consent
    came from in `ctx.consent_text`. Nobody already on the list is added twice or changed, and
    an erased or never-to-be-mailed address is never re-added: StaffRefused says why.
    ValueError for an address that is not one. `normalised`: `email` is already as
    normalise_email gives it (the API checked it before its group commit)."""
    address = email if normalised else normalise_email(email)
    known = subscriber_at(store, address)
    if known is not None:
        raise staff_refusal(address, existing=known.status)
    reason = suppression_reason(store, address)
    if reason is not None:
        raise staff_refusal(address, suppressed=reason)
    # not suppressed (refused above) and new: nothing to unsuppress or unpause
    return add_active(store, address, name=name, topics=topics, ctx=ctx, now=now)


def resubscribe_refusal(store: Store, subscriber: Subscriber) -> str | None:
    """Why staff may not mail this person a confirmation to come back, or None: only
    someone who unsubscribed may be asked. A complaint or an erasure is final: staff never
    write to them again; an active or pending person needs nothing."""
    if (
        subscriber.email.endswith("@erased.invalid")
        or suppression_reason(store, subscriber.email) == "erased"
    ):
        return "This person asked for their data to be erased: they cannot be re-added."
    if subscriber.status == "complained":
        return (
            "This person marked our email as spam: staff cannot re-add them. Only a new "
            "sign-up of their own can."
        )
    if subscriber.status == "bounced":
        return "Mail to this address bounced: it cannot receive a confirmation."
    if subscriber.status != "unsubscribed":
        return f"This person is {subscriber.status}: there is nothing to resubscribe."
    return None


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
