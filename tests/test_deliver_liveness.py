"""A long send keeps a claim without a lease alive (`lease_until` NULL: claimed before slot
leases): ledger progress counts as the slot's heartbeat, so another daemon does not take over
a send that has run for more than 2 hours. Claims with a lease are kept alive by the daemon's
lease heartbeat instead (publisher/schedule/slot_lease.py, tests/test_slot_leases.py)."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select, update

from publisher.deliver import deliver_edition
from publisher.deliver.backends.registry import make_backend
from publisher.deliver.dispatch import Dispatcher, RetryPolicy
from publisher.deliver.service import build_message
from publisher.deliver.workers import claimed
from publisher.store import ledger, plan, processes, work
from publisher.store import schedule_state as state
from publisher.store.editions import get_edition
from publisher.store.models import DeliveryRow, EditionRow
from tests.conftest import present
from tests.servers.data import add_edition, add_subscribers, config_text

OTHER = "another-host:4242"  # a daemon on another machine: its pid cannot be checked


def _edition_for_slot(store, now, slot) -> int:
    edition = add_edition(store, now)
    with store.session() as session:
        session.execute(update(EditionRow).where(EditionRow.id == edition).values(slot=slot))
    return edition


def test_a_send_still_writing_the_ledger_keeps_its_slot(store, make_config, fixed_now):
    slot = fixed_now
    assert state.claim_slot(store, "weekly", slot, owner=OTHER, now=slot)
    edition = _edition_for_slot(store, fixed_now, slot)
    add_subscribers(store, fixed_now, 3)
    # the other daemon's send wrote its latest batch 2.5 h after it claimed the slot
    deliver_edition(
        make_config(config_text("file")), store, edition, now=slot + timedelta(hours=2, minutes=30)
    )
    me = processes.this_process()
    three_hours = slot + timedelta(hours=3)
    assert not state.claim_slot(store, "weekly", slot, owner=me, now=three_hours)
    assert state.unfinished_slots(store, "weekly", owner=me, now=three_hours) == []
    quiet = slot + timedelta(hours=4, minutes=31)  # no ledger progress for over 2 h: stale
    assert state.unfinished_slots(store, "weekly", owner=me, now=quiet) == [slot]
    assert state.claim_slot(store, "weekly", slot, owner=me, now=quiet)


def test_a_slot_without_any_progress_is_stale_after_2_hours(store, fixed_now):
    slot = fixed_now
    assert state.claim_slot(store, "weekly", slot, owner=OTHER, now=slot)
    _edition_for_slot(store, fixed_now, slot)  # composed, nothing sent yet
    me = processes.this_process()
    assert not state.claim_slot(store, "weekly", slot, owner=me, now=slot + timedelta(hours=1))
    assert state.claim_slot(store, "weekly", slot, owner=me, now=slot + timedelta(hours=3))


def _claimed(store, edition, dispatcher):
    """The edition planned into work items and claimed as a send does."""
    lease = work.Lease(processes.new_holder(), 60.0, time.time)
    dispatcher.lease = lease
    ledger.set_edition_status(store, edition, "sending")
    plan.start_round(store, edition, now=dispatcher.now)
    return claimed(
        store, lease, edition, [], batch_size=2, now=dispatcher.stamp, requested=None, wait=True
    )


def test_ledger_rows_are_stamped_with_the_time_the_send_has_run(store, make_config, fixed_now):
    """The dispatcher writes `now` plus the seconds since it started, so the ledger moves
    forward during a long send (here: a fake clock, one hour per reading)."""
    config = make_config(config_text("file", delivery="  file:\n    batch_size: 2\n"))
    add_subscribers(store, fixed_now, 6)
    edition = add_edition(store, fixed_now)
    hours = iter(range(0, 3600 * 100, 3600))
    message = build_message(config, present(get_edition(store, edition)), now=fixed_now)
    dispatcher = Dispatcher(
        store,
        make_backend(config),
        message,
        RetryPolicy(),
        fixed_now,
        elapsed=lambda: float(next(hours)),
    )
    result = dispatcher.run(_claimed(store, edition, dispatcher))
    assert result.sent == 6
    with store.session() as session:
        latest = session.scalar(
            select(func.max(DeliveryRow.updated_at)).where(DeliveryRow.edition_id == edition)
        )
    assert state._aware(latest) >= fixed_now + timedelta(hours=3)
