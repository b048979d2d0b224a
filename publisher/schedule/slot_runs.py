"""Which slots run, and when: the decisions of the `publisher run` daemon, with no
APScheduler (publisher/schedule/daemon.py schedules them; they are tested with a fake clock).

At start-up, missed slots are recorded and the newest within grace is run (catch-up); each
slot is dispatched through pause, staff's skip or move, grace and the send window, claimed in
the store (publisher/store/schedule_state.py) and run under its heartbeat
(publisher/schedule/slot_lease.py); running claims another daemon left lapse and are taken
over; held slots run again once their edition is approved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from publisher.config import PublisherConfig
from publisher.deliver import approval
from publisher.pipeline import SlotOutcome
from publisher.schedule import steering
from publisher.schedule.slot_lease import SlotHeartbeat
from publisher.schedule.slots import (
    campaign_trigger,
    campaign_zone,
    fire_times,
    plan_catch_up,
    window_opening,
)
from publisher.store import Store, processes, slot_overrides
from publisher.store import schedule_state as state

log = logging.getLogger(__name__)

POLL_EVERY = timedelta(seconds=30)  # how soon a running daemon sees `publisher pause/resume`

SlotRunner = Callable[[str, datetime, datetime], SlotOutcome]  # (campaign, slot, now)


class SlotRuns:
    """A daemon's slots: what runs at start-up and at each slot, claimed and run once.

    The work itself is injected (`run_slot`), so the slot logic is tested with a fake clock
    and a recording runner; publisher/schedule/daemon.py's Daemon runs these decisions as
    APScheduler jobs.
    """

    def __init__(
        self,
        config: PublisherConfig,
        store: Store,
        *,
        run_slot: SlotRunner,
        clock: Callable[[], datetime],
        owner: str | None = None,
        lease: timedelta = state.DEFAULT_LEASE,
    ) -> None:
        self.config = config
        self.store = store
        self.run_slot_fn = run_slot
        self.clock = clock
        self.owner = owner or processes.this_process()
        self.lease = lease
        self.campaigns = {c.name: c for c in config.campaigns if c.cadence}
        self.triggers = {name: campaign_trigger(config, c) for name, c in self.campaigns.items()}
        self.stopping = threading.Event()
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
                log.info(
                    "campaign=%s slot=%s outcome=resuming interrupted run", name, iso_utc(slot)
                )
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
            self._record(name, plan.coalesced, "coalesced", now, f"folded into {iso_utc(plan.run)}")
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
                why = f"moved to {iso_utc(change.moved_to)}; daemon was down"
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
                log.info("campaign=%s slot=%s outcome=%s (%s)", name, iso_utc(slot), status, why)

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
            return self._log(name, slot, f"moved to {iso_utc(due)}")
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
            return self._log(name, slot, f"deferred to {iso_utc(opening)} (send window)")
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
            log.exception("campaign=%s slot=%s failed", name, iso_utc(slot))
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
        log.info("campaign=%s slot=%s outcome=%s", name, iso_utc(slot), outcome)
        return outcome

    def _defer(self, name: str, slot: datetime, when: datetime) -> None:
        """Run the slot at `when` (the daemon also schedules it: Daemon._defer)."""
        self.deferred.append((name, slot, when))

    def takeover_every(self) -> timedelta:
        """How often to look for lapsed claims: a third of the lease, at least every 30 s."""
        return min(POLL_EVERY, self.lease / 3)

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


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _takeover_note(record: state.SlotRecord | None, now: datetime) -> str:
    if record is None:
        return "taking over (the claim just changed)"
    if record.lease_until is None:
        why = "a claim from before leases: its process is gone, or no progress for 2 hours"
    elif record.lease_until < now.timestamp():
        why = f"its lease lapsed at {iso_utc(datetime.fromtimestamp(record.lease_until, UTC))}"
    else:
        why = "its process is gone from this host"
    return f"taking over from {record.owner} ({why})"
