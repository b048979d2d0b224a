"""A broadcast before it is sent: the last checks of its draft, its rendering as it would
go out now (a preview, and what a send composes), and a test send outside the ledger, its
subject marked "[Test] ". The send itself is publisher.deliver.broadcasts'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from publisher.config import PublisherConfig
from publisher.config.models import control_characters
from publisher.deliver.backends.registry import make_backend
from publisher.deliver.base import DeliveryBackend, Message, Recipient
from publisher.deliver.broadcast_message import CAMPAIGN
from publisher.deliver.outside_ledger import send_one
from publisher.errors import DeliveryError
from publisher.items import Item
from publisher.render.alert import alert_url, render_alert
from publisher.render.environment import search_path_for
from publisher.store import Store
from publisher.store.broadcasts import Broadcast, BroadcastDraft
from publisher.store.item_search import item_entry
from publisher.store.subscribers import subscriber_at

__all__ = [
    "TEST_PREFIX",
    "RenderedBroadcast",
    "draft_problems",
    "render_broadcast",
    "send_test_broadcast",
]

TEST_PREFIX = "[Test] "


@dataclass(frozen=True)
class RenderedBroadcast:
    subject: str
    preheader: str
    html: str
    text: str


def draft_problems(config: PublisherConfig, draft: BroadcastDraft) -> list[str]:
    """What stops a draft from going out, in words (empty: nothing). The edges validate
    their forms; this is the last check before anything is sent or tested: the subject and
    preheader go into headers (one line), the sender must be configured, the button needs
    both its label and an http(s) address."""
    problems = []
    if not draft.subject.strip():
        problems.append("the subject is empty")
    for name, value in (("subject", draft.subject), ("preheader", draft.preheader)):
        if control_characters(value):
            problems.append(f"the {name} must be one line (it contains control characters)")
    if draft.sender not in {s.name for s in config.sender_choices()}:
        problems.append(f"the sender '{draft.sender}' is not configured (senders:)")
    if bool(draft.cta_label) != bool(draft.cta_url):
        problems.append("the button needs both a label and an address")
    elif draft.cta_url and not draft.cta_url.startswith(("https://", "http://")):
        problems.append("the button's address must start with https:// or http://")
    return problems


def refuse_unsendable(config: PublisherConfig, broadcast: Broadcast) -> None:
    problems = draft_problems(config, broadcast.draft)
    if problems:
        raise DeliveryError(f"broadcast {broadcast.id} cannot go: " + "; ".join(problems))


def broadcast_items(store: Store, item_ids: Sequence[str]) -> list[Item]:
    """The broadcast's items as stored now, in its order (one no longer stored is left out)."""
    items = []
    for item_id in item_ids:
        entry = item_entry(store, item_id)
        if entry is not None:
            items.append(entry.item)
    return items


def render_broadcast(
    config: PublisherConfig,
    store: Store,
    broadcast: Broadcast,
    *,
    now: datetime,
    public: bool = False,
) -> RenderedBroadcast:
    """The broadcast as it would go out now (personal links are placeholders; a preview
    fills them with publisher.render.personalise.sample_copy); `public`: as its public copy
    (publisher.publish.broadcasts writes that). TemplateError for a template problem,
    ConfigError for a sender no longer configured."""
    org = config.organisation
    rendered = render_alert(
        broadcast.draft,
        org,
        config.sender(broadcast.draft.sender),
        items=broadcast_items(store, broadcast.draft.items),
        web_url=alert_url(org.public_url, broadcast.id),
        public=public,
        search_path=search_path_for(config.root),
    )
    return RenderedBroadcast(rendered.subject, rendered.preheader, rendered.html, rendered.text)


def _test_message(
    config: PublisherConfig, broadcast: Broadcast, rendered: RenderedBroadcast, now: datetime
) -> Message:
    org, sender = config.organisation, config.sender(broadcast.draft.sender)
    return Message(
        edition_id=0,  # no edition: nothing of a test is in the ledger or the numbers
        campaign=CAMPAIGN,
        number=broadcast.id,
        title=f"{org.name} broadcasts",
        subject=TEST_PREFIX + rendered.subject,
        html=rendered.html,
        text=rendered.text,
        from_email=sender.from_email,
        from_name=sender.from_name,
        reply_to=sender.reply_to,
        public_url=org.public_url,
        unsubscribe_mailto=config.delivery.unsubscribe_mailto or org.from_email,
        date=now,
    )


def send_test_broadcast(
    config: PublisherConfig,
    store: Store,
    broadcast: Broadcast,
    to: Sequence[str],
    *,
    now: datetime,
    backend: DeliveryBackend[Any, Any] | None = None,
) -> None:
    """Send the broadcast as it is now to each address in `to`, subject marked "[Test] ",
    outside the ledger (the real send is unaffected); DeliveryError naming the addresses
    it could not be sent to."""
    refuse_unsendable(config, broadcast)
    rendered = render_broadcast(config, store, broadcast, now=now)
    message = _test_message(config, broadcast, rendered, now)
    problems = []
    for address in to:
        known = subscriber_at(store, address.strip().lower())
        name = known.name if known else None
        recipient = Recipient(0, address.strip(), name, "test-send", message.public_url)
        outcome = send_one(
            config,
            message,
            recipient,
            backend=backend or make_backend(config),
            batch_key=f"broadcast-{broadcast.id}-test",
        )
        if outcome is not None:
            problems.append(f"{address.strip()}: {outcome}")
    if problems:
        raise DeliveryError("the test was not sent to " + "; ".join(problems))
