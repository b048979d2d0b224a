"""When things run: the daemon of `publisher run` and the jobs it runs.

When each slot falls (triggers, catch-up, send windows) is decided in publisher/schedule/slots.py,
what a slot does (pause, skip or move, grace, claim, takeover) in publisher/schedule/slot_runs.py;
this module runs them with APScheduler (3.11). A slot is claimed in the store before it runs
(publisher/store/schedule_state.py) and its edition is unique per (campaign, slot), so two
daemons, a restart or a retry never produce two editions for one slot. Daemons on several
hosts share nothing but the store: the claim is a lease that the running daemon renews
(publisher/schedule/slot_lease.py), and every daemon looks for lapsed claims every third of the
lease (at most every 30 s) and takes them over, resuming the edition's send.
"""

from __future__ import annotations

import logging
import signal
import threading
import time as clock_time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Protocol

from apscheduler.schedulers.blocking import BlockingScheduler

from publisher.config import PublisherConfig
from publisher.pipeline import SlotOutcome
from publisher.schedule.slot_runs import POLL_EVERY, SlotRunner, SlotRuns, iso_utc
from publisher.schedule.slots import far_away_warnings, fire_times, latest_slot
from publisher.store import Store
from publisher.store import schedule_state as state
from publisher.store.processes_seen import BEAT_EVERY, Presence

log = logging.getLogger(__name__)


# --- the daemon ---------------------------------------------------------------------------


class JobReport(Protocol):
    """What an interval job returns (CollectReport, FeedsReport): one line for the log."""

    @property
    def note(self) -> str: ...


IntervalJob = Callable[[datetime], JobReport]  # (now)


