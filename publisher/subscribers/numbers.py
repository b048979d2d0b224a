"""An edition's numbers with where each comes from, on every backend: unsubscribes and
preference changes made through the email's own links (our pages, every backend), bounces
from the SMTP server's answers (the ledger) or SendGrid's events, and delivered, complaints,
opens and clicks from SendGrid's events only. A number no source of this backend can give
is None (the page says so), never a misleading 0.

Opens are unreliable (mail clients and privacy proxies such as Apple Mail Privacy
Protection load the tracking image without anyone reading), and mail gateways' link
scanners click links before the person does: a recipient whose clicks hit every link of
the email within seconds of its delivery (`probable_scanners`) is counted apart."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser

from publisher.store import Store
from publisher.store.numbers import (
    click_times,
    delivered_times,
    page_counts,
    smtp_refusals,
)
from publisher.subscribers.events import engagement

__all__ = [
    "OUR_PAGES",
    "SCANNER_WINDOW",
    "SENDGRID",
    "SMTP",
    "Number",
    "backend_name",
    "edition_numbers",
    "email_links",
    "probable_scanners",
]

SCANNER_WINDOW = timedelta(seconds=10)  # "within a few seconds": no person reads that fast
OUR_PAGES = "our unsubscribe page"
PREFERENCES_PAGE = "our preferences page"
SMTP = "SMTP answers"
SENDGRID = "SendGrid events"
OPENS_NOTE = (
    "unreliable: mail programs and privacy protection (Apple Mail Privacy Protection) "
    "open emails by machine, and many people block the images that count an open"
)


BACKEND_NAMES = {"smtp": "SMTP", "sendgrid": "SendGrid"}


def backend_name(backend: str) -> str:
    """A backend as staff read it: "SMTP", "SendGrid", "file"."""
    return BACKEND_NAMES.get(backend, backend)


@dataclass(frozen=True)
class Number:
    name: str
    count: int | None  # None: no source of this backend gives it
    sources: tuple[str, ...]  # where it comes from (or would, with SendGrid's webhook)
    note: str = ""


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = (dict(attrs).get("href") or "").strip() if tag == "a" else ""
        # placeholders are the person's own pages (unsubscribe, preferences), never counted
        if href.startswith(("http://", "https://")) and "%%" not in href:
            self.found.add(href)


def email_links(html: str) -> set[str]:
    """The web links of an email's HTML that a click can be counted on."""
    parser = _Links()
    parser.feed(html)
    parser.close()
    return parser.found


def probable_scanners(
    clicks: Iterable[tuple[str, str, datetime]],
    links: Collection[str],
    delivered: Mapping[str, datetime],
    window: timedelta = SCANNER_WINDOW,
) -> set[str]:
    """Recipients whose clicks `(recipient, url, when)` hit every one of the email's `links`
    within `window` of its delivery to them (of their first click when the delivery time is
    unknown). An email without links has no scanner to recognise."""
    if not links:
        return set()
    first: dict[str, dict[str, datetime]] = {}
    for who, url, at in clicks:
        seen = first.setdefault(who, {})
        seen[url] = min(at, seen.get(url, at))
    found = set()
    for who, urls in first.items():
        start = delivered.get(who, min(urls.values()))
        quick = {url for url, at in urls.items() if at - start <= window}
        if all(link in quick for link in links):
            found.add(who)
    return found


def _needs_sendgrid(name: str, backend: str, note: str = "") -> Number:
    why = f"needs SendGrid's event webhook: not available with the {backend_name(backend)} backend"
    return Number(name, None, (SENDGRID,), f"{why}; {note}" if note else why)


def _bounced(store: Store, edition_id: int, backend: str, events: int | None) -> Number:
    refused = smtp_refusals(store, edition_id)
    sources = ((SMTP,) if refused or backend == "smtp" else ()) + ((SENDGRID,) if events else ())
    if events is None and not sources:
        return Number(
            "bounced", None, (SMTP, SENDGRID),
            f"not available with the {backend_name(backend)} backend",
        )  # fmt: skip
    return Number("bounced", refused + (events or 0), sources or (SENDGRID,))


def edition_numbers(store: Store, edition_id: int, *, backend: str, html: str) -> list[Number]:
    """Every number of the edition page, in order. SendGrid's are given when the backend is
    SendGrid or its events for this edition were stored (the backend changed since)."""
    counted = engagement(store, edition_id)
    has_events = backend == "sendgrid" or any(counted.values())
    pages = page_counts(store, edition_id)
    scanners = probable_scanners(
        click_times(store, edition_id), email_links(html), delivered_times(store, edition_id)
    )
    unsubscribed = pages["unsubscribe"] + (counted["unsubscribed"] if has_events else 0)
    unsubscribe_sources = (OUR_PAGES,) + ((SENDGRID,) if counted["unsubscribed"] else ())
    out = [
        Number("unsubscribed", unsubscribed, unsubscribe_sources),
        Number("changed preferences", pages["preferences"], (PREFERENCES_PAGE,)),
        _bounced(store, edition_id, backend, counted["bounced"] if has_events else None),
    ]
    sendgrid_only = [
        ("delivered", counted["delivered"], ""),
        ("complained", counted["complained"], "reported as spam"),
        ("unique opens", counted["unique opens"], OPENS_NOTE),
        (
            "unique clicks", counted["unique clicks"] - len(scanners),
            "people who clicked a link, not counting probable link scanners",
        ),
        (
            "probably a link scanner", len(scanners),
            f"clicked every link of the email within {SCANNER_WINDOW.seconds} seconds of "
            "its delivery: a mail gateway checking links, not a person",
        ),
    ]  # fmt: skip
    for name, count, note in sendgrid_only:
        if has_events:
            out.append(Number(name, count, (SENDGRID,), note))
        else:
            out.append(_needs_sendgrid(name, backend, note if name == "unique opens" else ""))
    return out
