"""Whether anything will send: the daemons and workers the store has seen alive
(publisher.store.processes_seen), read with one rule. A process not seen for two minutes
(four missed beats) is stopped or killed; when no daemon has been seen for two minutes,
nothing runs the campaigns' slots, and a campaign whose slot has come (within its grace,
not yet run) is late, and so is a scheduled broadcast whose time has come. The
dashboard's overview and campaign pages and `publisher schedule` show the same facts from
here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from publisher.config import CampaignConfig, PublisherConfig
from publisher.schedule.slots import campaign_trigger, latest_slot
from publisher.store import Store
from publisher.store import schedule_state as state
from publisher.store.broadcasts import due_broadcasts
from publisher.store.processes_seen import KEEP_FOR, SeenProcess, seen_processes
from publisher.store.slot_overrides import get_override

STALE_AFTER = timedelta(minutes=2)
START_COMMAND = "publisher run"


@dataclass(frozen=True)
class ProcessLine:
    process: SeenProcess
    stale: bool  # not seen for STALE_AFTER: stopped or killed


@dataclass(frozen=True)
class SchedulerStatus:
    processes: list[ProcessLine]
    running: bool  # a daemon was seen within STALE_AFTER
    late: dict[str, datetime] = field(default_factory=dict)  # campaign -> its due slot
    # scheduled broadcasts due with no daemon to send them: broadcast id -> its time
    late_broadcasts: dict[int, datetime] = field(default_factory=dict)


def scheduler_status(config: PublisherConfig, store: Store, *, now: datetime) -> SchedulerStatus:
    """The processes seen within the last day, and, when no daemon is alive, the campaigns
    whose slot is due with nothing to run it."""
    lines = [
        ProcessLine(p, now - p.last_seen > STALE_AFTER)
        for p in seen_processes(store, since=now - KEEP_FOR)
    ]
    running = any(line.process.kind == "daemon" and not line.stale for line in lines)
    late: dict[str, datetime] = {}
    late_broadcasts: dict[int, datetime] = {}
    if not running:
        for campaign in config.campaigns:
            due = late_slot(config, store, campaign, now=now)
            if due is not None:
                late[campaign.name] = due
        for broadcast in due_broadcasts(store, now=now):
            late_broadcasts[broadcast.id] = broadcast.send_at or now
    return SchedulerStatus(lines, running, late, late_broadcasts)


def daemon_running(store: Store, *, now: datetime) -> bool:
    """A daemon was seen within STALE_AFTER."""
    seen = seen_processes(store, since=now - STALE_AFTER)
    return any(p.kind == "daemon" for p in seen)


def late_slot(
    config: PublisherConfig, store: Store, campaign: CampaignConfig, *, now: datetime
) -> datetime | None:
    """The campaign's newest slot at or before `now`, within its grace, that no daemon has
    finished (no record, or a run left unfinished); None if there is none or it is paused.
    Older slots are beyond grace: a daemon started now records them as missed."""
    if campaign.cadence is None or campaign.paused:
        return None
    due = latest_slot(campaign_trigger(config, campaign), now, within=campaign.grace)
    if due is None or campaign.name in state.paused_campaigns(store):
        return None
    change = get_override(store, campaign.name, due)
    if change is not None and (change.runs_at is None or change.runs_at > now):
        return None  # staff skipped it, or moved it to a time still to come
    record = state.get_slot(store, campaign.name, due)
    return due if record is None or record.status not in state.FINAL else None
