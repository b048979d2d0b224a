"""Planning an edition's send into work items, and taking a claimed item's recipients.

`plan` splits the subscribers an edition still has to reach into batches of at most
`batch_size` before anything is sent: each becomes ledger rows (`pending`, with the batch
number) and one open work item (publisher.store.work), one transaction per batch, so a
planner that dies half-way leaves whole batches that any worker can send. Planning again
(a resume) only adds batches for due rows outside an open item. One process plans an
edition (the one that holds its schedule slot, or `publisher send`).

`take` is the claim of a batch's ledger rows by the process that holds its item. If the
item was held before (the holder died, or lost its lease), its rows are first put in order
as `reconcile` does for a whole edition: `inflight` rows were never requested and go back
to pending; `requested` rows may have reached the provider and become `uncertain` (the
idempotent file outbox sends them again); in exactly-once mode they stay `requested` with
their provider batch id, cancelled and resent when the edition's work is done
(publisher.deliver.exactly_once). Then the pending rows of still-active followers become
`inflight`. One transaction, fenced by the lease, safe to repeat after a lost connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import Table, literal, select, update

from publisher.store import Store, dialect, work
from publisher.store.ledger import (
    INFLIGHT,
    PENDING,
    REQUESTED,
    UNCERTAIN,
    audience_rows,
    next_batch_number,
)
from publisher.store.models import DeliveryRow, SendWorkRow, SubscriberRow, UTCDateTime
from publisher.store.subscribers import follows

_DELIVERIES = cast(Table, DeliveryRow.__table__)
_SUBSCRIBERS = cast(Table, SubscriberRow.__table__)
_WORK = cast(Table, SendWorkRow.__table__)

TAKEN_OVER = "requested by a worker that stopped answering; may have been accepted, assumed sent"


def plan(
    store: Store, edition_id: int, audience: Sequence[str], *, batch_size: int, now: datetime
) -> int:
    """Write the batches still to send as work items; the number of items written."""
    planned = work.open_numbers(store, edition_id)
    number = max(next_batch_number(store, edition_id), work.max_number(store, edition_id) + 1)
    written, batch = 0, []
    for row in audience_rows(store, edition_id, audience):
        if row[4] == PENDING and row[5] in planned:
            continue  # already in an open item
        batch.append((row[0], row[4] == PENDING))
        if len(batch) >= batch_size:
            _write_again(store, edition_id, number, batch, now)
            number, written, batch = number + 1, written + 1, []
    if batch:
        _write_again(store, edition_id, number, batch, now)
        written += 1
    return written


def _write_again(
    store: Store, edition_id: int, number: int, batch: list[tuple[int, bool]], now: datetime
) -> None:
    write = partial(_write, store, edition_id, number, batch, now)
    store.retrying(write, what=f"planning batch {number}")


def _write(
    store: Store, edition_id: int, number: int, batch: list[tuple[int, bool]], now: datetime
) -> None:
    new = [sid for sid, retry in batch if not retry]
    old = [sid for sid, retry in batch if retry]
    table, subscribers = _DELIVERIES, _SUBSCRIBERS
    with store.engine.begin() as connection:
        if new:
            chosen = select(
                literal(edition_id),
                subscribers.c.id,
                literal(number),
                literal(PENDING),
                literal(0),
                literal(now, UTCDateTime()),
            ).where(subscribers.c.id.in_(new))
            columns = ["edition_id", "subscriber_id", "batch", "status", "attempts", "updated_at"]
            # a row written meanwhile (a second planner) stays in its own batch
            connection.execute(
                dialect.insert_ignore(store.engine, table).from_select(columns, chosen)
            )
        if old:
            connection.execute(
                update(table)
                .where(
                    table.c.edition_id == edition_id,
                    table.c.subscriber_id.in_(old),
                    table.c.status == PENDING,
                )
                .values(batch=number, updated_at=now)
            )
        # ignored if present: the same transaction repeated after its commit's answer was lost
        connection.execute(
            dialect.insert_ignore(store.engine, _WORK).values(
                edition_id=edition_id, number=number, status=work.OPEN, claims=0, updated_at=now
            )
        )


def take(
    store: Store,
    lease: work.Lease,
    claim: work.Claim,
    audience: Sequence[str],
    *,
    now: datetime,
    requested_to: str | None,
) -> list[tuple[Any, ...]]:
    """The recipients (id, email, name, token) of a claimed batch, now `inflight`, by id.
    `requested_to`: what a previous holder's `requested` rows become (UNCERTAIN, PENDING
    for an idempotent backend, None to leave them: exactly-once mode)."""
    edition_id, number = claim.edition_id, claim.number
    table, subscribers = _DELIVERIES, _SUBSCRIBERS
    in_batch = [table.c.edition_id == edition_id, table.c.batch == number]
    with store.engine.begin() as connection:
        work.fence(connection, lease, edition_id, number)
        connection.execute(
            update(table)
            .where(*in_batch, table.c.status == INFLIGHT)
            .values(status=PENDING, updated_at=now)
        )  # never requested (a previous holder's, or ours before a lost connection)
        if requested_to is not None:
            note = TAKEN_OVER if requested_to == UNCERTAIN else None
            connection.execute(
                update(table)
                .where(*in_batch, table.c.status == REQUESTED)
                .values(status=requested_to, error=note, updated_at=now)
            )
        columns = [subscribers.c.id, subscribers.c.email, subscribers.c.name, subscribers.c.token]
        query = (
            select(*columns, subscribers.c.topics)
            .join(subscribers, subscribers.c.id == table.c.subscriber_id)
            .where(*in_batch, table.c.status == PENDING, subscribers.c.status == "active")
            .order_by(subscribers.c.id)
        )
        rows = [
            tuple(row[:4])
            for row in connection.execute(query)
            if not audience or follows(row[4] or (), audience)
        ]
        if rows:
            connection.execute(
                update(table)
                .where(
                    *in_batch,
                    table.c.subscriber_id.in_([r[0] for r in rows]),
                    table.c.status == PENDING,
                )
                .values(status=INFLIGHT, attempts=table.c.attempts + 1, updated_at=now)
            )
    return rows
