"""The web archive: every edition as a static page, plus an index page per campaign.

    archive/<campaign>/<number>.html   the edition exactly as sent, minus per-recipient links
    archive/<campaign>/index.html      every edition of the campaign, newest first

Pages are written by the one atomic writer (publisher.support.files), so a web server never serves
half a page and an unchanged page is not rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from markupsafe import Markup

from publisher.config import CampaignConfig, Organisation
from publisher.render.environment import BUILTIN_TEMPLATES, render_template, template_environment
from publisher.render.personalise import sample_copy
from publisher.support.files import write_atomic

ARCHIVE_DIR = "archive"
INDEX_TEMPLATE = "archive_index.html"


@dataclass(frozen=True)
class ArchiveEntry:
    number: int
    subject: str
    composed_at: datetime
    item_count: int


def web_copy(html: str, org: Organisation, head_links: Sequence[str] = ()) -> str:
    """The edition as a web page: the generic preferences page instead of a personal link,
    and the greeting's fallback instead of a name, so nobody's token is published.
    `head_links` (the edition feed's <link rel="alternate"> tags) go into the <head>, so a
    feed reader given the page's address finds the feed."""
    page = sample_copy(html, org.public_url)
    end = page.lower().find("</head>")
    if head_links and end >= 0:
        page = page[:end] + "\n".join(head_links) + "\n" + page[end:]
    return page


def write_edition_page(
    root: Path,
    org: Organisation,
    campaign: str,
    number: int,
    html: str,
    head_links: Sequence[str] = (),
) -> Path:
    """Write archive/<campaign>/<number>.html under `root`; return its path."""
    path = root / ARCHIVE_DIR / campaign / f"{number}.html"
    write_atomic(path, web_copy(html, org, head_links).encode("utf-8"))
    return path


def write_index_page(
    root: Path,
    org: Organisation,
    campaign: CampaignConfig,
    entries: Sequence[ArchiveEntry],
    *,
    head_links: Sequence[str] = (),
    search_path: tuple[Path, ...] = (BUILTIN_TEMPLATES,),
) -> Path:
    """Write archive/<campaign>/index.html listing `entries` newest first; return its path."""
    env = template_environment(search_path)
    html = render_template(
        env,
        INDEX_TEMPLATE,
        {
            "org": org,
            "colours": org.colours,
            "campaign": campaign,
            "tz": campaign.timezone or org.timezone,
            "entries": sorted(entries, key=lambda e: e.number, reverse=True),
            "head_links": [Markup(tag) for tag in head_links],
        },
    )
    path = root / ARCHIVE_DIR / campaign.name / "index.html"
    write_atomic(path, html.encode("utf-8"))
    return path
