"""Staff steering a digest's slots (issue 21): skip the next slot, or move it to another
local time, once each; the cadence stays in schedules.yaml.

A skipped or moved slot keeps its identity (its time in the cadence): the daemon claims and
records it under that time and its edition is still unique per slot, so a move never makes
a second edition and nothing goes twice. What changes is when it runs
(`SlotOverride.runs_at`): a skipped slot never runs (the daemon records it 'skipped'), a
moved one runs at its new time and not at its own. The rules for a move: after now and
before the cadence's following slot (so slots keep their order). An override is undone only
while neither its own time nor its new time has come.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from publisher.compose.edition import Edition
from publisher.config import CampaignConfig, PublisherConfig
from publisher.errors import ScheduleError
from publisher.render.email import RenderedEdition
from publisher.schedule.slots import campaign_trigger, campaign_zone, fire_times
from publisher.store import Store
from publisher.store import schedule_state as state
from publisher.store import slot_overrides as overrides
from publisher.store.slot_overrides import SlotOverride

LOOK_BACK = timedelta(days=1)  # overrides older than grace + this are history


@dataclass(frozen=True)
class NextSlot:
    slot: datetime  # UTC, the slot's own time
    following: datetime | None  # the cadence's slot after it (a move must stay before it)
    override: SlotOverride | None


def _scheduled(config: PublisherConfig, campaign_name: str) -> CampaignConfig:
    campaign = config.campaign(campaign_name)
    if campaign.cadence is None:
        raise ScheduleError(f"{campaign.name} has no cadence: there is no slot to skip or move")
    return campaign


def next_slot(
    config: PublisherConfig, store: Store, campaign_name: str, *, now: datetime
) -> NextSlot:
    """The campaign's next slot by its own time (skip and move apply to this one)."""
    campaign = _scheduled(config, campaign_name)
    found = fire_times(campaign_trigger(config, campaign), after=now, count=2)
    if not found:
        raise ScheduleError(f"{campaign.name}: its cadence never fires again")
    following = found[1] if len(found) > 1 else None
    return NextSlot(found[0], following, overrides.get_override(store, campaign.name, found[0]))


def skip_next(
    config: PublisherConfig, store: Store, campaign_name: str, *, by: str, now: datetime
) -> SlotOverride:
    """Skip the campaign's next slot (replacing a move of it)."""
    target = next_slot(config, store, campaign_name, now=now)
    return overrides.set_override(store, campaign_name, target.slot, "skip", by=by, now=now)


def local_time(config: PublisherConfig, campaign_name: str, value: str) -> datetime:
    """'YYYY-MM-DD HH:MM' in the campaign's zone, as UTC. A time the clock change skips is
    refused (it does not exist there); a repeated one is the first."""
    zone = campaign_zone(config, _scheduled(config, campaign_name))
    try:
        naive = datetime.strptime(value.strip().replace("T", " ")[:16], "%Y-%m-%d %H:%M")
    except ValueError:
        raise ScheduleError(f"'{value}' is not a date and time like 2026-12-07 09:00") from None
    moment = naive.replace(tzinfo=zone)
    if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise ScheduleError(f"{value} does not exist in {zone.key} (the clocks change then)")
    return moment.astimezone(UTC)


def move_next(
    config: PublisherConfig,
    store: Store,
    campaign_name: str,
    to: datetime,
    *,
    by: str,
    now: datetime,
) -> SlotOverride:
    """Move the campaign's next slot to `to` (UTC): after now, before the following slot."""
    target = next_slot(config, store, campaign_name, now=now)
    zone = campaign_zone(config, config.campaign(campaign_name))
    if to <= now:
        raise ScheduleError("the new time has already passed: choose a time in the future")
    if target.following is not None and to >= target.following:
        after = target.following.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")
        raise ScheduleError(f"the new time must be before the following slot ({after})")
    if to == target.slot:
        raise ScheduleError("that is the slot's own time: nothing to move")
    return overrides.set_override(
        store, campaign_name, target.slot, "move", moved_to=to, by=by, now=now
    )


def undo(
    config: PublisherConfig, store: Store, campaign_name: str, slot: datetime, *, now: datetime
) -> SlotOverride:
    """Undo the override of `slot` while neither its own time nor its new time has come."""
    found = overrides.get_override(store, config.campaign(campaign_name).name, slot)
    if found is None:
        raise ScheduleError("that slot is neither skipped nor moved")
    if slot <= now or (found.moved_to is not None and found.moved_to <= now):
        raise ScheduleError("too late to undo: that slot's time has come")
    overrides.clear_override(store, found.campaign, slot)
    return found


def pending(store: Store, campaign: CampaignConfig, *, now: datetime) -> list[SlotOverride]:
    """The campaign's overrides whose slot is not finished (no final record yet)."""
    recent = overrides.overrides(store, campaign.name, after=now - campaign.grace - LOOK_BACK)
    out = []
    for found in recent:
        record = state.get_slot(store, campaign.name, found.slot)
        if record is None or record.status not in state.FINAL:
            out.append(found)
    return out


