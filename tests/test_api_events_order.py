"""GET /api/v1/events in commit-safe order. On PostgreSQL a history row's id is taken at
INSERT: a SendGrid batch still open holds a lower id than a one-click unsubscribe that
commits meanwhile. A client paging by id alone would move its cursor past the batch's
bounce and never see it; paging by (inserting transaction, id), up to the oldest
transaction still running, holds the unsubscribe back until the batch has ended.

The batch runs the real `record_events` in a thread, held just before its COMMIT by an
engine listener (events, never sleeps); the unsubscribe and the reads run meanwhile."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event

from publisher.store import MIGRATIONS, Store, open_store
from publisher.store.api_pages import (
    FIRST_EVENT,
    EventPosition,
    SubscriberEvent,
    subscriber_events,
)
from publisher.store.consent import CLI, unsubscribe_token
from publisher.store.subscribers import Subscriber
from publisher.subscribers.consent import add_person, sign_up, unsubscribe
from publisher.subscribers.events import record_events
from tests.api_support import api_server, make_key
from tests.pgcluster import Cluster

WAIT = 30.0  # seconds: a deadline for a state, never a pause


@pytest.fixture
def pg_store(pg_cluster: Cluster) -> Iterator[Store]:
    """A store on a database of its own: the race exists on PostgreSQL only (SQLite has one
    writer at a time, the every-kind test below runs on both)."""
    name = pg_cluster.create_database()
    store = open_store(pg_cluster.url(name))
    yield store
    store.close()
    pg_cluster.drop_database(name)


def _bounce(email: str, event_id: str = "b1") -> dict[str, Any]:
    return {"sg_event_id": event_id, "event": "bounce", "email": email, "timestamp": 1}


@contextmanager
def held_batch(store: Store, email: str, now: datetime) -> Iterator[threading.Event]:
    """A SendGrid batch bouncing `email`, written and held open just before its COMMIT
    while the body runs; set the yielded event to let it commit (it is let go at the end
    in any case, and joined)."""
    written, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold(_connection: Any) -> None:  # the engine's "commit": before COMMIT is sent
        if threading.current_thread() is batch:
            written.set()
            if not release.wait(WAIT):
                raise TimeoutError("the batch was never let go")

    def run() -> None:
        try:
            record_events(store, [_bounce(email)], now=now)
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            failures.append(exc)
            written.set()

    batch = threading.Thread(target=run, name="sendgrid-batch")
    event.listen(store.engine, "commit", hold)
    batch.start()
    try:
        assert written.wait(WAIT), "the batch never reached its commit"
        assert not failures, failures
        yield release
    finally:
        release.set()
        batch.join(WAIT)
        event.remove(store.engine, "commit", hold)
    assert not batch.is_alive() and not failures, failures


def _people(store: Store, now: datetime) -> tuple[Subscriber, Subscriber]:
    """Someone pending (their confirmation mail bounces) and someone active (who leaves by
    one-click): their status changes touch different tally rows (migration 0022), so the
    unsubscribe never waits for the batch's locks."""
    pending, _ = sign_up(store, "bo@example.org", name=None, topics=[], ctx=CLI, now=now)
    active = add_person(store, "leave@example.org", name=None, topics=[], ctx=CLI, now=now)
    assert pending is not None
    return pending, active


def _seen(events: list[SubscriberEvent]) -> list[tuple[str, str]]:
    return [(e.kind, e.email) for e in events]


def test_an_event_committed_late_is_never_skipped(pg_store, fixed_now):
    store = pg_store
    early = add_person(store, "early@example.org", name=None, topics=[], ctx=CLI, now=fixed_now)
    unsubscribe(store, early.id, ctx=CLI, now=fixed_now)
    _, active = _people(store, fixed_now)
    with held_batch(store, "bo@example.org", fixed_now) as release:
        assert unsubscribe_token(store, active.token, ctx=CLI, now=fixed_now) is not None
        first = subscriber_events(store)
        # the unsubscribe is committed but waits: the batch's bounce may still come before it
        assert _seen(first) == [("unsubscribed", "early@example.org")]
        assert subscriber_events(store, after=first[-1].position) == []
        release.set()
    rest = subscriber_events(store, after=first[-1].position)
    assert _seen(rest) == [("bounced", "bo@example.org"), ("unsubscribed", "leave@example.org")]
    bounce, leave = rest
    assert bounce.id < leave.id  # the case paging by id skipped: the lower id committed last
    assert subscriber_events(store, after=rest[-1].position) == []
    walk, after = [], FIRST_EVENT
    while page := subscriber_events(store, after=after, limit=1):
        walk += page
        after = page[-1].position
    assert walk == first + rest  # one at a time: the same events, none twice


