"""The broadcast pages' test project: the admin project with a configured sender, and
people around one audience ("labor, except housing"): who it reaches, who it must not."""

from __future__ import annotations

from datetime import timedelta

from publisher.store import Store
from publisher.store.broadcasts import (
    Audience,
    Broadcast,
    BroadcastDraft,
    create_broadcast,
    get_broadcast,
)
from publisher.store.consent import Context, pause, set_subscriber_status
from publisher.store.subscribers import SubscriberInput, import_subscribers, subscriber_at
from publisher.store.suppression import suppress
from tests.admin_support import ADMIN_CONFIG, STAFF
from tests.conftest import FIXED_NOW, present


def senders(from_name: str = "Local Progress Action") -> str:
    """The configured sender "action" (one copy for every broadcast test), under `from_name`
    (YAML-quoted as written)."""
    return f"""\
senders:
  - name: action
    from_email: action@example.org
    from_name: {from_name}
    reply_to: organisers@example.org
"""


BROADCAST_CONFIG = ADMIN_CONFIG + senders()
# (email, topics): reached by "labor, except housing" are REACHED; the others are not
PEOPLE = {
    "ana@example.org": ("labor",),
    "bo@example.org": ("labor", "housing"),  # excluded: follows housing
    "cy@example.org": ("housing",),  # not following labor
    "di@example.org": ("labor",),  # paused
    "ed@example.org": ("labor",),  # suppressed
    "flo@example.org": (),  # chose no topic: follows everything, no exclusion by name
    "gus@example.org": ("labor",),  # unsubscribed
}
REACHED = {"ana@example.org", "flo@example.org"}
LABOR = Audience(("labor",), ("housing",))


def seed_people(store: Store) -> None:
    rows = [SubscriberInput(email, None, topics) for email, topics in PEOPLE.items()]
    import_subscribers(store, rows, now=FIXED_NOW - timedelta(days=30))
    ctx = Context(via="cli")
    paused = present(subscriber_at(store, "di@example.org"))
    pause(store, paused.id, FIXED_NOW + timedelta(days=30), ctx=ctx, now=FIXED_NOW)
    suppress(store, "ed@example.org", reason="bounced", source="test", now=FIXED_NOW)
    gone = present(subscriber_at(store, "gus@example.org"))
    set_subscriber_status(
        store, gone.id, "unsubscribed", action="unsubscribe", ctx=ctx, now=FIXED_NOW
    )


def a_draft(**changes: object) -> BroadcastDraft:
    values: dict = dict(
        name="Council vote", subject="Vote tomorrow", preheader="The council decides at 7 pm",
        sender="action", audience=LABOR, body="## Be there\n\nThe council votes *tomorrow*.",
        cta_label="Email your councillor", cta_url="https://www.example.org/act",
    )  # fmt: skip
    return BroadcastDraft(**(values | changes))


def a_broadcast(store: Store, **changes: object) -> Broadcast:
    return create_broadcast(store, a_draft(**changes), by=STAFF["editor"], now=FIXED_NOW)


def stored(store: Store, broadcast_id: int) -> Broadcast:
    return present(get_broadcast(store, broadcast_id))
