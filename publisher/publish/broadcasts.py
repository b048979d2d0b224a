"""Broadcasts in public (issue 21): each sent broadcast's public copy at
archive/broadcasts/<id>.html (no greeting, no personal link: publisher.render.alert with
`public`), and the entries of a feed with the selector `broadcasts: true`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from publisher.config import PublisherConfig
from publisher.config.models import BROADCAST_CAMPAIGN
from publisher.publish.archive import ARCHIVE_DIR, write_edition_page
from publisher.render.alert import ARCHIVE_FOLDER, alert_url, render_alert
from publisher.render.environment import search_path_for
from publisher.store import Store
from publisher.store.broadcasts import Broadcast, get_broadcast
from publisher.store.feeds_queries import SentEdition, sent_editions
from publisher.store.item_search import item_entry

__all__ = ["broadcast_entries", "public_copy", "write_broadcast_pages"]


def public_copy(config: PublisherConfig, store: Store, broadcast: Broadcast) -> str:
    """The broadcast as nobody in particular reads it on the web."""
    org = config.organisation
    entries = (item_entry(store, item_id) for item_id in broadcast.draft.items)
    return render_alert(
        broadcast.draft,
        org,
        config.sender(broadcast.draft.sender),
        items=[entry.item for entry in entries if entry is not None],
        web_url=alert_url(org.public_url, broadcast.id),
        public=True,
        search_path=search_path_for(config.root),
    ).html


def write_broadcast_pages(config: PublisherConfig, store: Store) -> int:
    """The public copy of every broadcast that reached someone and has none yet; how many
    were written. The feed build, the daemon and the CLI call this after a send (and the
    web may)."""
    written = 0
    for sent in sent_editions(store, BROADCAST_CAMPAIGN):
        page = config.root / ARCHIVE_DIR / ARCHIVE_FOLDER / f"{sent.number}.html"
        broadcast = get_broadcast(store, sent.number)  # its edition's number is its id
        if page.is_file() or broadcast is None:
            continue
        html = public_copy(config, store, broadcast)
        write_edition_page(config.root, config.organisation, ARCHIVE_FOLDER, sent.number, html)
        written += 1
    return written


def broadcast_entries(sent: Sequence[SentEdition]) -> list[SentEdition]:
    """Sent broadcasts as a feed's edition entries, linking to their public copies."""
    return [replace(edition, campaign=ARCHIVE_FOLDER) for edition in sent]
