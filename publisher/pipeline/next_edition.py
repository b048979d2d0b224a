"""A campaign's next digest edition from the store, selected (compose) and rendered, not
stored: what the preview, the dashboard and compose_campaign (publisher/pipeline) start
from, with the editor's saved choices as compose reads them."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from publisher.compose.curation import Curation
from publisher.compose.edition import (
    Edition,
    Selection,
    compose_edition,
    report_since,
    select_items,
)
from publisher.config import PublisherConfig
from publisher.render.email import RenderedEdition, archive_url, render_fitting
from publisher.render.environment import search_path_for
from publisher.store import Store
from publisher.store.curation import SavedCuration, get_curation
from publisher.store.editions import StoredEdition, campaign_history
from publisher.store.items import selection_items

__all__ = [
    "describe_left_out",
    "for_compose",
    "next_selection",
    "prepare_edition",
    "unstored_edition",
]

log = logging.getLogger(__name__)


def next_selection(
    config: PublisherConfig, store: Store, campaign_name: str, *, now: datetime
) -> Selection:
    """What the campaign's next edition would carry and every stored item it leaves out,
    with why, without rendering (the preview and the dashboard list it even when nothing
    would go out)."""
    campaign = config.campaign(campaign_name)
    history = campaign_history(store, campaign.name)
    items, retired = selection_items(store, seen_since=report_since(campaign, now))
    curation = for_compose(get_curation(store, campaign.name))
    return select_items(
        items, campaign, now=now, history=history, retired=retired, curation=curation
    )


def describe_left_out(
    config: PublisherConfig, store: Store, campaign: str, *, now: datetime
) -> str:
    """Why nothing went out: the stored items the campaign has not sent, counted by reason."""
    left_out = next_selection(config, store, campaign, now=now).left_out
    if not left_out:
        return f"{campaign}: every stored item went out in an earlier edition"
    reasons: dict[str, int] = {}
    for _item, reason in left_out:
        key = reason.split(":")[0].split(",")[0]  # 'held until its date', 'retired'...
        reasons[key] = reasons.get(key, 0) + 1
    counted = "; ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
    return f"{campaign}: left out {counted} (`publisher preview {campaign}` lists them)"


def prepare_edition(
    config: PublisherConfig,
    store: Store,
    campaign_name: str,
    *,
    now: datetime,
    curation: SavedCuration | None = None,
    slot: datetime | None = None,
) -> tuple[Edition, RenderedEdition] | None:
    """Compose and render a campaign's next edition without storing it (preview uses this),
    with the editor's saved choices (`curation`, else the stored ones), dated by its `slot`
    when it has one (an approval given ahead is for the slot's date, not the moment's)."""
    campaign = config.campaign(campaign_name)
    history = campaign_history(store, campaign.name)
    # An item enters by what the campaign has not sent yet and its lookback, never by a
    # window after the previous edition: a late (backdated) item is still a candidate.
    items, retired = selection_items(store, seen_since=report_since(campaign, now))
    chosen = for_compose(curation or get_curation(store, campaign.name))
    edition = compose_edition(
        items, campaign, now=now, history=history, retired=retired, curation=chosen
    )
    if edition is None:
        return None
    edition = replace(edition, slot=slot)
    for item, reason in edition.left_out:
        log.info("%s: left out '%s' (%s): %s", campaign.name, item.title, item.id, reason)
    org = config.organisation
    # An item that cannot be rendered, or makes the email too large, is left out (logged
    # with the reason) and the edition goes out without it.
    edition, rendered = render_fitting(
        edition,
        org,
        web_url=archive_url(org.public_url, campaign.name, edition.number),
        search_path=search_path_for(config.root),
    )
    if not edition.items and campaign.skip_if_empty:
        return None
    return edition, rendered


def unstored_edition(
    campaign: str, edition: Edition, rendered: RenderedEdition, *, now: datetime
) -> StoredEdition:
    """A composed edition that is not in the store (id 0): what previews and dry runs show."""
    return StoredEdition(
        0, campaign, edition.number, None, now, rendered.subject, rendered.preheader,
        rendered.html, rendered.text, "preview", None, len(edition.items),
    )  # fmt: skip


def for_compose(saved: SavedCuration) -> Curation:
    """The stored choices as compose's plain Curation."""
    c = saved.choices
    return Curation(c.note, frozenset(c.pinned), frozenset(c.excluded), c.order, c.subject)