class Daemon(SlotRuns):
    """The jobs of `publisher run`: one per campaign, collect, feeds, and the pause poll.

    The work itself is injected (`run_slot`, `collect`, `build_feeds`), so the slot logic
    (publisher/schedule/slot_runs.py) is tested with a fake clock and a recording runner;
    make_daemon (below, called by publisher/cli/schedule.py) wires the pipeline in.
    """

    def __init__(
        self,
        config: PublisherConfig,
        store: Store,
        *,
        run_slot: SlotRunner,
        clock: Callable[[], datetime],
        collect: IntervalJob | None = None,
        build_feeds: IntervalJob | None = None,
        deliver_webhooks: IntervalJob | None = None,
        owner: str | None = None,
        lease: timedelta = state.DEFAULT_LEASE,
        beat_every: float = BEAT_EVERY,
        send_broadcasts: IntervalJob | None = None,
        take_over_broadcasts: IntervalJob | None = None,
    ) -> None:
        super().__init__(config, store, run_slot=run_slot, clock=clock, owner=owner, lease=lease)
        self.beat_every = beat_every  # the daemon's heartbeat row (the dashboard shows it)
        self.collect = collect
        self.build_feeds = build_feeds
        self.send_broadcasts = send_broadcasts  # the scheduled broadcasts that are due
        self.take_over_broadcasts = take_over_broadcasts  # sends whose process died
        self.deliver_webhooks = deliver_webhooks
        self.scheduler: BlockingScheduler | None = None
        self._stopper: threading.Thread | None = None
        self._paused_seen: set[str] = set()

    def _defer(self, name: str, slot: datetime, when: datetime) -> None:
        super()._defer(name, slot, when)
        if self.scheduler is not None:
            self.scheduler.add_job(
                self._slot_job, "date", run_date=when, args=[name, slot], misfire_grace_time=None
            )

    # --- jobs run by APScheduler (real clock) ---

    def _cron_job(self, name: str) -> None:
        now = self.clock()
        slot = latest_slot(self.triggers[name], now, within=self.campaigns[name].grace)
        if slot is None:
            log.warning("campaign=%s fired at %s but no slot was due", name, iso_utc(now))
            return
        self.dispatch(name, slot, now)

    def _slot_job(self, name: str, slot: datetime) -> None:
        self.dispatch(name, slot, self.clock())

    def _takeover_job(self) -> None:
        """Each lapsed claim runs as a job of its own: a long send must not hold up the scan."""
        if self.stopping.is_set() or self.scheduler is None:
            return
        try:
            found = self.lapsed_claims(self.clock())
        except Exception:  # noqa: BLE001 - e.g. the database is away: the next scan tries again
            log.exception("looking for lapsed slot claims failed; trying again")
            return
        for name, slot in found:
            self.scheduler.add_job(
                self.run_reserved,
                "date",
                run_date=self.clock(),
                args=[name, slot],
                misfire_grace_time=None,
            )

    def _interval_job(self, what: str, job: IntervalJob) -> None:
        if self.stopping.is_set():
            return
        try:
            note = job(self.clock()).note
            if note:  # the webhooks job runs every few seconds: quiet when idle
                log.info("%s", note)
        except Exception:  # noqa: BLE001 - the next interval tries again
            log.exception("%s failed; trying again at the next interval", what)

    def _release_job(self) -> None:
        if self.stopping.is_set():
            return
        try:
            self.release_approved(self.clock())
        except Exception:  # noqa: BLE001 - e.g. the database is away: the next tick tries again
            log.exception("looking for approved editions failed; trying again")

    def poll_paused(self) -> None:
        """Log pause/resume done with the CLI (every slot also re-reads the store)."""
        paused = {n for n in self.campaigns if self.is_paused(n)}
        for name in sorted(paused - self._paused_seen):
            log.info("campaign=%s paused", name)
        for name in sorted(self._paused_seen - paused):
            log.info("campaign=%s resumed", name)
        self._paused_seen = paused
        try:
            self.poll_overrides(self.clock())
        except Exception:  # noqa: BLE001 - e.g. the database is away: the next poll tries again
            log.exception("reading moved slots failed; trying again")

    def serve(self) -> None:
        """Run until SIGTERM/SIGINT; then finish the work in flight and return. Meanwhile
        the store sees the daemon alive (its heartbeat row, deleted on the way out)."""
        self.scheduler = BlockingScheduler(timezone=UTC)
        self._install_signal_handlers()  # first: a SIGTERM at start-up removes the row too
        with Presence(self.store, "daemon", clock=self.clock, every=self.beat_every):
            self._serve(self.scheduler)

    def _serve(self, scheduler: BlockingScheduler) -> None:
        now = self.clock()
        for warning in far_away_warnings(self.config, now=now):
            log.warning(warning)
        if self.collect and self.config.schedule.collect_every:
            self._interval_job("collect", self.collect)  # fresh content before any catch-up
        due = self.start_up(now)
        for name, slot in due:
            scheduler.add_job(
                self._slot_job, "date", run_date=now, args=[name, slot], misfire_grace_time=None
            )
        for name in self.campaigns:
            self._add_campaign_job(scheduler, name, now)
        self._add_interval(scheduler, "collect", self.collect, self.config.schedule.collect_every)
        self._add_interval(scheduler, "feeds", self.build_feeds, self.config.schedule.feeds_every)
        if self.send_broadcasts is not None:  # every poll, from now: one may be due already
            scheduler.add_job(
                self._interval_job, "interval", seconds=POLL_EVERY.total_seconds(),
                args=["broadcasts", self.send_broadcasts], next_run_time=now,
                coalesce=True, max_instances=1, misfire_grace_time=None,
            )  # fmt: skip
        every = timedelta(seconds=self.config.webhooks.every_seconds)
        self._add_interval(scheduler, "webhooks", self.deliver_webhooks, every)
        self.poll_paused()
        scheduler.add_job(self.poll_paused, "interval", seconds=POLL_EVERY.total_seconds())
        scheduler.add_job(
            self._release_job,
            "interval",
            seconds=POLL_EVERY.total_seconds(),
            coalesce=True,
            max_instances=1,
        )
        scheduler.add_job(
            self._takeover_job,
            "interval",
            seconds=self.takeover_every().total_seconds(),
            coalesce=True,
            max_instances=1,
        )
        if self.take_over_broadcasts is not None:  # from now: a killed send waits no longer
            scheduler.add_job(
                self._interval_job, "interval", seconds=self.takeover_every().total_seconds(),
                args=["broadcast takeover", self.take_over_broadcasts], next_run_time=now,
                coalesce=True, max_instances=1, misfire_grace_time=None,
            )  # fmt: skip
        if self.stopping.is_set():
            return
        log.info("publisher daemon running (%d campaign(s))", len(self.campaigns))
        scheduler.start()
        # The scheduler's loop can end (its state is already 'stopped') while shutdown() is
        # still waiting for the job in flight: return only once that wait is over.
        if self._stopper is not None:
            self._stopper.join()
        log.info("publisher daemon stopped")

    def _add_campaign_job(self, scheduler: BlockingScheduler, name: str, now: datetime) -> None:
        """The campaign's recurring job, first due at the first slot after `now` (the moment
        start-up caught up to): left to itself APScheduler would compute the first run when
        the scheduler starts, a little later, and a slot falling in between would be lost."""
        upcoming = fire_times(self.triggers[name], after=now, count=1)
        first = {"next_run_time": upcoming[0]} if upcoming else {}  # none: the trigger's own
        scheduler.add_job(
            self._cron_job,
            self.triggers[name],
            args=[name],
            id=f"campaign:{name}",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(self.campaigns[name].grace.total_seconds()),
            **first,
        )
        log.info("campaign=%s next slot %s", name, iso_utc(upcoming[0]) if upcoming else "never")

    def _add_interval(
        self,
        scheduler: BlockingScheduler,
        what: str,
        job: IntervalJob | None,
        every: timedelta | None,
    ) -> None:
        if job is None or every is None:
            return
        scheduler.add_job(
            self._interval_job,
            "interval",
            seconds=every.total_seconds(),
            args=[what, job],
            # collect ran just before; the feeds are rebuilt at start
            next_run_time=self.clock() + (every if what == "collect" else timedelta(0)),
            coalesce=True,
            max_instances=1,
        )

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            if self.stopping.is_set():
                return
            self.stopping.set()
            log.info("%s: stopping; finishing the work in flight", signal.Signals(signum).name)
            # shutdown(wait=True) waits for running jobs: not inside the signal handler.
            self._stopper = threading.Thread(target=self.stop, name="publisher-stop")
            self._stopper.start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def stop(self) -> None:
        """Stop taking work, wait for the jobs in flight, end serve()."""
        self.stopping.set()
        for _ in range(100):  # a signal during start-up: the scheduler may be starting now
            if self.scheduler is not None and self.scheduler.running:
                self.scheduler.shutdown(wait=True)
                return
            clock_time.sleep(0.1)


