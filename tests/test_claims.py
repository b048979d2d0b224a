"""Claiming an edition's batches (publisher.store.plan, publisher.store.work), on SQLite and
PostgreSQL: concurrent claimers cut disjoint batches that cover the audience once; a batch
whose holder died after the cut (no rows written yet) or after writing its rows is taken
over once its lease lapsed; a dead holder's `requested` rows become uncertain (never sent
again), pending for the idempotent outbox, or stay requested (exactly-once mode); a holder
whose batch was taken over can no longer record it; a claim whose commit answer was lost is
taken back by its own holder."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import insert, select

from publisher.store import Store, ledger, plan, work
from publisher.store.ledger import PENDING, REQUESTED, UNCERTAIN
from publisher.store.models import DeliveryRow, SendWorkRow, SubscriberRow
from tests.servers.data import add_edition, add_subscribers


class Clock:
    """Epoch seconds the test moves by hand (leases are read against it)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _sending_edition(store: Store, now: datetime, subscribers: int, **kw: object) -> int:
    add_subscribers(store, now, subscribers, **kw)  # type: ignore[arg-type]
    edition = add_edition(store, now)
    ledger.set_edition_status(store, edition, "sending")
    plan.start_round(store, edition, now=now)
    return edition


def _drain(
    store: Store,
    lease: work.Lease,
    edition: int,
    now: datetime,
    *,
    audience: tuple[str, ...] = (),
    batch_size: int = 10,
    requested_to: str | None = UNCERTAIN,
    mine: set[int] | None = None,
) -> list[plan.Claimed]:
    """Claim until nothing is left, as a sending process does (`mine`: what it yielded)."""
    got: list[plan.Claimed] = []
    mine = set() if mine is None else mine
    while claimed := plan.claim_next(
        store, lease, edition, audience, batch_size=batch_size, now=now,
        requested_to=requested_to, mine=mine,
    ):  # fmt: skip
        got.append(claimed)
        mine.add(claimed.number)
    return got


def _ids(store: Store) -> list[int]:
    with store.session() as session:
        return sorted(session.scalars(select(SubscriberRow.id)))


def _statuses(store: Store, edition: int) -> dict[int, str]:
    with store.session() as session:
        rows = session.execute(
            select(DeliveryRow.subscriber_id, DeliveryRow.status).where(
                DeliveryRow.edition_id == edition
            )
        )
        return dict(rows.all())


