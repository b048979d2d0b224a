"""One batch through a backend: retry what is worth retrying (429, 5xx, connection refused
before the request was written), split on 413, fail on refusals, never resend a request that
may have been accepted; and the hooks through which the backend tells the ledger when its
bytes are about to be written (see publisher.deliver.dispatch)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from publisher.deliver.base import (
    BOUNCED,
    DeliveryBackend,
    PermanentError,
    Recipient,
    Scheduled,
    TooLargeError,
    TransientError,
    UncertainError,
)
from publisher.store.ledger import INFLIGHT, REQUESTED
from publisher.support import killpoints
from publisher.support.screen import count

# mark(recipients, status, scheduled, accepted): record in the ledger that a (part of a)
# batch is about to be requested (exactly-once mode: under this provider batch), or was
# definitely refused; `accepted`: earlier parts the provider took meanwhile, recorded `sent`
# in the same transaction. Called from worker threads.
Mark = Callable[[Sequence[Recipient], str, Scheduled | None, Sequence[Recipient]], None]
# Exactly-once mode: a new provider batch id for a batch (or a part of one) about to be sent
# (a Cancellation's new_batch at the batch's delivery time, publisher.deliver.dispatch).
Schedule = Callable[[], Scheduled]

P = TypeVar("P")
E = TypeVar("E")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    max_failed_batches: int = 3

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        """Exponential backoff with jitter; never sooner than the provider's Retry-After."""
        backoff = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        jittered = backoff * (0.5 + rng() / 2)
        return max(jittered, retry_after) if retry_after is not None else jittered


@dataclass
class Outcome:
    failed: dict[int, str] = field(default_factory=dict)
    uncertain: list[int] = field(default_factory=list)
    batch_error: str | None = None  # the whole batch failed (counts towards pausing)
    requests: int = 0
    scheduled: Scheduled | None = None  # exactly-once mode: the batch's provider batch id
    too_large: bool = False  # refused as too large even for one recipient

    def merge(self, other: Outcome) -> Outcome:
        self.too_large = self.too_large or other.too_large
        self.failed.update(other.failed)
        self.uncertain.extend(other.uncertain)
        self.batch_error = self.batch_error or other.batch_error
        self.requests += other.requests
        self.scheduled = self.scheduled or other.scheduled
        return self

    def split_failed(self) -> tuple[dict[int, str], dict[int, str]]:
        """(failed, bounced): a bounce is a permanent refusal of the address."""
        failed, bounced = {}, {}
        for sid, error in self.failed.items():
            if error.startswith(BOUNCED):
                bounced[sid] = error[len(BOUNCED) :]
            else:
                failed[sid] = error
        return failed, bounced


def send_with_retries(
    backend: DeliveryBackend[P, E],
    prepared: P,
    recipients: Sequence[Recipient],
    batch_key: str,
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    mark: Mark | None = None,
    encoded: E | None = None,
    schedule: Schedule | None = None,
) -> Outcome:
    """One batch: retry transient errors, split on 413, fail on refusals, never resend an
    uncertain request. `mark` (the ledger) hears `requested` right before the backend
    writes the batch (through its hooks) and `inflight` after every definite refusal, so a
    crash during a backoff sleep resends. `encoded`: the batch's request, built beforehand
    by `backend.encode` (every attempt sends it; the halves of a 413 are built afresh).
    `schedule`: exactly-once mode, the batch gets a provider batch id from it."""
    everyone = [r.subscriber_id for r in recipients]
    hooks = _Hooks(recipients, mark)
    scheduled: Scheduled | None = None
    for attempt in range(1, policy.max_attempts + 1):
        try:
            if schedule is not None and scheduled is None:
                killpoints.reached("batch_id.before")
                scheduled = schedule()
                killpoints.reached("batch_id.created")
            hooks.scheduled = scheduled
            if encoded is None:
                encoded = backend.encode(prepared, recipients, batch_key)
            failed = backend.send(prepared, encoded, recipients, hooks, scheduled)
            return Outcome(failed=failed, requests=attempt, scheduled=scheduled)
        except TransientError as exc:
            if mark:
                mark(recipients, INFLIGHT, None, ())  # refused: nothing of it was accepted
            if attempt == policy.max_attempts:
                message = f"{exc} (gave up after {count(attempt, 'attempt')})"
                return Outcome(
                    dict.fromkeys(everyone, message), batch_error=message, requests=attempt
                )
            killpoints.reached("retry.sleep")
            sleep(policy.delay(attempt, exc.retry_after, rng))
        except TooLargeError as exc:
            if mark:
                mark(recipients, INFLIGHT, None, ())
            if len(recipients) == 1:  # the message itself is too large: like any refusal
                message = f"{exc} (even for one recipient)"  # of the provider, it counts
                return Outcome(  # towards pausing the send
                    {everyone[0]: message}, batch_error=message, requests=attempt, too_large=True
                )
            return _halves(backend, prepared, recipients, batch_key, policy, attempt,
                           sleep=sleep, rng=rng, mark=mark, schedule=schedule)  # fmt: skip
        except PermanentError as exc:
            if mark:
                mark(
                    recipients, INFLIGHT, None, ()
                )  # refused: resend after a crash, never assume sent
            return Outcome(
                dict.fromkeys(everyone, str(exc)), batch_error=str(exc), requests=attempt
            )
        except UncertainError as exc:  # left `requested`: assumed sent, or cancelled
            uncertain = everyone if exc.uncertain is None else exc.uncertain
            return Outcome(
                failed=exc.failed, uncertain=uncertain, requests=attempt, scheduled=scheduled
            )
    raise AssertionError("unreachable")


def _halves(
    backend: DeliveryBackend[P, E],
    prepared: P,
    recipients: Sequence[Recipient],
    batch_key: str,
    policy: RetryPolicy,
    attempt: int,
    **options: Any,
) -> Outcome:
    """A batch refused as too large (413), sent as two halves. When the first half came
    down to one recipient still too large, the second is not tried (each try would split
    down to one recipient again): it fails unsent, for `--resume`, after about
    log2(batch size) requests instead of twice the batch size."""
    half = len(recipients) // 2
    first = send_with_retries(backend, prepared, recipients[:half], batch_key, policy, **options)
    if first.too_large:
        error = first.batch_error or "too large"
        rest = dict.fromkeys((r.subscriber_id for r in recipients[half:]), error)
        return first.merge(Outcome(rest, requests=attempt))
    second = send_with_retries(backend, prepared, recipients[half:], batch_key, policy, **options)
    return first.merge(second).merge(Outcome(requests=attempt))


class _Hooks:
    """The ledger's side of a backend's send: `writing` marks the part `requested` (with
    the batch id in exactly-once mode) and, in the same transaction, what was `accepted`
    since as `sent`: one transaction per SMTP message, and still at most one message per
    connection in doubt (the one accepted last, until the next is written or the batch is
    recorded)."""

    def __init__(self, recipients: Sequence[Recipient], mark: Mark | None) -> None:
        self.recipients = recipients
        self.mark = mark
        self.scheduled: Scheduled | None = None
        self._accepted: list[Recipient] = []

    def writing(self, part: Sequence[Recipient]) -> None:
        if self.mark:
            self.mark(part, REQUESTED, self.scheduled, self._accepted)
        self._accepted = []
        killpoints.reached("request.before_write")

    def accepted(self, part: Sequence[Recipient]) -> None:
        self._accepted.extend(part)
