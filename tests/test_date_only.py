"""Dates without a time mean that day in the organisation's time zone, everywhere (issue 18):
`date: 2026-11-20` in front matter, an export's "2026-11-20", a JSON Feed's date_published
"2026-11-20" are stored as that day's start in the organisation's zone, and every digest,
archive page and feed shows 20 November, in a zone west of UTC and one east of it, and in a
campaign whose zone differs from the organisation's."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from publisher.config import load_config
from publisher.items import Item
from publisher.pipeline import run_once
from publisher.sources.base import parse_when
from publisher.store.items import list_items
from publisher.store.models import EditionRow
from tests.conftest import FIXED_NOW, present

ORGANISATION = """\
organisation:
  name: Test Org
  website: https://www.example.org
  public_url: https://www.example.org/news
  postal_address: 1 Main St, Springfield
  from_email: news@example.org
  timezone: {zone}
database_url: "{database_url}"
sources:
  - {{name: posts, type: markdown, path: content}}
  - {{name: export, type: export, path: export.json}}
  - {{name: partner, type: feed, url: "{json_feed}"}}
feeds:
  feeds:
    - {{name: everything, title: All, description: All, path: everything, everything: true}}
campaigns:
  - name: weekly
    title: Weekly
    subject: "Weekly #{{{{ edition.number }}}}"
    lookback_days: 30
    {campaign_zone}
    sections:
      - {{name: all, max: 50, title: All}}
"""

ZONES = [
    # zone, its offset on 20 November 2026, that day's start in UTC
    ("America/New_York", "-05:00", datetime(2026, 11, 20, 5, tzinfo=UTC)),
    ("Pacific/Auckland", "+13:00", datetime(2026, 11, 19, 11, tzinfo=UTC)),
]


def make_project(tmp_path: Path, httpserver, database_url: str, zone: str, campaign_zone=""):
    content = tmp_path / "content"
    content.mkdir()
    (content / "march.md").write_text(
        "---\ntitle: March on the capitol\ndate: 2026-11-20\n---\nWe marched.\n", "utf-8"
    )
    export = [
        {"title": "Exported notice", "url": "https://www.example.org/e", "date": "2026-11-20"}
    ]
    (tmp_path / "export.json").write_text(json.dumps(export), "utf-8")
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Partner",
        "items": [
            {
                "id": "j1",
                "url": "https://p.example/j1",
                "title": "Partner day",
                "date_published": "2026-11-20",
            }
        ],
    }
    httpserver.expect_request("/feed.json").respond_with_json(feed)
    text = ORGANISATION.format(
        zone=zone,
        database_url=database_url,
        json_feed=httpserver.url_for("/feed.json"),
        campaign_zone=f"timezone: {campaign_zone}" if campaign_zone else "",
    )
    (tmp_path / "schedules.yaml").write_text(text, "utf-8")
    return load_config(tmp_path / "schedules.yaml")


def edition(store) -> EditionRow:
    with store.session() as session:
        return present(session.scalars(select(EditionRow)).first())


@pytest.mark.parametrize(("zone", "offset", "start"), ZONES, ids=["west", "east"])
def test_a_date_without_time_is_that_day_everywhere(
    tmp_path, httpserver, store, zone, offset, start
):
    config = make_project(tmp_path, httpserver, store.url, zone)
    report = run_once(config, store, now=FIXED_NOW)
    assert present(report.collect).problems == []
    items = {item.title: item for item in list_items(store)}
    assert set(items) == {"March on the capitol", "Exported notice", "Partner day"}
    for item in items.values():
        assert item.published == start and item.day == date(2026, 11, 20), item.title

    row = edition(store)
    for title in items:
        assert f"{title} (20 November 2026)" in row.text
    assert row.html.count("20 November 2026") == 3
    archive = (tmp_path / "archive" / "weekly" / "1.html").read_text("utf-8")
    assert archive.count("20 November 2026") == 3

    feed = json.loads((tmp_path / "feeds" / "everything.json").read_bytes())
    assert {i["date_published"] for i in feed["items"]} == {f"2026-11-20T00:00:00{offset}"}
    rss = (tmp_path / "feeds" / "everything.rss").read_text("utf-8")
    assert rss.count(f"Fri, 20 Nov 2026 00:00:00 {offset.replace(':', '')}") == 3


def test_a_campaign_in_another_zone_still_shows_the_day(tmp_path, httpserver, store):
    """Organisation in Auckland (20 November starts at 11:00 UTC on the 19th), campaign in
    Los Angeles (where that moment is 19 November, 03:00): the digest says 20 November."""
    config = make_project(
        tmp_path, httpserver, store.url, "Pacific/Auckland", campaign_zone="America/Los_Angeles"
    )
    run_once(config, store, now=FIXED_NOW)
    row = edition(store)
    assert "19 November" not in row.text and row.text.count("(20 November 2026)") == 3


def test_a_timestamp_is_not_a_day_and_a_bad_day_is_refused():
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/New_York")
    moment, day = parse_when("2026-11-20T10:00:00Z", zone)
    assert moment == datetime(2026, 11, 20, 10, tzinfo=UTC) and day is None
    assert parse_when(date(2026, 11, 20), zone)[1] == date(2026, 11, 20)  # YAML's date
    with pytest.raises(ValueError, match="not a date"):
        parse_when("2026-13-01", zone)


def test_a_day_keeps_the_hash_of_items_stored_before_days_existed():
    """Items stored before `day` existed are not all 'edited' by the upgrade."""
    item = Item(id="a", title="T", url="", published=FIXED_NOW, source="s")
    before: dict[str, object] = {  # what Item.content_hash hashed before the field existed
        "id": "a", "title": "T", "url": "", "published": FIXED_NOW.isoformat(), "source": "s",
        "kind": "article", "summary": "", "body_html": "", "author": None, "updated": None,
        "topics": [], "image": None, "image_alt": None,
    }  # fmt: skip
    raw = json.dumps(before, sort_keys=True, ensure_ascii=False).encode()
    assert item.content_hash == hashlib.sha256(raw).hexdigest()
    dated = Item(id="a", title="T", url="", published=FIXED_NOW, source="s", day=date(2026, 1, 1))
    assert item.content_hash != dated.content_hash
