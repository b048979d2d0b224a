"""The web archive: every edition as a static page, plus an index page per campaign.

    archive/<campaign>/<number>.html   the edition's public copy (render.email.render_public):
                                       no greeting, no personal link; Subscribe and the feeds
    archive/<campaign>/index.html      every edition of the campaign, newest first, with a
                                       call to subscribe and the campaign's feeds
    archive/index.html                 every campaign that has an index

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
HOME_TEMPLATE = "archive/home.html"


@dataclass(frozen=True)
class ArchiveEntry:
    number: int
    subject: str
    composed_at: datetime
    item_count: int


def page_links(org: Organisation) -> dict[str, str]:
    """What the public pages link to: sign-up, every newsletter, the feed list."""
    base = org.public_url.rstrip("/")
    return {
        "subscribe": f"{base}/subscribe",
        "archive_home": f"{base}/archive/",
        "feeds": f"{base}/feeds/",
    }


def web_copy(html: str, org: Organisation, head_links: Sequence[str] = ()) -> str:
    """The edition's public copy as a web page; any placeholder left (a custom template's)
    gets nobody's value: the generic pages, the greeting's fallback, no token.
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
    feed_links: Sequence[tuple[str, str]] = (),
    search_path: tuple[Path, ...] = (BUILTIN_TEMPLATES,),
) -> Path:
    """Write archive/<campaign>/index.html listing `entries` newest first, with a call to
    subscribe and `feed_links` ((label, URL) of the campaign's feeds); return its path."""
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
            "feed_links": list(feed_links),
            "links": page_links(org),
        },
    )
    path = root / ARCHIVE_DIR / campaign.name / "index.html"
    write_atomic(path, html.encode("utf-8"))
    return path


def write_home_page(
    root: Path,
    org: Organisation,
    campaigns: Sequence[CampaignConfig],
    *,
    search_path: tuple[Path, ...] = (BUILTIN_TEMPLATES,),
) -> Path:
    """Write archive/index.html: the campaigns among `campaigns` whose index page exists
    (no link leads nowhere), the posts when they have an index, a call to subscribe and
    the feed list; return its path."""
    from publisher.publish.posts import POSTS_DIR  # it builds on this module

    listed = [c for c in campaigns if (root / ARCHIVE_DIR / c.name / "index.html").is_file()]
    env = template_environment(search_path)
    links = page_links(org)
    if (root / POSTS_DIR / "index.html").is_file():  # the newsroom's posts, once there are
        links["posts"] = f"{org.public_url.rstrip('/')}/{POSTS_DIR}/"
    context = {"org": org, "colours": org.colours, "campaigns": listed, "links": links}
    path = root / ARCHIVE_DIR / "index.html"
    write_atomic(path, render_template(env, HOME_TEMPLATE, context).encode("utf-8"))
    return path
