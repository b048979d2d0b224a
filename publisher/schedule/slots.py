"""When slots fall: cadences as triggers, fire times, catch-up after downtime, send windows.

Every run of a campaign belongs to a *slot*: the fire time of its cadence, in UTC. Everything
here is a pure function of the configuration and the time (no clock, no scheduler running),
except `overview`, which only reads the store for `publisher schedule` and the admin
overview. publisher/schedule/daemon.py runs the slots; together they are the only modules that
import APScheduler (3.11).

Daylight saving (APScheduler's CronTrigger with a zoneinfo zone, checked in the tests):
- a wall-clock time that exists keeps its wall-clock time across the change (09:00 stays 09:00);
- a time skipped by spring-forward (02:30 on the March change in New York) fires once, at the
  instant 02:30 standard time would have been: 03:30 daylight time (07:30 UTC);
- a time repeated by fall-back (01:30 on the November change) fires once, the first time
  (CronTrigger alone would fire twice; SlotTrigger drops the repeat).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from publisher.config import CampaignConfig, PublisherConfig
from publisher.config.cadence import parse_cadence
from publisher.store import Store
from publisher.store import schedule_state as state
from publisher.store.slot_overrides import SlotOverride

FAR_AWAY = timedelta(days=365)


# --- triggers and fire times --------------------------------------------------------------


class SlotTrigger(BaseTrigger):
    """A CronTrigger in the campaign's zone that fires each wall-clock time once (see above)."""

    def __init__(self, cadence: str, zone: ZoneInfo) -> None:
        self.zone = zone
        self.cron = CronTrigger(timezone=zone, **parse_cadence(cadence).trigger_fields())

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        candidate = self.cron.get_next_fire_time(previous_fire_time, now)
        while candidate is not None and self._repeated_wall_time(candidate):
            after = candidate.astimezone(UTC)  # UTC arithmetic: local arithmetic ignores fold
            candidate = self.cron.get_next_fire_time(after, after + timedelta(microseconds=1))
        return None if candidate is None else candidate.astimezone(UTC)

    def _repeated_wall_time(self, moment: datetime) -> bool:
        """The second occurrence of a wall-clock time in the hour fall-back repeats."""
        local = moment.astimezone(self.zone)
        if local.fold == 0:
            return False
        first = local.replace(fold=0)
        return first.utcoffset() != local.utcoffset()

    def __str__(self) -> str:
        return f"slots[{self.cron}]"


def campaign_zone(config: PublisherConfig, campaign: CampaignConfig) -> ZoneInfo:
    return ZoneInfo(campaign.zone(config.organisation))


def campaign_trigger(config: PublisherConfig, campaign: CampaignConfig) -> SlotTrigger:
    if campaign.cadence is None:
        raise ValueError(f"campaign '{campaign.name}' has no cadence")
    return SlotTrigger(campaign.cadence, campaign_zone(config, campaign))


def fire_times(
    trigger: SlotTrigger, *, after: datetime, until: datetime | None = None, count: int = 0
) -> list[datetime]:
    """Fire times (UTC) strictly after `after` and up to `until`, or the next `count` ones."""
    out: list[datetime] = []
    previous = None
    now = after + timedelta(microseconds=1)
    while True:
        moment = trigger.get_next_fire_time(previous, now)
        if moment is None or (until is not None and moment > until):
            return out
        out.append(moment)
        if count and len(out) >= count:
            return out
        previous, now = moment, moment + timedelta(microseconds=1)


def latest_slot(trigger: SlotTrigger, now: datetime, *, within: timedelta) -> datetime | None:
    """The newest fire time at or before `now` (looking back at most `within`)."""
    for window in (timedelta(minutes=2), within):
        found = fire_times(trigger, after=now - window, until=now)
        if found:
            return found[-1]
    return None


