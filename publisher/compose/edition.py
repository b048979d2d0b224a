"""Compose: choose which items go into a campaign's next edition. Pure: no I/O, no clock.

Rules, applied in this order:
- the window: items published after the previous edition (first edition: `lookback_days`
  before `now`) and not after `now`;
- never twice: an item a previous edition of this campaign carried is never selected again;
- sections in configured order, each taking the newest matching items up to its `max`; an
  item lands in the first section that wants it, so no item appears twice in one edition;
- `skip_if_empty`: no edition when no item section has anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

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
    # New items an email cannot carry (a link that is not https), with the reason: reported.
    left_out: tuple[tuple[Item, str], ...] = ()

    @property
    def items(self) -> list[Item]:
        return [item for section in self.sections for item in section.items]

    def placements(self) -> list[tuple[str, int, Item]]:
        """(section name, position, item) for every carried item; positions count through
        the whole edition, so ordering by position alone gives the reading order."""
        carried = [(section.name, item) for section in self.sections for item in section.items]
        return [(name, position, item) for position, (name, item) in enumerate(carried)]


def window_start(campaign: CampaignConfig, history: History, now: datetime) -> datetime:
    if history.previous_at is not None:
        return history.previous_at
    return now - timedelta(days=campaign.lookback_days)


def _wants(section: SectionConfig, item: Item) -> bool:
    if section.kinds and item.kind not in section.kinds:
        return False
    if section.topics and not set(section.topics) & set(item.topics):
        return False
    return True


def compose_edition(
    items: Iterable[Item],
    campaign: CampaignConfig,
    *,
    now: datetime,
    history: History,
) -> Edition | None:
    """Select the items of the next edition, or None when `skip_if_empty` and nothing is new."""
    since = window_start(campaign, history, now)
    new_items = [
        item for item in items if since < item.published <= now and item.id not in history.carried
    ]
    fresh, left_out = _email_safe(new_items)
    fresh.sort(key=lambda item: (item.published, item.id), reverse=True)
    taken: set[str] = set()
    sections: list[ComposedSection] = []
    for section in campaign.sections:
        if section.type == "cta":
            sections.append(ComposedSection(section))
            continue
        chosen = [item for item in fresh if item.id not in taken and _wants(section, item)]
        chosen = chosen[: section.max]
        taken.update(item.id for item in chosen)
        sections.append(ComposedSection(section, tuple(chosen)))
    if not taken and campaign.skip_if_empty:
        return None
    return Edition(
        campaign=campaign,
        number=history.next_number,
        composed_at=now,
        since=since,
        sections=tuple(sections),
        left_out=tuple(left_out),
    )


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