def test_the_api_cursor_never_moves_past_an_open_batch(tmp_path, pg_store, fixed_now):
    store = pg_store
    _, active = _people(store, fixed_now)
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:read")
        start = api.call("GET", "/events", key).json()
        assert start["items"] == []
        with held_batch(store, "bo@example.org", fixed_now) as release:
            assert unsubscribe_token(store, active.token, ctx=CLI, now=fixed_now) is not None
            cursor = {"cursor": start["next_cursor"]}
            meanwhile = api.call("GET", "/events", key, params=cursor).json()
            assert meanwhile == start  # nothing yet, and the cursor has not moved
            release.set()
        after = api.call("GET", "/events", key, params=cursor).json()
        assert [(e["kind"], e["email"]) for e in after["items"]] == [
            ("bounced", "bo@example.org"),
            ("unsubscribed", "leave@example.org"),
        ]
        done = api.call("GET", "/events", key, params={"cursor": after["next_cursor"]}).json()
        assert done["items"] == [] and done["next_cursor"] == after["next_cursor"]


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_every_kind_comes_out_of_the_api(tmp_path, store, fixed_now):
    """Unsubscribed (through the API), bounced and complained (SendGrid) on both databases,
    in the order they happened, each kind alone when asked for; a cursor of the id-only
    kind (before migration 0033) is still taken, one not ours is refused."""
    for name in ("ann", "bo", "cy"):
        add_person(store, f"{name}@example.org", name=None, topics=[], ctx=CLI, now=fixed_now)
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "subscribers:read", "subscribers:write")
        ann = api.call("GET", "/subscribers", key, params={"q": "ann@"}).json()["items"][0]
        assert api.call("POST", f"/subscribers/{ann['id']}/unsubscribe", key).status_code == 200
        complaint = {"sg_event_id": "c1", "event": "spamreport", "email": "cy@example.org"}
        batch = [_bounce("bo@example.org"), complaint | {"timestamp": 1}]
        assert record_events(store, batch, now=fixed_now).status_changes == 2
        page = api.call("GET", "/events", key).json()
        assert [(e["kind"], e["email"], e["via"]) for e in page["items"]] == [
            ("unsubscribed", "ann@example.org", "api"),
            ("bounced", "bo@example.org", "webhook"),
            ("complained", "cy@example.org", "webhook"),
        ]
        for kind in ("unsubscribed", "bounced", "complained"):
            alone = api.call("GET", "/events", key, params={"kind": kind}).json()["items"]
            assert [e["kind"] for e in alone] == [kind]
        two = api.call("GET", "/events", key, params={"limit": 2}).json()
        rest = api.call("GET", "/events", key, params={"cursor": two["next_cursor"]}).json()
        assert two["items"] + rest["items"] == page["items"]
        bare = {"cursor": _cursor(f"events:{page['items'][-1]['id']}")}
        assert api.call("GET", "/events", key, params=bare).status_code == 200
        wrongs = ("events:1.x", "events:.5", "events:1.2.3", "events:1.\u00b2", "subscribers:1")
        for wrong in wrongs:
            refused = api.call("GET", "/events", key, params={"cursor": _cursor(wrong)})
            assert refused.status_code == 422, wrong
            assert refused.json()["errors"][0]["field"] == "cursor"


def test_rows_from_before_the_migration_come_first_and_an_old_cursor_goes_on(store, fixed_now):
    """Migration 0033 gives the history rows already there txid 0: they come first, by id,
    and a cursor of the id-only kind handed out before it continues where it was."""
    for name in ("ann", "bo", "cy"):
        person = add_person(
            store, f"{name}@example.org", name=None, topics=[], ctx=CLI, now=fixed_now
        )
        if name == "cy":
            cfg = AlembicConfig()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            with store.engine.begin() as connection:  # back to before the column, and on
                cfg.attributes["connection"] = connection
                command.downgrade(cfg, "0032")
            store.migrate()
        unsubscribe(store, person.id, ctx=CLI, now=fixed_now)
    ann, bo, cy = subscriber_events(store)
    assert [e.email for e in (ann, bo, cy)] == [
        "ann@example.org",
        "bo@example.org",
        "cy@example.org",
    ]
    assert ann.position.txid == bo.position.txid == 0
    assert (cy.position.txid > 0) is (store.engine.dialect.name == "postgresql")
    old_cursor = EventPosition(0, ann.id)
    assert subscriber_events(store, after=old_cursor) == [bo, cy]