def far_away_warnings(config: PublisherConfig, *, now: datetime) -> list[str]:
    """Campaigns whose next run is more than a year away (e.g. '0 9 29 2 *')."""
    warnings = []
    for campaign in config.campaigns:
        if campaign.cadence is None:
            continue
        zone = campaign_zone(config, campaign)
        next_day = parse_cadence(campaign.cadence).first_day_on_or_after(
            now.astimezone(zone).date()
        )
        if next_day is None or next_day - now.astimezone(zone).date() > FAR_AWAY:
            when = next_day.isoformat() if next_day else "never within 9 years"
            warnings.append(
                f"campaign '{campaign.name}': next run is more than a year away ({when}); "
                f"check its cadence '{campaign.cadence}'"
            )
    return warnings


def schedule_problems(config: PublisherConfig) -> list[str]:
    """`publisher check`: every cadence builds a trigger in its zone and fires at least once."""
    problems = []
    now = datetime(2000, 1, 1, tzinfo=UTC)  # any start works: cadences repeat yearly
    for campaign in config.campaigns:
        if campaign.cadence is None:
            continue
        try:
            trigger = campaign_trigger(config, campaign)
            if not fire_times(trigger, after=now, count=1):
                problems.append(f"campaign '{campaign.name}': cadence never fires")
        except (ValueError, KeyError) as exc:
            problems.append(f"campaign '{campaign.name}': {exc}")
    return problems


# --- catch-up -----------------------------------------------------------------------------


@dataclass
class CatchUpPlan:
    run: datetime | None = None  # the newest missed slot still within grace: runs once
    coalesced: list[datetime] = field(default_factory=list)  # older ones within grace
    missed: list[datetime] = field(default_factory=list)  # beyond grace


def plan_catch_up(slots: list[datetime], *, now: datetime, grace: timedelta) -> CatchUpPlan:
    """Decide what to do with the slots that passed while no daemon was running."""
    plan = CatchUpPlan()
    within = [s for s in slots if now - s <= grace]
    plan.missed = [s for s in slots if now - s > grace]
    if within:
        plan.run = within[-1]
        plan.coalesced = within[:-1]
    return plan


def window_opening(
    now: datetime, zone: ZoneInfo, not_before: time | None, not_after: time | None
) -> datetime:
    """`now` if it is inside the campaign's send window, else when the window next opens."""
    local = now.astimezone(zone)
    moment = local.time()
    if (not_before is None or moment >= not_before) and (not_after is None or moment <= not_after):
        return now
    day = local.date() if not_before and moment < not_before else local.date() + timedelta(days=1)
    opening = datetime.combine(day, not_before or time.min, tzinfo=zone)
    return opening.astimezone(UTC)


# --- what `publisher schedule` shows ------------------------------------------------------


@dataclass
class CampaignOverview:
    name: str
    cadence: str  # in words
    zone: str
    next_runs: list[datetime]  # UTC
    paused: str  # '' or why ('schedules.yaml', 'publisher pause')
    last_edition: state.LastEdition | None
    last_slot: state.SlotRecord | None
    changes: list[SlotOverride] = field(default_factory=list)  # skipped/moved slots to come


def overview(
    config: PublisherConfig, store: Store, *, now: datetime, count: int = 3
) -> list[CampaignOverview]:
    """What `publisher schedule` shows for each campaign (slots staff skipped or moved
    included: publisher/schedule/steering.py)."""
    from publisher.schedule.steering import apply_overrides, pending

    paused_in_store = state.paused_campaigns(store)
    out = []
    for campaign in config.campaigns:
        paused = "schedules.yaml" if campaign.paused else ""
        if campaign.name in paused_in_store:
            paused = "publisher pause"
        runs: list[datetime] = []
        changes: list[SlotOverride] = []
        words = "no cadence (only `publisher send` / `run --once`)"
        if campaign.cadence:
            changes = pending(store, campaign, now=now)
            found = fire_times(
                campaign_trigger(config, campaign), after=now, count=count + len(changes)
            )
            runs = apply_overrides(found, changes, now=now, count=count)
            words = parse_cadence(campaign.cadence).words
        records = state.slot_records(store, campaign.name, limit=1)
        out.append(
            CampaignOverview(
                name=campaign.name,
                cadence=words,
                zone=campaign.zone(config.organisation),
                next_runs=runs,
                paused=paused,
                last_edition=state.last_edition(store, campaign.name),
                last_slot=records[0] if records else None,
                changes=changes,
            )
        )
    return out
