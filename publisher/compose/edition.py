"""Compose: choose which items go into a campaign's next edition. Pure: no I/O, no clock.

An item enters the next edition when no edition of the campaign has carried it and it is
recent enough; everything else stored is left out with the reason (preview, dashboard):
- never twice: an item an earlier edition of this campaign carried is never selected again
  (and not reported: it went out);
- held: an item dated after `now` waits until its date;
- the lookback: an item counts as recent from the later of its own date and the moment the
  store first saw it, so a post dated yesterday but collected after an edition still goes
  into the next one; older than `lookback_days` before `now`, it is left out;
- retired items (given apart by the caller) are left out, and so is an item that shares
  no topic with the campaign's `audience` (when it has one: those readers did not ask for it);
- sections in configured order, each taking the newest (by the item's date) matching items
  up to its `max`; an item lands in the first section that wants it and has room, so no
  item appears twice in one edition; the rest are over a section's max or in no section;
- `skip_if_empty`: no edition when no item section has anything;
- an editor's choices (pinned, excluded, order, note, one-time subject) come as a
  `Curation`; publisher/compose/curation.py says what each does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from publisher.compose.curation import EXCLUDED, NO_CURATION, Curation, in_order, note_html
from publisher.config import CampaignConfig, SectionConfig
from publisher.items import Item


class History(Protocol):
    """What composing needs to know about a campaign's earlier editions (the store's
    EditionHistory provides it; compose never imports the store, which comes earlier)."""

    @property
    def previous_at(self) -> datetime | None: ...

    @property
    def carried(self) -> frozenset[str]: ...

    @property
    def next_number(self) -> int: ...


@dataclass(frozen=True)
class CampaignHistory:
    """A History given directly (tests, previews of a first edition, sample data)."""

    previous_at: datetime | None = None  # when the previous edition was composed
    carried: frozenset[str] = frozenset()  # item ids any earlier edition carried
    next_number: int = 1


@dataclass(frozen=True)
class ComposedSection:
    config: SectionConfig
    items: tuple[Item, ...] = ()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def type(self) -> str:
        return self.config.type


@dataclass(frozen=True)
class Edition:
    """A composed (not yet rendered) edition."""

    campaign: CampaignConfig
    number: int
    composed_at: datetime
    since: datetime
    sections: tuple[ComposedSection, ...] = field(default_factory=tuple)
    # Every stored item not carried, with the reason (held, older than the lookback, not in
    # the audience's topics, retired, over a section's max, in no section, a link that is not
    # https, could not be rendered).
    left_out: tuple[tuple[Item, str], ...] = ()
    # What an editor chose (publisher.compose.curation), and the note it renders to.
    curation: Curation = NO_CURATION
    note_html: str = ""
    # The scheduled slot it is for (None: sent by hand). Its date is the edition's date, so
    # what staff approve ahead is what the slot sends, whenever the slot runs.
    slot: datetime | None = None

    @property
    def date(self) -> datetime:
        """The date the edition shows (its subject, its header): its slot's, else when it
        was composed."""
        return self.slot or self.composed_at

    @property
    def items(self) -> list[Item]:
        return [item for section in self.sections for item in section.items]

    def placements(self) -> list[tuple[str, int, Item]]:
        """(section name, position, item) for every carried item; positions count through
        the whole edition, so ordering by position alone gives the reading order."""
        carried = [(section.name, item) for section in self.sections for item in section.items]
        return [(name, position, item) for position, (name, item) in enumerate(carried)]


def window_start(campaign: CampaignConfig, history: History, now: datetime) -> datetime:
    """The period an edition is said to cover (the previous edition, or the lookback):
    what the email shows. Selection itself is by `recent_since` and what was carried."""
    if history.previous_at is not None:
        return history.previous_at
    return now - timedelta(days=campaign.lookback_days)


def recent_since(campaign: CampaignConfig, now: datetime) -> datetime:
    """An item seen (or dated) before this is older than the campaign's lookback."""
    return now - timedelta(days=campaign.lookback_days)


def report_since(campaign: CampaignConfig, now: datetime) -> datetime:
    """How far back the stored items given to compose reach: twice the lookback. Items that
    grew older than the lookback within the last lookback period are reported as such; older
    ones cannot be new and are not loaded (a store of years of items stays fast)."""
    return now - 2 * timedelta(days=campaign.lookback_days)


def seen_at(item: Item) -> datetime:
    """When the item became news for our readers: the later of its date and when the store
    first saw it (a backdated late item counts from its arrival)."""
    if item.first_seen is None:
        return item.published
    return max(item.published, item.first_seen)


def _wants(section: SectionConfig, item: Item) -> bool:
    if section.kinds and item.kind not in section.kinds:
        return False
    if section.topics and not set(section.topics) & set(item.topics):
        return False
    return True


@dataclass(frozen=True)
class Selection:
    """The items of the next edition by section, and every other stored item with why."""

    sections: tuple[ComposedSection, ...]
    left_out: tuple[tuple[Item, str], ...]

    @property
    def chosen(self) -> int:
        return sum(len(section.items) for section in self.sections)


