"""A broadcast's edition as a message and its audience (issue 21): what differs from a
digest edition's, kept here so the one send path (publisher.deliver.service) can ask.

A broadcast's edition (campaign key publisher.store.broadcasts.BROADCAST) goes out under
the sender staff chose (From, Reply-To: verified addresses from `senders:`), to the
broadcast's own audience (topics; the exclusions are `skipped` ledger rows written before
the dispatcher reads the audience)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from publisher.config import PublisherConfig
from publisher.deliver.base import Message
from publisher.errors import DeliveryError
from publisher.store import Store
from publisher.store.broadcasts import (
    BROADCAST,
    Broadcast,
    broadcast_for_edition,
    exclude_followers,
)
from publisher.store.editions import StoredEdition

__all__ = [
    "CAMPAIGN",
    "broadcast_audience",
    "broadcast_message",
    "exclude",
    "is_broadcast",
    "of_edition",
]

CAMPAIGN = "broadcast"  # the file outbox's folder and the List-Id's name


def is_broadcast(campaign: str) -> bool:
    return campaign == BROADCAST


def of_edition(store: Store, edition_id: int) -> Broadcast:
    """The broadcast whose edition this is (DeliveryError when none: never guess)."""
    broadcast = broadcast_for_edition(store, edition_id)
    if broadcast is None:
        raise DeliveryError(f"edition {edition_id} belongs to no broadcast")
    return broadcast


def broadcast_audience(store: Store, edition_id: int) -> Sequence[str]:
    """The topics the broadcast's edition goes to (empty: everyone)."""
    return of_edition(store, edition_id).draft.audience.topics


def broadcast_message(
    config: PublisherConfig,
    store: Store,
    edition: StoredEdition,
    *,
    now: datetime,
    send_at: datetime | None = None,
    link_key: str = "",
) -> Message:
    """The broadcast's stored edition as a message under its chosen sender."""
    broadcast = of_edition(store, edition.id)
    org, sender = config.organisation, config.sender(broadcast.draft.sender)
    return Message(
        edition_id=edition.id,
        campaign=CAMPAIGN,
        number=edition.number,
        title=f"{org.name} broadcasts",
        subject=edition.subject,
        html=edition.html,
        text=edition.text,
        from_email=sender.from_email,
        from_name=sender.from_name,
        reply_to=sender.reply_to,
        public_url=org.public_url,
        unsubscribe_mailto=config.delivery.unsubscribe_mailto or org.from_email,
        date=now,
        send_at=send_at,
        link_key=link_key,
    )


def exclude(store: Store, edition_id: int, *, now: datetime) -> int:
    """The broadcast's exclusions as `skipped` ledger rows, before its audience is read."""
    audience = of_edition(store, edition_id).draft.audience
    return exclude_followers(store, edition_id, audience, now=now)
