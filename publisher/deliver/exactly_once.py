"""Exactly-once mode: a backend's optional `cancellation` capability (SendGrid with
`sendgrid.exactly_once`) and what a send does with it.

Every batch gets its own provider batch id and a delivery time `hold` ahead; the ledger
records both in the same transaction that marks the batch `requested`, before any byte of
the request is written (publisher.deliver.dispatch). A batch whose answer was never
recorded (killed before or after the provider's 202, a timeout, a dropped connection) is
then cancelled here and its recipients go back to pending, to be sent under a new batch
id: the provider discards the cancelled copy at its delivery time, so nobody gets it twice
and nobody is missed. The provider guarantees a cancel only up to `cancel_margin` before
delivery: a batch found later than that is `uncertain`, said plainly, as without this mode.
The provider keeps at most `max_cancelled` batches cancelled at one time, so cancellations
are deleted once their delivery time has passed, and a send uses few enough workers that
the batches it can leave unknown always fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from publisher.deliver.base import Scheduled
from publisher.errors import DeliveryError
from publisher.store import Store, batches
from publisher.support import killpoints


class Cancellation(Protocol):
    """What a backend offers for exactly-once mode (`DeliveryBackend.cancellation`): provider
    batch ids with a delivery time, and cancels of them. The send asks for it once
    (publisher.deliver.service) and hands it to the dispatcher."""

    @property
    def hold(self) -> timedelta:
        """How far ahead of its request a batch is scheduled."""

    @property
    def cancel_margin(self) -> timedelta:
        """A cancel is guaranteed only this long before the delivery time."""

    @property
    def max_cancelled(self) -> int:
        """Batches the provider keeps cancelled at one time."""

    def new_batch(self, send_at: datetime) -> Scheduled:
        """A new provider batch id, delivering at `send_at`."""

    def cancel(self, batch_id: str) -> None:
        """Cancel a scheduled batch; an already cancelled one counts as done."""

    def forget_cancel(self, batch_id: str) -> None:
        """Delete a cancellation whose delivery time has passed (frees a cancel slot)."""


@dataclass
class Recovery:
    cancelled: list[int] = field(default_factory=list)  # batch numbers cancelled, resent
    too_late: list[int] = field(default_factory=list)  # batch numbers now uncertain
    cleared: int = 0  # cancellations deleted (their delivery time had passed)


def clear_cancellations(store: Store, cancellation: Cancellation, *, now: datetime) -> int:
    """Delete the provider's cancellations whose delivery time has passed: the cancelled
    copies were discarded then, and each one held one of the provider's few slots."""
    count = 0
    for batch in batches.open_cancellations(store):
        if batch.send_at < now:
            killpoints.reached("clear.before")
            cancellation.forget_cancel(batch.provider_id)
            batches.cleared(store, batch, now=now)
            count += 1
    return count


def recover(
    store: Store, cancellation: Cancellation, edition_id: int, *, now: datetime
) -> Recovery:
    """Cancel every batch of the edition whose outcome is unknown; see the module text."""
    result = Recovery(cleared=clear_cancellations(store, cancellation, now=now))
    for batch in batches.unknown_batches(store, edition_id):
        if now >= batch.send_at - cancellation.cancel_margin:
            note = (
                f"batch {batch.number} ({batch.provider_id}) delivers at "
                f"{batch.send_at:%Y-%m-%d %H:%M} UTC: too late to cancel it safely, so it is "
                "assumed sent; check the provider's activity feed, and "
                f"`--resend-batch {batch.number}` if it never arrived"
            )
            batches.too_late(store, batch, note, now=now)
            result.too_late.append(batch.number)
            continue
        killpoints.reached("cancel.before")
        cancellation.cancel(batch.provider_id)
        killpoints.reached("cancel.done")
        batches.cancelled(store, batch, now=now)
        killpoints.reached("cancel.recorded")
        result.cancelled.append(batch.number)
    return result


def send_capacity(store: Store, cancellation: Cancellation, workers: int) -> tuple[int, int]:
    """(sending threads, at most `workers`; how many unknown batches a run may gather
    before it stops to cancel them) so that the provider never has to hold more than
    `max_cancelled` cancellations: those it holds already, plus one unknown batch per
    sending thread at a crash."""
    open_now = len(batches.open_cancellations(store))
    room = cancellation.max_cancelled - open_now
    if room < 2:
        raise DeliveryError(
            f"the provider holds {open_now} cancelled batches (at most "
            f"{cancellation.max_cancelled}); they are deleted once their delivery time has "
            "passed: resume the send then"
        )
    workers = max(1, min(workers, room - 1))
    return workers, room - workers