def select_items(
    items: Iterable[Item],
    campaign: CampaignConfig,
    *,
    now: datetime,
    history: History,
    retired: Iterable[tuple[Item, str]] = (),
    curation: Curation = NO_CURATION,
) -> Selection:
    """Choose the next edition's items; `retired` (item, why) are only reported; an
    editor's `curation` excludes, pins and orders (rules: publisher.compose.curation)."""
    left_out = [
        (item, f"retired: {why}") for item, why in retired if item.id not in history.carried
    ]
    candidates: list[Item] = []
    cutoff = recent_since(campaign, now)
    for item in items:
        if item.id in history.carried:
            continue
        if item.id in curation.excluded:
            left_out.append((item, EXCLUDED))
        elif item.published > now:
            left_out.append((item, f"held until its date, {_utc(item.published)}"))
        elif item.id in curation.pinned:  # the editor's pin overrides lookback and audience
            candidates.append(item)
        elif seen_at(item) < cutoff:
            left_out.append((item, f"older than the lookback ({campaign.lookback_days} days)"))
        elif campaign.audience and not set(campaign.audience) & set(item.topics):
            left_out.append(
                (item, f"not in the audience's topics ({', '.join(campaign.audience)})")
            )
        else:
            candidates.append(item)
    fresh, unsafe = _email_safe(candidates)
    fresh.sort(key=lambda item: (item.published, item.id), reverse=True)
    sections, overflow = _fill_sections(campaign, fresh, curation)
    left_out += unsafe + overflow
    left_out.sort(key=lambda entry: (entry[0].published, entry[0].id), reverse=True)
    return Selection(tuple(sections), tuple(left_out))


def _pinned_homes(campaign: CampaignConfig, pinned: list[Item]) -> dict[str, str]:
    """Pinned item id -> its section: the first that wants it, else the first item section."""
    item_sections = [s for s in campaign.sections if s.type != "cta"]
    homes: dict[str, str] = {}
    for item in pinned:
        home = next((s for s in item_sections if _wants(s, item)), None)
        home = home or (item_sections[0] if item_sections else None)
        if home is not None:
            homes[item.id] = home.name
    return homes


def _fill_sections(
    campaign: CampaignConfig, fresh: list[Item], curation: Curation = NO_CURATION
) -> tuple[list[ComposedSection], list[tuple[Item, str]]]:
    """Each section in order takes its pinned items, then the newest items it wants up to
    its max, in the editor's order; the items left over say which section was full, or that
    no section takes them."""
    pinned = [item for item in fresh if item.id in curation.pinned]
    homes = _pinned_homes(campaign, pinned)
    taken: set[str] = set(homes)
    full: dict[str, str] = {}  # item id -> the first section that wanted it but was full
    sections: list[ComposedSection] = []
    for section in campaign.sections:
        if section.type == "cta":
            sections.append(ComposedSection(section))
            continue
        mine = [item for item in pinned if homes.get(item.id) == section.name]
        wanted = [item for item in fresh if item.id not in taken and _wants(section, item)]
        room = max(section.max - len(mine), 0)
        chosen = mine + wanted[:room]
        for item in wanted[room:]:
            full.setdefault(item.id, f"over the max of section '{section.name}' ({section.max})")
        taken.update(item.id for item in chosen)
        sections.append(ComposedSection(section, tuple(in_order(chosen, curation.order))))
    nowhere = "no section takes it (its kind or topics)"
    overflow = [(item, full.get(item.id, nowhere)) for item in fresh if item.id not in taken]
    return sections, overflow


def compose_edition(
    items: Iterable[Item],
    campaign: CampaignConfig,
    *,
    now: datetime,
    history: History,
    retired: Iterable[tuple[Item, str]] = (),
    curation: Curation = NO_CURATION,
) -> Edition | None:
    """Select the items of the next edition, or None when `skip_if_empty` and nothing is new;
    an editor's `curation` shapes it (publisher.compose.curation)."""
    selection = select_items(
        items, campaign, now=now, history=history, retired=retired, curation=curation
    )
    if not selection.chosen and campaign.skip_if_empty:
        return None
    return Edition(
        campaign=campaign,
        number=history.next_number,
        composed_at=now,
        since=window_start(campaign, history, now),
        sections=selection.sections,
        left_out=selection.left_out,
        curation=curation,
        note_html=note_html(curation.note),
    )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _email_safe(items: list[Item]) -> tuple[list[Item], list[tuple[Item, str]]]:
    """Emails link only to https: an item whose own link is not https is left out (and
    reported); an image that is not https is dropped, the item kept. An item without a link
    (url "") is kept: the digest shows it whole, with no "read more"."""
    kept, left_out = [], []
    for item in items:
        if item.url and not item.url.startswith("https://"):
            left_out.append((item, f"its link {item.url} is not https"))
            continue
        if item.image and not item.image.startswith("https://"):
            item = replace(item, image=None, image_alt=None)
        kept.append(item)
    return kept, left_out