# --- wiring and reporting (for publisher/cli/schedule.py) ---------------------------------


def make_daemon(
    config: PublisherConfig,
    store: Store,
    *,
    clock: Callable[[], datetime],
    lease: timedelta = state.DEFAULT_LEASE,
) -> Daemon:
    """The daemon of `publisher run`, with the pipeline's stages as its jobs."""
    from publisher import pipeline
    from publisher.deliver.webhooks import deliver_due
    from publisher.schedule import broadcasts

    def run_slot(name: str, slot: datetime, now: datetime) -> SlotOutcome:
        # Collect first: a post fixed minutes before the slot is what goes out. SIGTERM or a
        # lost claim: the send stops between batches (the batch in flight finishes).
        return pipeline.run_campaign_slot(
            config,
            store,
            name,
            slot,
            now=now,
            should_stop=lambda: daemon.should_stop(name, slot),
            collect_first=True,
        )

    daemon = Daemon(
        config,
        store,
        run_slot=run_slot,
        clock=clock,
        collect=lambda now: pipeline.refresh_inputs(config, store, now=now)[0],
        build_feeds=lambda now: pipeline.build_feeds(config, store, now=now),
        deliver_webhooks=lambda now: deliver_due(config, store, now=now),
        lease=lease,
        send_broadcasts=lambda now: broadcasts.send_due(
            config, store, now, owner=daemon.owner, lease=lease
        ),
        take_over_broadcasts=lambda now: broadcasts.take_over(
            config, store, owner=daemon.owner, lease=lease, clock=clock
        ),
    )
    return daemon
