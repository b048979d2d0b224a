"""When things run: the daemon of `publisher run` and the jobs it runs.

When each slot falls (triggers, catch-up, send windows) is decided in publisher/schedule/slots.py;
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
from publisher.deliver import approval
from publisher.pipeline import SlotOutcome
from publisher.schedule import steering
from publisher.schedule.slot_lease import SlotHeartbeat
from publisher.schedule.slots import (
    campaign_trigger,
    campaign_zone,
    far_away_warnings,
    fire_times,
    latest_slot,
    plan_catch_up,
    window_opening,
)
from publisher.store import Store, processes, slot_overrides
from publisher.store import schedule_state as state
from publisher.store.processes_seen import BEAT_EVERY, Presence

log = logging.getLogger(__name__)

POLL_EVERY = timedelta(seconds=30)  # how soon a running daemon sees `publisher pause/resume`


# --- the daemon ---------------------------------------------------------------------------

SlotRunner = Callable[[str, datetime, datetime], SlotOutcome]  # (campaign, slot, now)


class JobReport(Protocol):
    """What an interval job returns (CollectReport, FeedsReport): one line for the log."""

    @property
    def note(self) -> str: ...


IntervalJob = Callable[[datetime], JobReport]  # (now)


class Daemon:
    """The jobs of `publisher run`: one per campaign, collect, feeds, and the pause poll.

    The work itself is injected (`run_slot`, `collect`, `build_feeds`), so the slot logic is
    tested with a fake clock and a recording runner; make_daemon (below, called by
    publisher/cli/schedule.py) wires the pipeline in.
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
        self.config = config
        self.beat_every = beat_every  # the daemon's heartbeat row (the dashboard shows it)
        self.store = store
        self.run_slot_fn = run_slot
        self.clock = clock
        self.collect = collect
        self.build_feeds = build_feeds
        self.send_broadcasts = send_broadcasts  # the scheduled broadcasts that are due
        self.take_over_broadcasts = take_over_broadcasts  # sends whose process died
        self.deliver_webhooks = deliver_webhooks
        self.owner = owner or processes.this_process()
        self.lease = lease
        self.campaigns = {c.name: c for c in config.campaigns if c.cadence}
        self.triggers = {name: campaign_trigger(config, c) for name, c in self.campaigns.items()}
        self.stopping = threading.Event()
        self.scheduler: BlockingScheduler | None = None
        self._stopper: threading.Thread | None = None
        self._paused_seen: set[str] = set()
        self.deferred: list[tuple[str, datetime, datetime]] = []  # (campaign, slot, run at)
        # slots this daemon is dispatching or running (a takeover scan must not take them
        # again) and the heartbeats of the running ones
        self._busy: set[tuple[str, datetime]] = set()
        self._beats: dict[tuple[str, datetime], SlotHeartbeat] = {}
        self._lock = threading.Lock()

    # --- decisions (tested with a fake clock) ---

    def is_paused(self, name: str) -> bool:
        return self.campaigns[name].paused or name in state.paused_campaigns(self.store)

    def start_up(self, now: datetime) -> list[tuple[str, datetime]]:
        """Catch up after downtime: record missed slots; return the (campaign, slot) to run."""
        due: list[tuple[str, datetime]] = []
        for name, campaign in self.campaigns.items():
            resumed = state.unfinished_slots(self.store, name, owner=self.owner, now=now)
            for slot in resumed:
                log.info("campaign=%s slot=%s outcome=resuming interrupted run", name, _iso(slot))
            due.extend((name, slot) for slot in resumed)
            since = state.watched_since(self.store, name, now=now)
            last = state.last_slot(self.store, name)
            start = max(since, last) if last else since
            moved = {
                c.slot: c for c in steering.pending(self.store, campaign, now=now) if c.moved_to
            }  # staff moved these: they run at their new time, never at their own
            due.extend((name, s) for s in self._catch_up_moved(name, moved, resumed, now))
            slots = [
                s for s in fire_times(self.triggers[name], after=start, until=now) if s not in moved
            ]
            plan = plan_catch_up(slots, now=now, grace=campaign.grace)
            self._record(
                name, plan.missed, "missed", now, f"daemon was down; grace {campaign.grace}"
            )
            if plan.run is None:
                continue
            if self.is_paused(name):
                self._record(name, plan.coalesced + [plan.run], "paused", now, "paused")
                continue
            self._record(name, plan.coalesced, "coalesced", now, f"folded into {_iso(plan.run)}")
            if plan.run not in resumed:
                due.append((name, plan.run))
        return due

    def _catch_up_moved(
        self,
        name: str,
        moved: dict[datetime, slot_overrides.SlotOverride],
        resumed: list[datetime],
        now: datetime,
    ) -> list[datetime]:
        """Moved slots at start-up: those whose new time has come (within grace) run now,
        later ones wait for their new time, older ones are missed."""
        run = []
        for slot, change in moved.items():
            assert change.moved_to is not None
            if slot in resumed:
                continue
            if change.moved_to > now:
                self._defer_once(name, slot, change.moved_to, now)
            elif now - change.moved_to > self.campaigns[name].grace:
                why = f"moved to {_iso(change.moved_to)}; daemon was down"
                self._record(name, [slot], "missed", now, why)
            else:
                run.append(slot)
        return run

    def poll_overrides(self, now: datetime) -> None:
        """Slots staff moved while the daemon runs: each runs at its new time (a slot moved
        later is also deferred when its own time fires; one moved earlier only from here)."""
        for name, campaign in self.campaigns.items():
            for change in steering.pending(self.store, campaign, now=now):
                if change.moved_to is not None and now - change.moved_to <= campaign.grace:
                    self._defer_once(name, change.slot, change.moved_to, now)

    def _defer_once(self, name: str, slot: datetime, when: datetime, now: datetime) -> None:
        if not any((n, s, w) == (name, slot, when) for n, s, w in self.deferred):
            self._defer(name, slot, max(when, now))
            self.deferred[-1] = (name, slot, when)

    def _record(
        self, name: str, slots: list[datetime], status: str, now: datetime, why: str
    ) -> None:
        if state.record_slots(self.store, name, slots, status, now=now, detail=why):
            for slot in slots:
                log.info("campaign=%s slot=%s outcome=%s (%s)", name, _iso(slot), status, why)

    def dispatch(self, name: str, slot: datetime, now: datetime) -> str:
        """Run one slot if it should run now; returns the outcome (also logged and recorded)."""
        if not self._reserve(name, slot):
            return self._log(name, slot, "already running in this daemon")
        try:
            return self._dispatch(name, slot, now)
        finally:
            self._release(name, slot)

    def _reserve(self, name: str, slot: datetime) -> bool:
        with self._lock:
            if (name, slot) in self._busy:
                return False
            self._busy.add((name, slot))
            return True

    def _release(self, name: str, slot: datetime) -> None:
        with self._lock:
            self._busy.discard((name, slot))

    def _dispatch(self, name: str, slot: datetime, now: datetime) -> str:
        campaign = self.campaigns[name]
        if self.stopping.is_set():
            return self._log(name, slot, "not started: daemon is stopping")
        if self.is_paused(name):
            return self._close(name, slot, "paused", now, "campaign paused")
        change = slot_overrides.get_override(self.store, name, slot)
        if change is not None and change.action == "skip":
            return self._close(name, slot, "skipped", now, f"skipped by {change.by}")
        due = change.moved_to if change is not None and change.moved_to else slot
        if due > now:  # moved later by staff: it runs at its new time, not now
            self._defer_once(name, slot, due, now)
            return self._log(name, slot, f"moved to {_iso(due)}")
        # An edition already composed for the slot is an interrupted send: always finish it.
        grace = timedelta.max if state.has_edition(self.store, name, slot) else campaign.grace
        if now - due > grace:
            return self._close(name, slot, "missed", now, f"more than {grace} late")
        zone = campaign_zone(self.config, campaign)
        opening = window_opening(now, zone, campaign.not_before, campaign.not_after)
        if opening > now:
            if opening - due > grace:
                return self._close(name, slot, "missed", now, "send window closed past grace")
            self._defer(name, slot, opening)
            return self._log(name, slot, f"deferred to {_iso(opening)} (send window)")
        if not self._claim(name, slot, now):
            return self._log(name, slot, "already taken (another daemon, or done)")
        return self._run_claimed(name, slot, now)

    def _claim(self, name: str, slot: datetime, now: datetime) -> bool:
        return state.claim_slot(self.store, name, slot, owner=self.owner, now=now, lease=self.lease)

    def _close(self, name: str, slot: datetime, status: str, now: datetime, why: str) -> str:
        """End a slot without running it (unless it is finished or another daemon has it)."""
        if self._claim(name, slot, now):
            state.finish_slot(self.store, name, slot, status, now=now, detail=why, owner=self.owner)
        return self._log(name, slot, f"{status} ({why})")

    def _run_claimed(self, name: str, slot: datetime, now: datetime) -> str:
        """Run a claimed slot under its heartbeat, then record the outcome (and end the lease)."""
        beat = SlotHeartbeat(
            self.store, name, slot, owner=self.owner, lease=self.lease, clock=self.clock
        )
        with self._lock:
            self._beats[(name, slot)] = beat
        try:
            with beat:
                outcome = self.run_slot_fn(name, slot, now)
        except Exception as exc:  # noqa: BLE001 - one campaign's failure must not stop the daemon
            log.exception("campaign=%s slot=%s failed", name, _iso(slot))
            return self._finish(name, slot, SlotOutcome("failed", None, str(exc)), f"failed: {exc}")
        finally:
            with self._lock:
                self._beats.pop((name, slot), None)
        return self._finish(name, slot, outcome, f"{outcome.status} {outcome.detail}".strip())

    def _finish(self, name: str, slot: datetime, outcome: SlotOutcome, said: str) -> str:
        if state.finish_slot(
            self.store,
            name,
            slot,
            outcome.status,
            now=self.clock(),
            edition_id=outcome.edition_id,
            detail=outcome.detail,
            owner=self.owner,
        ):
            return self._log(name, slot, said)
        return self._log(name, slot, f"{said}; not recorded: another daemon took the slot over")

    def should_stop(self, name: str, slot: datetime) -> bool:
        """For the send of a running slot: stop between batches (SIGTERM, or the claim lost)."""
        with self._lock:
            beat = self._beats.get((name, slot))
        return self.stopping.is_set() or (beat is not None and beat.lost.is_set())

    def lapsed_claims(self, now: datetime) -> list[tuple[str, datetime]]:
        """Running claims another daemon left (its lease lapsed, or its process is gone from
        this host), reserved for this daemon to take over: `run_reserved` each one."""
        waiting = {(name, slot) for name, slot, _ in self.deferred}
        candidates = [  # read first: a database error leaves nothing reserved
            (name, slot, state.get_slot(self.store, name, slot))
            for name in self.campaigns
            for slot in state.unfinished_slots(
                self.store, name, owner=self.owner, now=now, failed=False
            )
            if (name, slot) not in waiting
        ]
        found = []
        for name, slot, record in candidates:
            if self._reserve(name, slot):
                self._log(name, slot, _takeover_note(record, now))
                found.append((name, slot))
        return found

    def run_reserved(self, name: str, slot: datetime) -> str:
        """Dispatch a slot `lapsed_claims` reserved (the claim itself is taken in dispatch)."""
        try:
            return self._dispatch(name, slot, self.clock())
        finally:
            self._release(name, slot)

    def _log(self, name: str, slot: datetime, outcome: str) -> str:
        log.info("campaign=%s slot=%s outcome=%s", name, _iso(slot), outcome)
        return outcome

    def _defer(self, name: str, slot: datetime, when: datetime) -> None:
        self.deferred.append((name, slot, when))
        if self.scheduler is not None:
            self.scheduler.add_job(
                self._slot_job, "date", run_date=when, args=[name, slot], misfire_grace_time=None
            )

    # --- jobs run by APScheduler (real clock) ---

    def _cron_job(self, name: str) -> None:
        now = self.clock()
        slot = latest_slot(self.triggers[name], now, within=self.campaigns[name].grace)
        if slot is None:
            log.warning("campaign=%s fired at %s but no slot was due", name, _iso(now))
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

    def takeover_every(self) -> timedelta:
        """How often to look for lapsed claims: a third of the lease, at least every 30 s."""
        return min(POLL_EVERY, self.lease / 3)

    def _interval_job(self, what: str, job: IntervalJob) -> None:
        if self.stopping.is_set():
            return
        try:
            note = job(self.clock()).note
            if note:  # the webhooks job runs every few seconds: quiet when idle
                log.info("%s", note)
        except Exception:  # noqa: BLE001 - the next interval tries again
            log.exception("%s failed; trying again at the next interval", what)

    def release_approved(self, now: datetime) -> list[str]:
        """Run again the held slots (their edition waited for approval, issue 21) whose
        edition is approved now, within the campaign's grace: the tick after the approval."""
        ran: list[str] = []
        if not approval.approval_required(self.config, "edition"):
            return ran  # nothing is ever held
        for name, campaign in self.campaigns.items():
            for record in state.slot_records(self.store, name, limit=10):
                if record.status != "held" or record.edition_id is None:
                    continue
                if now - record.slot > campaign.grace:
                    continue  # too late for this slot: `publisher send` or send-now sends it
                try:
                    approval.require_approved(self.config, self.store, "edition", record.edition_id)
                except approval.NotApproved:
                    continue
                ran.append(self.dispatch(name, record.slot, now))
        return ran

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
        log.info("campaign=%s next slot %s", name, _iso(upcoming[0]) if upcoming else "never")

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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _takeover_note(record: state.SlotRecord | None, now: datetime) -> str:
    if record is None:
        return "taking over (the claim just changed)"
    if record.lease_until is None:
        why = "a claim from before leases: its process is gone, or no progress for 2 hours"
    elif record.lease_until < now.timestamp():
        why = f"its lease lapsed at {_iso(datetime.fromtimestamp(record.lease_until, UTC))}"
    else:
        why = "its process is gone from this host"
    return f"taking over from {record.owner} ({why})"


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
