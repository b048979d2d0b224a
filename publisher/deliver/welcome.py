"""Sending the welcome email: once per person, through the delivery ledger and the
configured backend (issue 21).

The welcome is rendered (publisher.render.welcome), stored once per version
(publisher.store.welcome.welcome_edition), claimed for the person (a ledger row written
before anything is sent: a second confirmation, a second process or a retry finds it and
sends nothing), then sent as a one-recipient batch by the same retry loop as every digest
batch (`send_with_retries`), whose hooks mark the row `requested` right before the bytes
are written; the outcome is recorded by `ledger.finish_batch`. The welcome is at most
once: after a sender died (`resume_welcomes`, run after each confirmation's welcome), a
row it left `requested` becomes `uncertain` (never resent), one it left `inflight`
(nothing written) or `failed` (attempts left) is taken over by one process and sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from publisher.config import PublisherConfig
from publisher.deliver.backends.registry import make_backend
from publisher.deliver.base import DeliveryBackend, Message, Recipient, Scheduled
from publisher.deliver.retry import send_with_retries
from publisher.deliver.service import policy_from
from publisher.render.email import archive_url
from publisher.render.environment import search_path_for
from publisher.render.welcome import LatestEdition, RenderedWelcome, render_welcome
from publisher.store import Store, ledger
from publisher.store.editions import get_edition
from publisher.store.feeds_queries import sent_editions
from publisher.store.subscribers import find_subscriber
from publisher.store.welcome import claim_welcome, take_stale, welcome_edition

__all__ = [
    "CAMPAIGN",
    "STALE_AFTER",
    "Welcome",
    "prepare_welcome",
    "resume_welcomes",
    "send_welcome",
]

log = logging.getLogger(__name__)
CAMPAIGN = "welcome"  # the file outbox's folder and the List-Id's name


@dataclass(frozen=True)
class Welcome:
    """The welcome as it goes out now: stored version id and the message."""

    edition_id: int
    rendered: RenderedWelcome
    message: Message


def latest_edition(config: PublisherConfig, store: Store) -> LatestEdition | None:
    """The configured campaign's latest sent edition, or None (none configured or sent)."""
    name = config.welcome.latest_edition if config.welcome else None
    if not name:
        return None
    sent = sent_editions(store, name)
    if not sent:
        return None
    url = archive_url(config.organisation.public_url, name, sent[0].number)
    return LatestEdition(config.campaign(name).title, sent[0].subject, url)


def render(config: PublisherConfig, store: Store) -> RenderedWelcome | None:
    """The welcome rendered from the configuration (None: not configured); TemplateError."""
    if config.welcome is None:
        return None
    return render_welcome(
        config.welcome,
        config.organisation,
        latest=latest_edition(config, store),
        search_path=search_path_for(config.root),
    )


def prepare_welcome(config: PublisherConfig, store: Store, *, now: datetime) -> Welcome | None:
    """The welcome as it goes out now, its version stored (None: not configured)."""
    rendered = render(config, store)
    if rendered is None:
        return None
    edition_id = welcome_edition(
        store,
        subject=rendered.subject,
        preheader=rendered.preheader,
        html=rendered.html,
        text=rendered.text,
        now=now,
    )
    message = _message(config, edition_id, rendered.subject, rendered.html, rendered.text, now)
    return Welcome(edition_id, rendered, message)


def _message(
    config: PublisherConfig, edition_id: int, subject: str, html: str, text: str, now: datetime
) -> Message:
    org = config.organisation
    return Message(
        edition_id=edition_id,
        campaign=CAMPAIGN,
        number=0,
        title=f"Welcome to {org.name}",
        subject=subject,
        html=html,
        text=text,
        from_email=org.from_email,
        from_name=org.from_name,
        reply_to=org.reply_to,
        public_url=org.public_url,
        unsubscribe_mailto=config.delivery.unsubscribe_mailto or org.from_email,
        date=now,
    )


def send_welcome(
    config: PublisherConfig,
    store: Store,
    subscriber_id: int,
    *,
    now: datetime,
    backend: DeliveryBackend[Any, Any] | None = None,
) -> str:
    """Welcome the person once: "not configured", "not active", "already" (claimed
    before, by this or another process), or the outcome: "sent", "uncertain", "failed:
    <why>". Raises for a template or store problem (nothing was claimed then)."""
    person = find_subscriber(store, id=subscriber_id)
    if person is None or person.status != "active":
        return "not active"
    welcome = prepare_welcome(config, store, now=now)
    if welcome is None:
        return "not configured"
    if not claim_welcome(store, welcome.edition_id, subscriber_id, now=now):
        return "already"
    message = welcome.message
    recipient = Recipient(person.id, person.email, person.name, person.token, message.public_url)
    return _send(config, store, message, recipient, backend or make_backend(config), now)


def _send(
    config: PublisherConfig,
    store: Store,
    message: Message,
    recipient: Recipient,
    backend: DeliveryBackend[Any, Any],
    now: datetime,
) -> str:
    edition_id, number = message.edition_id, recipient.subscriber_id  # its own batch

    def mark(
        part: Sequence[Recipient],
        status: str,
        scheduled: Scheduled | None,
        accepted: Sequence[Recipient],
    ) -> None:
        sent = [r.subscriber_id for r in accepted]
        ledger.mark_range(store, edition_id, number, number, number, status, now=now, sent=sent)

    try:
        outcome = send_with_retries(
            backend,
            backend.prepare(message),
            [recipient],
            f"{edition_id}-{number}",
            policy_from(config),
            mark=mark,
        )
    finally:
        backend.close()
    failed, bounced = outcome.split_failed()
    ledger.finish_batch(
        store,
        edition_id,
        number,
        failed=failed,
        bounced=bounced,
        uncertain=outcome.uncertain,
        now=now,
    )
    if failed or bounced:
        why = next(iter({**failed, **bounced}.values()))
        # the reason stays in the ledger: a provider's answer may quote the address
        log.warning("welcome to subscriber %s refused", recipient.subscriber_id)
        return f"failed: {why}"
    return "uncertain" if outcome.uncertain else "sent"


STALE_AFTER = timedelta(minutes=15)  # far beyond one message's retries: its sender died


def resume_welcomes(
    config: PublisherConfig,
    store: Store,
    *,
    now: datetime,
    stale_after: timedelta = STALE_AFTER,
    backend_for: Callable[[], DeliveryBackend[Any, Any]] | None = None,
) -> dict[str, int]:
    """Finish the welcomes a stopped sender left (publisher.store.welcome.take_stale): each
    taken row is sent, as the version it was claimed with, by this call only. The count of
    each outcome."""
    outcomes: dict[str, int] = {}
    for edition_id, subscriber_id in take_stale(store, before=now - stale_after, now=now):
        edition, person = get_edition(store, edition_id), find_subscriber(store, id=subscriber_id)
        if edition is None or person is None:  # pragma: no cover - rows keep both
            continue
        message = _message(config, edition.id, edition.subject, edition.html, edition.text, now)
        recipient = Recipient(
            person.id, person.email, person.name, person.token, message.public_url
        )
        backend = backend_for() if backend_for else make_backend(config)
        outcome = _send(config, store, message, recipient, backend, now).split(":")[0]
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
