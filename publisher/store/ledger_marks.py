"""A batch's progress and outcome in the ledger: `requested` right before its request is
written, back to `inflight` when refused (mark_range), then sent, failed, bounced or
uncertain once answered (finish_batch); exactly-once mode's `delivery_batches` rows with
them. The names are on the surface as `publisher.store.ledger`'s (re-exported there)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, bindparam, insert, update
from sqlalchemy.engine import Connection

from publisher.store import Store, dialect, work
from publisher.store.ledger_states import (
    BOUNCED,
    FAILED,
    INFLIGHT,
    REQUESTED,
    SENT,
    UNCERTAIN,
    UNFINISHED,
)
from publisher.store.models import DeliveryBatchRow, DeliveryRow, SubscriberRow
from publisher.store.work import Lease

# the names are publisher.store.ledger's (its __all__), not this module's own
__all__: list[str] = []

# Core tables (typed as Table: the ORM declares __table__ as a plain FromClause)
_DELIVERIES = cast(Table, DeliveryRow.__table__)
_SUBSCRIBERS = cast(Table, SubscriberRow.__table__)
_BATCHES = cast(Table, DeliveryBatchRow.__table__)

# Built once (SMTP calls mark_range once a message: building the statement each time cost
# more than running it, bench/README.md "SMTP at 18 KB").
_MARK_SENT = (
    update(_DELIVERIES)
    .where(
        _DELIVERIES.c.edition_id == bindparam("e"),
        _DELIVERIES.c.subscriber_id.in_(bindparam("ids", expanding=True)),
        _DELIVERIES.c.status == bindparam("was"),
    )
    .values(status=SENT, updated_at=bindparam("now", type_=_DELIVERIES.c.updated_at.type))
)
_MARK_RANGE = (
    update(_DELIVERIES)
    .where(
        _DELIVERIES.c.edition_id == bindparam("e"),
        _DELIVERIES.c.subscriber_id >= bindparam("lo"),
        _DELIVERIES.c.subscriber_id <= bindparam("hi"),
        _DELIVERIES.c.batch == bindparam("n"),
        _DELIVERIES.c.status == bindparam("was"),
    )
    .values(
        status=bindparam("to"), updated_at=bindparam("now", type_=_DELIVERIES.c.updated_at.type)
    )
)


def mark_range(
    store: Store,
    edition_id: int,
    batch: int,
    first: int,
    last: int,
    status: str,
    *,
    now: datetime,
    provider_id: str | None = None,
    send_at: datetime | None = None,
    sent: Sequence[int] = (),
    batch_rows: bool = False,
    lease: Lease | None = None,
) -> int:
    """`requested` (from `inflight`) right before the backend writes the request, or
    `inflight` (from `requested`) after the provider definitely refused it: one UPDATE for
    the rows of the batch whose subscriber id is in [first, last] (a batch, or a half of
    one after 413: recipients go out in subscriber-id order, so a part is a range).
    `provider_id`/`send_at` (exactly-once mode, with `requested`): the provider batch id is
    recorded in the same transaction, before any byte of the request is written. `sent`:
    subscribers the backend reported accepted since its previous write (SMTP, one message
    at a time), recorded `sent` in the same transaction. `batch_rows`: the send keeps
    `delivery_batches` rows (exactly-once mode); a refused batch's is marked so. `lease`:
    the batch is a work item this process must still hold (else LeaseLost, nothing
    written: the batch is not sent)."""
    old = INFLIGHT if status == REQUESTED else REQUESTED
    with store.engine.begin() as connection:
        if lease is not None:
            work.fence(connection, lease, edition_id, batch)
        if sent:
            connection.execute(
                _MARK_SENT, {"e": edition_id, "ids": list(sent), "was": REQUESTED, "now": now}
            )
        where = {"e": edition_id, "lo": first, "hi": last, "n": batch, "was": old}
        result = connection.execute(_MARK_RANGE, {**where, "to": status, "now": now})
        if provider_id is not None:
            _batch_row(connection, edition_id, batch, now, REQUESTED, provider_id, send_at)
        elif status == INFLIGHT and batch_rows:
            _batch_status(connection, edition_id, batch, "refused", now)
    return dialect.rowcount(result)


def _batch_row(
    connection: Connection,
    edition_id: int,
    number: int,
    now: datetime,
    status: str,
    provider_id: str | None,
    send_at: datetime | None,
) -> None:
    values: dict[str, object] = {"provider_id": provider_id, "send_at": send_at}
    if not _batch_status(connection, edition_id, number, status, now, **values):
        connection.execute(
            insert(_BATCHES).values(
                edition_id=edition_id,
                number=number,
                cancel_cleared=False,
                status=status,
                updated_at=now,
                **values,
            )
        )


def _batch_status(
    connection: Connection,
    edition_id: int,
    number: int,
    status: str,
    now: datetime,
    **values: object,
) -> int:
    table = _BATCHES
    result = connection.execute(
        update(table)
        .where(table.c.edition_id == edition_id, table.c.number == number)
        .values(**{"status": status, "updated_at": now, **values})
    )
    return dialect.rowcount(result)


def finish_batch(
    store: Store,
    edition_id: int,
    batch: int,
    *,
    failed: dict[int, str],
    bounced: dict[int, str] | None = None,
    uncertain: Sequence[int] = (),
    keep_requested: Sequence[int] = (),
    batch_rows: bool = False,
    lease: Lease | None = None,
    now: datetime,
) -> None:
    """Record a batch's outcome once the provider answered: `failed` rows with their error,
    `bounced` ones (the address was refused for good: the subscriber becomes `bounced` with
    the reason, never sent to again), `uncertain` ones (no answer), `keep_requested` ones
    (exactly-once mode: outcome unknown, cancelled and resent later), every other row of
    the batch `sent`. `batch_rows`: the send keeps `delivery_batches` rows (exactly-once
    mode), mark this one accepted. `lease`: the work item, done in the same transaction
    (LeaseLost, nothing written, if another process took it over). One transaction."""
    table = _DELIVERIES
    by_subscriber = and_(
        table.c.edition_id == edition_id, table.c.subscriber_id == bindparam("sid")
    )
    with store.session() as session:
        connection = session.connection()
        if lease is not None:
            work.complete(connection, lease, edition_id, batch, now)
        for status, errors in ((FAILED, failed), (BOUNCED, bounced or {})):
            if errors:
                connection.execute(
                    update(table)
                    .where(by_subscriber)
                    .values(status=status, error=bindparam("err"), updated_at=now),
                    [{"sid": sid, "err": err[:2000]} for sid, err in errors.items()],
                )
        if bounced:
            _bounce_subscribers(connection, bounced, now)
        if uncertain:
            connection.execute(
                update(table)
                .where(by_subscriber)
                .values(
                    status=UNCERTAIN,
                    updated_at=now,
                    error="no answer (timed out, or dropped after sending); may have been accepted",
                ),
                [{"sid": sid} for sid in uncertain],
            )
        connection.execute(
            update(table)
            .where(
                table.c.edition_id == edition_id,
                table.c.batch == batch,
                table.c.status.in_(UNFINISHED),
                table.c.subscriber_id.not_in(list(keep_requested)),
            )
            .values(status=SENT, error=None, updated_at=now)
        )
        if batch_rows and not keep_requested:
            _batch_status(connection, edition_id, batch, "accepted", now)


def _bounce_subscribers(connection: Connection, bounced: dict[int, str], now: datetime) -> None:
    subscribers = _SUBSCRIBERS
    connection.execute(
        update(subscribers)
        .where(subscribers.c.id == bindparam("sid"), subscribers.c.status == "active")
        .values(status="bounced", status_reason=bindparam("why"), updated_at=now),
        [{"sid": sid, "why": f"bounced: {why}"[:2000]} for sid, why in bounced.items()],
    )
