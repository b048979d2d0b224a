"""Edition tallies: a finished send keeps its ledger counts per status, the staff pages
read them instead of counting the ledger, and anything that may change the ledger (a send
starting, rows still in transit) falls back to counting it."""

from __future__ import annotations

import importlib

from sqlalchemy import delete, select, text, update

from publisher.deliver import deliver_edition
from publisher.store import dashboard, ledger
from publisher.store.models import DeliveryRow, EditionTallyRow
from publisher.store.tallies import edition_counts
from tests.servers.data import add_edition, add_subscribers, config_text


def _tally(store, edition: int) -> dict[str, int]:
    with store.session() as session:
        rows = session.execute(
            select(EditionTallyRow.status, EditionTallyRow.count).where(
                EditionTallyRow.edition_id == edition
            )
        )
        return {str(s): int(n) for s, n in rows}


def _fail_one(store, edition: int) -> None:
    """Change the ledger behind the tally's back (as no send does) to see which is read."""
    with store.session() as session:
        first = session.scalar(
            select(DeliveryRow.id).where(DeliveryRow.edition_id == edition).limit(1)
        )
        session.execute(update(DeliveryRow).where(DeliveryRow.id == first).values(status="failed"))


def test_a_finished_send_keeps_its_counts_and_the_pages_read_them(store, make_config, fixed_now):
    config = make_config(config_text("file"))
    add_subscribers(store, fixed_now, 3)
    edition = add_edition(store, fixed_now)
    assert edition_counts(store, [edition]) == {edition: {}}  # nothing sent: nothing counted
    deliver_edition(config, store, edition, now=fixed_now)
    assert _tally(store, edition) == {"sent": 3}
    _fail_one(store, edition)
    assert edition_counts(store, [edition]) == {edition: {"sent": 3}}  # the tally, not a count
    lines, _ = dashboard.campaign_editions(store, "weekly")
    assert lines[0].counts == {"sent": 3} and lines[0].accepted == 3
    found = dashboard.edition_line(store, edition)
    assert found is not None and found[0].counts == {"sent": 3}


def test_a_send_starting_forgets_the_tally_and_the_ledger_is_counted(store, make_config, fixed_now):
    config = make_config(config_text("file"))
    add_subscribers(store, fixed_now, 3)
    edition = add_edition(store, fixed_now)
    deliver_edition(config, store, edition, now=fixed_now)
    _fail_one(store, edition)
    ledger.reconcile(store, edition, now=fixed_now)  # a resend starts: failed -> pending
    assert _tally(store, edition) == {}
    assert edition_counts(store, [edition]) == {edition: {"sent": 2, "pending": 1}}
    deliver_edition(config, store, edition, now=fixed_now)  # and finishes: counted again
    assert _tally(store, edition) == {"sent": 3}
    assert edition_counts(store, [edition]) == {edition: {"sent": 3}}


def test_rows_in_transit_are_counted_not_tallied(store, make_config, fixed_now):
    """Another process still sending: its rows are pending, the tally may be old."""
    config = make_config(config_text("file"))
    add_subscribers(store, fixed_now, 3)
    edition = add_edition(store, fixed_now)
    deliver_edition(config, store, edition, now=fixed_now)
    with store.session() as session:
        first = session.scalar(select(DeliveryRow.id).where(DeliveryRow.edition_id == edition))
        session.execute(update(DeliveryRow).where(DeliveryRow.id == first).values(status="pending"))
    assert edition_counts(store, [edition]) == {edition: {"sent": 2, "pending": 1}}


def test_the_migration_backfills_editions_sent_before_it(store, make_config, fixed_now):
    config = make_config(config_text("file"))
    add_subscribers(store, fixed_now, 4)
    sent, composed = add_edition(store, fixed_now), add_edition(store, fixed_now, number=2)
    deliver_edition(config, store, sent, now=fixed_now)
    with store.session() as session:
        session.execute(delete(EditionTallyRow))  # as before migration 0029
    migration = importlib.import_module("publisher.store.migrations.versions.0029_edition_tallies")
    with store.session() as session:
        session.execute(text(migration.BACKFILL))
    assert _tally(store, sent) == {"sent": 4} and _tally(store, composed) == {}


def test_delivery_times_are_read_for_the_clickers_only(store, fixed_now):
    """The link-scanner check compares clicks with deliveries: only clickers' are read."""
    from datetime import timedelta

    from publisher.store.models import WebhookEventRow
    from publisher.store.numbers import delivered_times

    edition = add_edition(store, fixed_now)
    events = [
        ("d1", "delivered", "a@example.org", fixed_now),
        ("d2", "delivered", "a@example.org", fixed_now + timedelta(minutes=5)),
        ("d3", "delivered", "b@example.org", fixed_now),
        ("c1", "click", "a@example.org", fixed_now + timedelta(seconds=3)),
    ]
    with store.session() as session:
        for sg_id, event, email, at in events:
            url = "https://www.example.org/a" if event == "click" else None
            session.add(
                WebhookEventRow(
                    sg_event_id=sg_id, event=event, email=email, edition_id=edition, url=url,
                    occurred_at=at, received_at=at,
                )
            )  # fmt: skip
    assert delivered_times(store, edition) == {"a@example.org": fixed_now}