def apply_overrides(
    runs: list[datetime], changes: list[SlotOverride], *, now: datetime, count: int
) -> list[datetime]:
    """The next run times: the cadence's `runs` without skipped or moved slots, plus the
    moved slots' new times still to come; the first `count`."""
    changed = {c.slot for c in changes}
    moved = [c.moved_to for c in changes if c.moved_to is not None and c.moved_to > now]
    return sorted([t for t in runs if t not in changed] + moved)[:count]


def describe(change: SlotOverride, config: PublisherConfig) -> str:
    """One line for the CLI: 'Mon 07 Dec 2026 09:00 EST: skipped' / '... moved to ...'."""
    zone = campaign_zone(config, config.campaign(change.campaign))
    own = change.slot.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")
    if change.moved_to is None:
        return f"{own}: skipped (by {change.by})"
    new = change.moved_to.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")
    return f"{own}: moved to {new} (by {change.by})"


# --- sending the next edition now (the campaign page's "Send now") ---------------------------


@dataclass(frozen=True)
class NextEdition:
    """What "Send now" would send: the edition composed earlier and never sent, else the one
    composed now (as `publisher send` does)."""

    campaign: str
    title: str
    number: int
    stored_id: int | None  # composed earlier, never sent
    reach: int  # active followers, less paused and suppressed ones
    audience: list[str]


def next_to_send(
    config: PublisherConfig, store: Store, campaign_name: str, *, now: datetime
) -> NextEdition | None:
    """The edition "Send now" sends (None: nothing new); a send that started and did not
    finish is refused: it is resumed, not sent again."""
    from publisher.deliver.service import UNSENT, unfinished_edition
    from publisher.pipeline import prepare_edition
    from publisher.store.audience_counts import count_reachable
    from publisher.store.subscribers import follows

    campaign = config.campaign(campaign_name)
    unfinished = unfinished_edition(store, campaign.name)
    if unfinished is not None and unfinished.status != UNSENT:
        raise ScheduleError(
            f"{campaign.name} #{unfinished.number} was not fully sent: resume it first"
        )
    if unfinished is not None:
        number, stored_id = unfinished.number, unfinished.id
    else:
        prepared = prepare_edition(config, store, campaign.name, now=now)
        if prepared is None:
            return None
        number, stored_id = prepared[0].number, None
    audience = list(campaign.audience)
    reach = count_reachable(store, lambda topics: follows(topics, audience), now=now)
    return NextEdition(campaign.name, campaign.title, number, stored_id, reach, audience)


def edition_to_send(
    config: PublisherConfig, store: Store, campaign_name: str, number: int, *, now: datetime
) -> int:
    """Compose (with the editor's choices) or find the edition staff confirmed as #`number`;
    its id. Refused when it is no longer that edition (someone sent meanwhile)."""
    from publisher.pipeline import compose_campaign

    found = next_to_send(config, store, campaign_name, now=now)
    if found is None or found.number != number:
        raise ScheduleError(
            f"{campaign_name} #{number} is no longer the next edition (it was sent, or "
            "there is nothing new): nothing was sent; look again"
        )
    if found.stored_id is not None:
        return found.stored_id
    record = compose_campaign(config, store, campaign_name, now=now)
    if record is None or record.number != number:
        raise ScheduleError(f"{campaign_name}: the edition could not be composed as confirmed")
    return record.id


# --- the next edition as the campaign page shows (and staff approve) it ----------------------


def preview_slot(
    config: PublisherConfig, store: Store, campaign_name: str, *, now: datetime
) -> datetime | None:
    """The slot the campaign's next edition is for (its own time: the edition's date): the
    next one not skipped, or one moved past now (None: no cadence, nothing scheduled)."""
    campaign = config.campaign(campaign_name)
    if campaign.cadence is None:
        return None
    runs = fire_times(campaign_trigger(config, campaign), after=now, count=3)
    changes = pending(store, campaign, now=now)
    skipped = {c.slot for c in changes if c.action == "skip"}
    late = [c.slot for c in changes if c.moved_to is not None and c.slot <= now < c.moved_to]
    candidates = sorted(late + [t for t in runs if t not in skipped])
    return candidates[0] if candidates else None


def preview_edition(
    config: PublisherConfig, store: Store, campaign_name: str, *, now: datetime
) -> tuple[Edition, RenderedEdition] | None:
    """The campaign's next edition composed now and dated by the slot it is for: what the
    campaign page previews and fingerprints for an approval given ahead, so the edition the
    slot composes later carries the same subject (a date in it included)."""
    from publisher.pipeline import prepare_edition

    slot = preview_slot(config, store, campaign_name, now=now)
    return prepare_edition(config, store, campaign_name, now=now, slot=slot)
