"""`publisher worker`: a process that sends batches of every edition being sent, beside the
daemon (or `publisher send`) that planned them, on this host or another one.

It looks for editions whose status is `sending` with open work items, claims their batches
one after another (publisher.deliver.workers.claimed, never waiting for batches other
processes hold), sends each through the configured backend and records it in the ledger,
exactly as the daemon's own send does. The process that started the edition's send
finishes it (its status, its summary) once every batch is done; a worker never does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from publisher.config import PublisherConfig
from publisher.deliver.backends.registry import make_backend
from publisher.deliver.base import DeliveryBackend
from publisher.deliver.broadcast_message import is_broadcast
from publisher.deliver.dispatch import Dispatcher
from publisher.deliver.service import build_message, edition_audience, policy_from
from publisher.deliver.workers import LeaseHeartbeat, claims_for
from publisher.errors import ConfigError, DeliveryError
from publisher.store import Store, numbers, work
from publisher.store.editions import get_edition
from publisher.store.processes_seen import Presence

LOG = logging.getLogger(__name__)


@dataclass
class WorkerReport:
    batches: int = 0
    sent: int = 0
    editions: set[int] | None = None


def run_worker(
    config: PublisherConfig,
    store: Store,
    lease: work.Lease,
    *,
    clock: Callable[[], datetime],
    should_stop: Callable[[], bool],
    idle_exit: float | None = None,
    poll: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> WorkerReport:
    """Send until `should_stop()`, or until nothing was there to send for `idle_exit`
    seconds (None: forever)."""
    backend = make_backend(config)
    if backend.cancellation is not None:  # exactly-once mode
        backend.close()
        raise DeliveryError(
            "sendgrid.exactly_once: the daemon's own send does the cancelling; "
            "`publisher worker` is for the default mode"
        )
    report, idle_since = WorkerReport(editions=set()), time.monotonic()
    try:
        # the store sees this worker alive while it runs (the dashboard lists it)
        with LeaseHeartbeat(store, lease), Presence(store, "worker", clock=clock):
            while not should_stop():
                found = 0
                editions = store.retrying(lambda: work.sending_editions(store), what="polling")
                for edition_id in editions:
                    send = partial(_send_edition, config, store, backend, lease, edition_id,
                                   clock, should_stop, report)  # fmt: skip
                    found += store.retrying(send, what=f"sending edition {edition_id}")
                if found:
                    idle_since = time.monotonic()
                elif idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                    break
                else:
                    sleep(poll)
    finally:
        backend.close()
    return report


def _send_edition(
    config: PublisherConfig,
    store: Store,
    backend: DeliveryBackend[Any, Any],
    lease: work.Lease,
    edition_id: int,
    clock: Callable[[], datetime],
    should_stop: Callable[[], bool],
    report: WorkerReport,
) -> int:
    edition = get_edition(store, edition_id)
    if edition is None:
        return 0
    if not _known(config, edition.campaign) and not is_broadcast(edition.campaign):
        LOG.warning(
            "edition %s: campaign %s is not in this host's file", edition_id, edition.campaign
        )
        return 0
    now = clock()
    key = numbers.link_key(store, now=now)
    message = build_message(config, edition, now=now, link_key=key, store=store)
    dispatcher = Dispatcher(
        store, backend, message, policy_from(config), now, should_stop=should_stop, lease=lease
    )
    audience = edition_audience(config, store, edition.campaign, edition.id)
    batches = claims_for(dispatcher, audience, wait=False)
    result = dispatcher.run(batches)
    if result.batches:
        LOG.info(
            "edition %s (%s #%s): %s batches, %s sent, %s failed, %s uncertain",
            edition_id, edition.campaign, edition.number,
            result.batches, result.sent, result.failed, result.uncertain,
        )  # fmt: skip
        assert report.editions is not None
        report.editions.add(edition_id)
    report.batches += result.batches
    report.sent += result.sent
    return result.batches


def _known(config: PublisherConfig, campaign: str) -> bool:
    try:
        config.campaign(campaign)
    except ConfigError:  # a campaign removed from this host's file
        return False
    return True