def test_concurrent_claimers_cut_disjoint_batches_covering_the_audience_once(store, fixed_now):
    edition = _sending_edition(store, fixed_now, 230)
    clock, results, errors = Clock(), {}, []

    def claimer(name: str) -> None:
        try:
            lease = work.Lease(f"host:{name}:x", 60.0, clock)
            results[name] = _drain(store, lease, edition, fixed_now, batch_size=7)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(str(i),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    sent = Counter(row[0] for got in results.values() for claim in got for row in claim.rows)
    assert sorted(sent) == _ids(store) and set(sent.values()) == {1}  # everyone, once
    numbers = [claim.number for got in results.values() for claim in got]
    assert len(numbers) == len(set(numbers)) == 33  # 230 in batches of at most 7
    assert all(len(claim.rows) <= 7 for got in results.values() for claim in got)
    assert set(_statuses(store, edition).values()) == {"inflight"}
    with store.session() as session:
        holders = dict(session.execute(select(SendWorkRow.number, SendWorkRow.holder)).all())
    for name, got in results.items():  # each item is held by the one who got it
        assert {holders[claim.number] for claim in got} <= {f"host:{name}:x"}


def test_only_followers_of_the_audience_are_claimed(store, fixed_now):
    add_subscribers(store, fixed_now, 15, topics=("housing",))
    edition = _sending_edition(store, fixed_now, 15, start=15, topics=("wages",))
    lease = work.Lease("host:1:x", 60.0, Clock())
    got = _drain(store, lease, edition, fixed_now, audience=("housing",), batch_size=4)
    emails = [row[1] for claim in got for row in claim.rows]
    assert len(emails) == 15 and all(int(e.split("@")[0][6:]) < 15 for e in emails)
    assert [len(claim.rows) for claim in got] == [4, 4, 4, 3]


@pytest.mark.parametrize("requested_to", [UNCERTAIN, PENDING, None])
def test_batches_of_a_holder_that_died_are_taken_over_when_its_lease_lapsed(
    store, fixed_now, requested_to
):
    edition = _sending_edition(store, fixed_now, 45)
    clock = Clock()
    dead = work.Lease("elsewhere:1:dead", 60.0, clock)
    cut = plan._cut(store, dead, edition, (), 10, fixed_now)  # died before writing rows
    assert cut is not None and cut[0] == 1
    second = plan.claim_next(store, dead, edition, (), batch_size=10, now=fixed_now,
                             requested_to=requested_to)  # fmt: skip
    third = plan.claim_next(store, dead, edition, (), batch_size=10, now=fixed_now,
                            requested_to=requested_to)  # fmt: skip
    assert second is not None and third is not None
    first_id, last_id = third.rows[0][0], third.rows[-1][0]
    ledger.mark_range(store, edition, third.number, first_id, last_id, REQUESTED,
                      now=fixed_now, lease=dead)  # fmt: skip  # ... and the request was written
    me, mine = work.Lease("here:2:me", 60.0, clock), set[int]()
    early = _drain(store, me, edition, fixed_now, requested_to=requested_to, mine=mine)
    assert [c.number for c in early] == [4, 5]  # the rest; the dead one's are still held
    clock.now += 61  # the dead holder's leases lapse; ours are in `mine`: never taken back
    late = _drain(store, me, edition, fixed_now, requested_to=requested_to, mine=mine)
    assert all(c.taken_over for c in late)
    sent = Counter(row[0] for claim in early + late for row in claim.rows)
    third_ids = {row[0] for row in third.rows}
    statuses = _statuses(store, edition)
    if requested_to == PENDING:  # the idempotent outbox writes them again
        assert sorted(sent) == _ids(store)
    else:  # may have reached the provider: never sent again
        assert sorted(sent) == sorted(set(_ids(store)) - third_ids)
        left = REQUESTED if requested_to is None else UNCERTAIN
        assert {statuses[i] for i in third_ids} == {left}
    assert set(sent.values()) == {1}, [(c.number, [r[0] for r in c.rows]) for c in early + late]
    assert {c.number for c in late} == ({1, 2, 3} if requested_to == PENDING else {1, 2})
    assert work.open_items(store, edition) == len(early) + len(late)  # none left behind


def test_a_holder_whose_batch_was_taken_over_can_no_longer_record_it(store, fixed_now):
    edition = _sending_edition(store, fixed_now, 5)
    clock = Clock()
    slow = work.Lease("elsewhere:1:slow", 60.0, clock)
    mine = plan.claim_next(store, slow, edition, (), batch_size=10, now=fixed_now,
                           requested_to=UNCERTAIN)  # fmt: skip
    assert mine is not None and len(mine.rows) == 5
    clock.now += 61  # it lost the database longer than its lease
    other = work.Lease("here:2:other", 60.0, clock)
    taken = _drain(store, other, edition, fixed_now)
    assert [c.number for c in taken] == [mine.number]
    first, last = mine.rows[0][0], mine.rows[-1][0]
    with pytest.raises(work.LeaseLost):
        ledger.mark_range(store, edition, mine.number, first, last, REQUESTED,
                          now=fixed_now, lease=slow)  # fmt: skip
    with pytest.raises(work.LeaseLost):
        ledger.finish_batch(store, edition, mine.number, failed={}, now=fixed_now, lease=slow)
    assert set(_statuses(store, edition).values()) == {"inflight"}  # the new holder's to send
    ledger.finish_batch(store, edition, mine.number, failed={}, now=fixed_now, lease=other)
    assert set(_statuses(store, edition).values()) == {"sent"}


def test_a_claim_whose_answer_was_lost_is_taken_back_by_its_holder(store, fixed_now):
    edition = _sending_edition(store, fixed_now, 25)
    me = work.Lease("here:1:me", 60.0, Clock())
    lost = plan.claim_next(store, me, edition, (), batch_size=10, now=fixed_now,
                           requested_to=UNCERTAIN)  # fmt: skip  # committed; answer lost
    assert lost is not None
    got = _drain(store, me, edition, fixed_now)  # `mine` never had the lost one
    assert [c.number for c in got] == [2, 3, 1]
    assert got[-1].rows == lost.rows


def test_a_row_written_by_another_between_the_cut_and_the_write_stays_theirs(store, fixed_now):
    edition = _sending_edition(store, fixed_now, 6)
    me = work.Lease("here:1:me", 60.0, Clock())
    cut = plan._cut(store, me, edition, (), 10, fixed_now)
    assert cut is not None
    number, due = cut
    taken, moved = due[1][0], due[3][0]
    with store.engine.begin() as connection:  # another claimer got there first
        connection.execute(
            insert(DeliveryRow).values(
                edition_id=edition, subscriber_id=taken, batch=99, status="inflight",
                attempts=1, updated_at=fixed_now,
            )
        )  # fmt: skip
        connection.execute(
            insert(DeliveryRow).values(
                edition_id=edition, subscriber_id=moved, batch=98, status="sent",
                attempts=1, updated_at=fixed_now,
            )
        )  # fmt: skip
    rows = plan._write_rows(store, me, edition, number, due, fixed_now)
    assert [row[0] for row in rows] == [d[0] for d in due if d[0] not in (taken, moved)]
    statuses = _statuses(store, edition)
    assert statuses[taken] == "inflight" and statuses[moved] == "sent"
    with store.session() as session:
        batches = dict(session.execute(select(DeliveryRow.subscriber_id, DeliveryRow.batch)).all())
    assert batches[taken] == 99 and batches[moved] == 98  # left as the other wrote them


def test_a_process_that_stops_cleanly_gives_its_batches_back_at_once(store, fixed_now):
    """LeaseHeartbeat's end (a SIGTERM'd worker, a stopped send) releases what the process
    still holds: another claimer takes it with no lease to wait out."""
    from publisher.deliver.workers import LeaseHeartbeat

    edition = _sending_edition(store, fixed_now, 8)
    clock = Clock()
    stopping = work.Lease("here:1:stopping", 60.0, clock)
    with LeaseHeartbeat(store, stopping):
        held = plan.claim_next(store, stopping, edition, (), batch_size=10, now=fixed_now,
                               requested_to=UNCERTAIN)  # fmt: skip
    assert held is not None and len(held.rows) == 8
    other = work.Lease("here:2:other", 60.0, clock)  # the clock has not moved
    taken = _drain(store, other, edition, fixed_now)
    assert [(c.number, c.rows) for c in taken] == [(held.number, held.rows)]
