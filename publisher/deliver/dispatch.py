"""The dispatcher: stream the audience in batches, claim each batch in the ledger, send the
batches concurrently through a backend, retry what is worth retrying, record the outcome.

The calling thread claims and finishes batches. A batch is claimed (`inflight`) just before
it is handed to an idle worker, so at most `workers` batches are ever in flight. The worker
marks it `requested` (one UPDATE) right before each attempt writes the request, and back to
`inflight` when the provider definitely refused it (429, 5xx, connection refused), before it
sleeps out the backoff: after a crash only `requested` rows may have reached the provider
(see publisher.store.ledger).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from publisher.deliver.base import (
    DeliveryBackend,
    Message,
    PermanentError,
    Recipient,
    TooLargeError,
    TransientError,
    UncertainError,
)
from publisher.store import Store, ledger
from publisher.store.ledger import INFLIGHT, REQUESTED, Due

# mark(recipients, status): record in the ledger that a (part of a) batch is about to be
# requested, or was definitely refused; called from worker threads.
Mark = Callable[[Sequence[Recipient], str], None]


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

    def merge(self, other: Outcome) -> Outcome:
        self.failed.update(other.failed)
        self.uncertain.extend(other.uncertain)
        self.batch_error = self.batch_error or other.batch_error
        self.requests += other.requests
        return self


@dataclass
class DispatchResult:
    sent: int = 0
    failed: int = 0
    uncertain: int = 0
    batches: int = 0
    requests: int = 0
    failed_batches: int = 0
    paused: bool = False
    last_error: str | None = None


def send_with_retries(
    backend: DeliveryBackend,
    prepared: Any,
    recipients: Sequence[Recipient],
    batch_key: str,
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    mark: Mark | None = None,
) -> Outcome:
    """One batch: retry transient errors, split on 413, fail on refusals, never resend an
    uncertain request. `mark` (the ledger) hears `requested` before every attempt and
    `inflight` after every definite refusal, so a crash during a backoff sleep resends."""
    everyone = [r.subscriber_id for r in recipients]
    for attempt in range(1, policy.max_attempts + 1):
        if mark:
            mark(recipients, REQUESTED)
        try:
            return Outcome(failed=backend.send_batch(prepared, recipients, batch_key=batch_key),
                           requests=attempt)
        except TransientError as exc:
            if mark:
                mark(recipients, INFLIGHT)  # refused: nothing of it was accepted
            if attempt == policy.max_attempts:
                message = f"{exc} (gave up after {attempt} attempts)"
                return Outcome(dict.fromkeys(everyone, message), batch_error=message,
                               requests=attempt)
            sleep(policy.delay(attempt, exc.retry_after, rng))
        except TooLargeError as exc:
            if mark:
                mark(recipients, INFLIGHT)
            if len(recipients) == 1:
                return Outcome({everyone[0]: str(exc)}, requests=attempt)
            half = len(recipients) // 2
            first = send_with_retries(backend, prepared, recipients[:half], batch_key, policy,
                                      sleep=sleep, rng=rng, mark=mark)
            second = send_with_retries(backend, prepared, recipients[half:], batch_key, policy,
                                       sleep=sleep, rng=rng, mark=mark)
            return first.merge(second).merge(Outcome(requests=attempt))
        except PermanentError as exc:
            if mark:
                mark(recipients, INFLIGHT)  # refused: resend after a crash, never assume sent
            return Outcome(dict.fromkeys(everyone, str(exc)), batch_error=str(exc),
                           requests=attempt)
        except UncertainError as exc:  # left `requested`: assumed sent after a crash
            uncertain = everyone if exc.uncertain is None else exc.uncertain
            return Outcome(failed=exc.failed, uncertain=uncertain, requests=attempt)
    raise AssertionError("unreachable")


def batched(items: Iterable[Due], size: int) -> Iterator[list[Due]]:
    batch: list[Due] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class Dispatcher:
    store: Store
    backend: DeliveryBackend
    message: Message
    policy: RetryPolicy
    now: datetime
    progress: Callable[[int], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    elapsed: Callable[[], float] = time.monotonic  # ledger times: `now` + time since start
    result: DispatchResult = field(default_factory=DispatchResult)
    _started: float = field(default=0.0, init=False)

    def stamp(self) -> datetime:
        """The time ledger rows are written with: the caller's `now` advanced by the seconds
        this send has run (so the ledger shows progress: schedule_state reads it as liveness;
        the caller's clock stays the only source of the date)."""
        return self.now + timedelta(seconds=self.elapsed() - self._started)

    def run(self, due: Iterable[Due]) -> DispatchResult:
        self._started = self.elapsed()
        prepared = self.backend.prepare(self.message)
        number = ledger.next_batch_number(self.store, self.message.edition_id)
        running: dict[Future, tuple[int, int]] = {}  # future -> (batch number, size)
        with ThreadPoolExecutor(max_workers=self.backend.workers) as pool:
            try:
                for batch in batched(due, self.backend.batch_size):
                    while len(running) >= self.backend.workers:
                        self._collect(running, wait(running, return_when=FIRST_COMPLETED).done)
                    if self.result.failed_batches >= self.policy.max_failed_batches:
                        self.result.paused = True
                        break
                    running[self._submit(pool, prepared, number, batch)] = (number, len(batch))
                    number += 1
            finally:  # also on Ctrl-C: record what the provider already answered
                while running:
                    self._collect(running, wait(running, return_when=FIRST_COMPLETED).done)
        if self.result.failed_batches >= self.policy.max_failed_batches:
            self.result.paused = True
        return self.result

    def _submit(self, pool: ThreadPoolExecutor, prepared: Any, number: int,
                batch: list[Due]) -> Future:
        edition = self.message.edition_id
        ledger.claim_batch(self.store, edition, number, batch, now=self.stamp())
        recipients = sorted(  # by id: a slice of the batch is a range (see ledger.mark_range)
            (Recipient(d.subscriber_id, d.email, d.name, d.token, self.message.public_url)
             for d in batch),
            key=lambda r: r.subscriber_id,
        )
        self.result.batches += 1

        def mark(part: Sequence[Recipient], status: str) -> None:
            ledger.mark_range(self.store, edition, number, part[0].subscriber_id,
                              part[-1].subscriber_id, status, now=self.stamp())

        return pool.submit(send_with_retries, self.backend, prepared, recipients,
                           f"{edition}-{number}", self.policy, sleep=self.sleep, mark=mark)

    def _collect(self, running: dict[Future, tuple[int, int]], done: Iterable[Future]) -> None:
        for future in done:
            number, size = running.pop(future)
            outcome: Outcome = future.result()
            ledger.finish_batch(self.store, self.message.edition_id, number,
                                failed=outcome.failed, uncertain=outcome.uncertain,
                                now=self.stamp())
            self._count(outcome, size)

    def _count(self, outcome: Outcome, size: int) -> None:
        sent = size - len(outcome.failed) - len(outcome.uncertain)
        self.result.sent += sent
        if self.progress:
            self.progress(size)
        self.result.requests += outcome.requests
        self.result.failed += len(outcome.failed)
        self.result.uncertain += len(outcome.uncertain)
        if outcome.batch_error:
            self.result.failed_batches += 1
            self.result.last_error = outcome.batch_error
        elif outcome.failed:
            self.result.last_error = next(iter(outcome.failed.values()))
