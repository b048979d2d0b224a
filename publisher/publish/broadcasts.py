"""Broadcasts in public (issue 21): each sent broadcast's public copy at
archive/broadcasts/<id>.html, and the entries of a feed with the selector `broadcasts: true`.

The public copy is made from the edition that was sent (stored once when the send began),
never from the broadcast's draft and items as they are when the page is written: what the
page shows is what people received, however late (or often) it is written. The email's
personal parts (the template marks them `class="personal"`: the greeting, "view in your
browser", the reason and the personal links) are left out, the public footer put in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import cast

import lxml.html
from lxml.html import HtmlElement, builder

from publisher.config import Organisation, PublisherConfig
from publisher.config.models import BROADCAST_CAMPAIGN
from publisher.publish.archive import ARCHIVE_DIR, page_links, write_edition_page
from publisher.render.alert import ARCHIVE_FOLDER
from publisher.store import Store
from publisher.store.broadcasts import get_broadcast
from publisher.store.editions import get_edition
from publisher.store.feeds_queries import SentEdition, sent_editions

__all__ = ["broadcast_entries", "sent_copy", "write_broadcast_pages"]

PERSONAL = "personal"  # the class templates/alert.mjml gives the email's personal parts


def sent_copy(html: str, org: Organisation) -> str:
    """The sent email `html` as its public copy: the parts marked personal left out, the
    public footer (who sent it, subscribe, the feeds) where the personal links were."""
    document = cast(HtmlElement, lxml.html.document_fromstring(html))
    personal = document.find_class(PERSONAL)
    lines = [element for element in personal if element.tag == "p"]
    if lines:  # the footer's personal lines: the last is the personal links
        lines[-1].addnext(_public_footer(lines[-1], org))
        lines[-1].addnext(_line(lines[-1], f"An email from {org.name}."))
    for element in personal:
        element.drop_tree()
    return lxml.html.tostring(document, doctype="<!DOCTYPE html>", encoding="unicode")


def _line(like: HtmlElement, words: str) -> HtmlElement:
    line = builder.P(words)
    line.set("style", like.get("style", ""))
    return line


def _public_footer(like: HtmlElement, org: Organisation) -> HtmlElement:
    """Subscribe · Feeds · the website, styled as the personal links it stands for."""
    style = next((a.get("style", "") for a in like.iter("a")), "")
    links = page_links(org)
    anchors = [
        builder.A("Subscribe", href=links["subscribe"]),
        builder.A("Feeds", href=links["feeds"]),
        builder.A(org.website.replace("https://", ""), href=org.website),
    ]
    line = _line(like, "")
    for n, anchor in enumerate(anchors):
        anchor.set("style", style)
        if n:
            anchors[n - 1].tail = " \u00b7 "
        line.append(anchor)
    return line


def write_broadcast_pages(config: PublisherConfig, store: Store) -> int:
    """The public copy of every broadcast that reached someone and has none yet, made from
    its sent edition; how many were written. The feed build, the daemon and the CLI call
    this after a send (and the web may)."""
    written = 0
    for sent in sent_editions(store, BROADCAST_CAMPAIGN):
        page = config.root / ARCHIVE_DIR / ARCHIVE_FOLDER / f"{sent.number}.html"
        broadcast = get_broadcast(store, sent.number)  # its edition's number is its id
        if page.is_file() or broadcast is None or broadcast.edition_id is None:
            continue
        edition = get_edition(store, broadcast.edition_id)
        if edition is None:
            continue
        html = sent_copy(edition.html, config.organisation)
        write_edition_page(config.root, config.organisation, ARCHIVE_FOLDER, sent.number, html)
        written += 1
    return written


def broadcast_entries(sent: Sequence[SentEdition]) -> list[SentEdition]:
    """Sent broadcasts as a feed's edition entries, linking to their public copies."""
    return [replace(edition, campaign=ARCHIVE_FOLDER) for edition in sent]
