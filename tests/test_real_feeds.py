"""Real feeds whole (issue 18): each case seen in third-party feeds, as a fixture in
tests/realfeeds/ (or made here) served on 127.0.0.1, through collect -> compose -> render ->
feeds. Nothing is lost that rss2email delivers, and what is published is valid."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import feedparser
import pytest
from lxml import etree
from sqlalchemy import select

from publisher.config import load_config
from publisher.pipeline import run_once
from publisher.publish.entries import FEED_BODY_MAX
from publisher.store.items import list_items
from publisher.store.models import EditionRow
from tests.conftest import BASE_CONFIG, FIXED_NOW, present

FIXTURES = Path(__file__).parent / "realfeeds"
ATOM = "{http://www.w3.org/2005/Atom}"
C1 = re.compile("[\x80-\x9f]")
W3C_LIMIT = 5 * 1024 * 1024

CONFIG = """
database_url: "{database_url}"
sources:
{sources}
feeds:
  feeds:
    - {{name: everything, title: All, description: All, path: everything, everything: true}}
campaigns:
  - name: weekly
    title: Weekly
    subject: "Weekly #{{{{ edition.number }}}}"
    lookback_days: 30
    sections:
      - {{name: all, max: 50, title: All}}
"""


def project(tmp_path: Path, httpserver, database_url: str, feeds: dict[str, bytes]):
    """A project whose feed sources are `feeds` (name -> document) served on 127.0.0.1."""
    lines = []
    for name, body in feeds.items():
        httpserver.expect_request(f"/{name}").respond_with_data(
            body, content_type="application/xml"
        )
        url = httpserver.url_for(f"/{name}")
        lines.append(f'  - {{name: {name}, type: feed, url: "{url}", max_bytes: 20000000}}')
    text = BASE_CONFIG + CONFIG.format(database_url=database_url, sources="\n".join(lines))
    (tmp_path / "schedules.yaml").write_text(text, encoding="utf-8")
    return load_config(tmp_path / "schedules.yaml")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def edition_text(store) -> str:
    with store.session() as session:
        return present(session.scalars(select(EditionRow.text)).first())


def edition_html(store) -> str:
    with store.session() as session:
        return present(session.scalars(select(EditionRow.html)).first())


def documents(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / "feeds").glob("everything.*")}


def test_an_atom_entry_typed_pdf_or_audio_with_a_urn_id_is_kept(tmp_path, httpserver, store):
    config = project(tmp_path, httpserver, store.url, {"reports": fixture("pdf-audio.atom")})
    report = run_once(config, store, now=FIXED_NOW)
    assert present(report.collect).problems == []
    urls = {item.title: item.url for item in list_items(store)}
    assert urls == {
        "Annual report (PDF)": "https://reports.example/2026/annual.pdf",  # its only link
        "Episode 12: organising tenants": "https://reports.example/episodes/12",  # the page
        # relative, resolved; the javascript: alternate is never chosen
        "Relative and typed": httpserver.url_for("/files/brief.pdf"),
    }


def test_a_link_with_spaces_is_percent_encoded_and_readable_where_the_format_allows(
    tmp_path, httpserver, store
):
    config = project(tmp_path, httpserver, store.url, {"odd": fixture("odd.rss")})
    run_once(config, store, now=FIXED_NOW)
    docs = documents(tmp_path)
    iri = "https://odd.example/news/a%20story%20über%20ü.html"
    uri = "https://odd.example/news/a%20story%20%C3%BCber%20%C3%BC.html"
    rss = etree.fromstring(docs["everything.rss"])
    assert uri in [link.text for link in rss.iter("link")]  # RSS <link> takes a URI only
    atom = etree.fromstring(docs["everything.atom"])
    assert iri in [link.get("href") for link in atom.iter(f"{ATOM}link")]
    assert uri in [i.get("url") for i in json.loads(docs["everything.json"])["items"]]
    for data in docs.values():
        assert b"a story" not in data  # no raw space in any link
    assert f'href="{iri}"' in edition_html(store)  # an email takes the IRI too


def test_a_status_feed_without_links_is_kept_whole(tmp_path, httpserver, store):
    config = project(tmp_path, httpserver, store.url, {"status": fixture("status.rss")})
    report = run_once(config, store, now=FIXED_NOW)
    assert present(report.collect).problems == []
    items = list_items(store)
    assert len(items) == 10 and all(item.url == "" for item in items)  # 10 of 10 kept
    assert len({item.id for item in items}) == 10
    text = edition_text(store)
    for k in range(1, 11):
        assert f"All systems normal at check {k}. Nothing further to read." in text
    assert "Read more" not in text and "http://localhost" not in text
    assert "All systems normal at check 3" in edition_html(store)
    rss = etree.fromstring(documents(tmp_path)["everything.rss"])
    entries = rss.findall("channel/item")
    assert len(entries) == 10
    for entry in entries:
        assert entry.find("link") is None
        assert present(entry.find("guid")).get("isPermaLink") == "false"
    atom = etree.fromstring(documents(tmp_path)["everything.atom"])
    assert not atom.findall(f"{ATOM}entry/{ATOM}link")
    parsed = json.loads(documents(tmp_path)["everything.json"])
    assert len(parsed["items"]) == 10 and not any("url" in i for i in parsed["items"])
    # a second run finds the same ten items (ids are stable without a guid too)
    again = run_once(config, store, now=FIXED_NOW)
    assert present(again.collect).sources[0].upsert.inserted == 0


def test_a_portuguese_feed_with_dates_feedparser_cannot_read(tmp_path, httpserver, store):
    assert feedparser.parse(fixture("noticias.rss")).entries[0].get("published_parsed") is None
    config = project(tmp_path, httpserver, store.url, {"noticias": fixture("noticias.rss")})
    report = run_once(config, store, now=FIXED_NOW)
    assert present(report.collect).problems == []
    dates = {item.title: item for item in list_items(store)}
    assert len(dates) == 16  # 15 of 15, and one dated with a day only
    first = dates["Notícia 1"]  # 'Seg, 10 Set 2018 10:30:00 -0300'
    assert first.published == datetime(2018, 9, 10, 13, 30, tzinfo=UTC) and first.day is None
    assert dates["Notícia 15"].published == datetime(2018, 9, 24, 13, 30, tzinfo=UTC)
    day_only = dates["Notícia só com dia"]  # 'Seg, 24 Set 2018': that day in New York
    assert day_only.day == date(2018, 9, 24)
    assert day_only.published == datetime(2018, 9, 24, 4, 0, tzinfo=UTC)


def test_a_nine_megabyte_body_is_capped_in_every_feed_document(tmp_path, httpserver, store):
    paragraph = "<p>" + "Minutes of the meeting, word for word. " * 25 + "</p>\n"
    body = paragraph * (9_400_000 // len(paragraph))
    small = "<p>A normal post.</p>"
    items = [
        ("Huge minutes", "https://big.example/minutes", body),
        ("Normal post", "https://big.example/normal", small),
    ]
    rss = '<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>'
    rss += "<link>https://big.example/</link><description>d</description>"
    for k, (title, link, html) in enumerate(items):
        rss += (
            f"<item><title>{title}</title><link>{link}</link><guid>urn:big:{k}</guid>"
            f"<description><![CDATA[{html}]]></description>"
            f"<pubDate>Mon, 23 Nov 2026 1{k}:00:00 GMT</pubDate></item>"
        )
    rss += "</channel></rss>"
    assert len(rss) > 9_000_000
    config = project(tmp_path, httpserver, store.url, {"big": rss.encode()})
    run_once(config, store, now=FIXED_NOW)
    stored = {item.title: item for item in list_items(store)}
    assert len(stored["Huge minutes"].body_html) > 8_000_000  # the store keeps it whole
    docs = documents(tmp_path)
    for name, data in docs.items():
        assert len(data) < 200_000, (name, len(data))  # not 9 MB, nor near the W3C's 5 MB
    feed = json.loads(docs["everything.json"])
    entries = {i["title"]: i for i in feed["items"]}
    huge = entries["Huge minutes"]["content_html"]
    assert len(huge.encode()) <= FEED_BODY_MAX
    assert 'href="https://big.example/minutes"' in huge and "Read the whole text" in huge
    assert entries["Normal post"]["content_html"] == small  # below the cap: the full text


def test_c1_controls_never_reach_a_feed_or_an_email(tmp_path, httpserver, store):
    raw = fixture("odd.rss").decode()
    assert C1.search(raw)  # the fixture carries them
    config = project(tmp_path, httpserver, store.url, {"odd": fixture("odd.rss")})
    run_once(config, store, now=FIXED_NOW)
    for item in list_items(store):
        for value in (item.title, item.summary, item.body_html):
            assert not C1.search(value), (item.title, value)
    for name, data in documents(tmp_path).items():
        assert not C1.search(data.decode()), name
    assert not C1.search(edition_text(store)) and not C1.search(edition_html(store))


def test_a_date_in_2103_is_not_trusted_for_ordering(tmp_path, httpserver, store):
    config = project(tmp_path, httpserver, store.url, {"odd": fixture("odd.rss")})
    run_once(config, store, now=FIXED_NOW)
    stored = {item.title: item for item in list_items(store)}
    assert stored["From the future"].published.year == 2103  # kept as the source says
    docs = documents(tmp_path)
    atom = etree.fromstring(docs["everything.atom"])
    # it stands where it arrived: first seen at FIXED_NOW, so the feed's date is that
    assert atom.findtext(f"{ATOM}updated") == FIXED_NOW.isoformat()
    feed = json.loads(docs["everything.json"])
    future = [i for i in feed["items"] if i["title"] == "From the future"][0]
    assert future["date_published"] == FIXED_NOW.isoformat()
    assert b"Nov 2103" not in docs["everything.rss"]
    assert "From the future" not in edition_text(store)  # not in the digest either


@pytest.mark.parametrize(
    ("zone", "offset", "utc"),
    [
        ("America/New_York", "-05:00", datetime(2026, 11, 20, 5, tzinfo=UTC)),
        ("Pacific/Auckland", "+13:00", datetime(2026, 11, 19, 11, tzinfo=UTC)),
    ],
    ids=["west", "east"],
)
def test_an_rss_date_that_is_only_a_day_is_that_day_in_the_feeds(
    tmp_path, httpserver, store, zone, offset, utc
):
    config = project(tmp_path, httpserver, store.url, {"odd": fixture("odd.rss")})
    config = config.model_copy(
        update={"organisation": config.organisation.model_copy(update={"timezone": zone})}
    )
    run_once(config, store, now=FIXED_NOW)
    item = {item.title: item for item in list_items(store)}["Only a day"]
    assert item.published == utc and item.day == date(2026, 11, 20)
    feed = json.loads(documents(tmp_path)["everything.json"])
    entry = [i for i in feed["items"] if i["title"] == "Only a day"][0]
    assert entry["date_published"] == f"2026-11-20T00:00:00{offset}"
    rss = documents(tmp_path)["everything.rss"].decode()
    assert f"Fri, 20 Nov 2026 00:00:00 {offset.replace(':', '')}" in rss
    assert "Only a day (20 November 2026)" in edition_text(store)


def test_an_item_without_a_link_is_shown_whole_in_every_section_without_read_more():
    """Featured and list sections, HTML and text: the title is not a link, the text is the
    body's whole text (not an excerpt), and there is no "Read more"."""
    from publisher.compose.edition import CampaignHistory, compose_edition
    from publisher.render.email import render_edition
    from tests.test_render_fixtures import item, sample_campaign, sample_config

    config = sample_config()
    words = " ".join(f"word{k}" for k in range(300))  # longer than any excerpt
    linkless = [
        dataclasses.replace(
            item(slug, days_ago=2, kind=kind, image=False),
            url="",
            summary="Short summary.",
            body_html=f"<p>{slug} {words} end.</p>",
        )
        for slug, kind in (("featured-notice", "resource"), ("listed-notice", "article"))
    ]
    edition = present(
        compose_edition(linkless, sample_campaign(config), now=FIXED_NOW, history=CampaignHistory())
    )
    assert {i.id for i in edition.items} == {"test:featured-notice", "test:listed-notice"}
    rendered = render_edition(edition, config.organisation, web_url="https://www.example.org/a")
    for shown in (rendered.html, rendered.text.replace("\n", " ")):
        assert "Read more" not in shown
        for slug in ("featured-notice", "listed-notice"):
            assert f"{slug} {words[:200]}" in " ".join(shown.split())
            assert "word299 end." in shown
    assert 'href=""' not in rendered.html


def test_foreign_dates_are_read_in_a_known_language_only():
    from publisher.sources.dates import foreign_date

    moment = datetime(2018, 9, 24, 13, 30, tzinfo=UTC)
    assert foreign_date("Seg, 24 Set 2018 10:30:00 -0300", "pt-BR") == moment
    assert foreign_date("lun., 24 sept. 2018 15:30:00 +0200", "fr") == moment
    assert foreign_date("Seg, 24 Set 2018 10:30:00 -0300", "xx") is None  # unknown: no guess
    assert foreign_date("Seg, 24 Set 2018 10:30:00 -0300", None) is None
    assert foreign_date("ontem", "pt") is None  # relative: never against the real clock
    assert foreign_date("24 Set", "pt") is None  # no year: never the current one


def test_json_feed_items_without_an_http_link_are_kept(make_config):
    from publisher.sources.feed import FeedSource

    config = make_config('sources:\n  - {name: j, type: feed, url: "https://j.example/f"}\n')
    source = FeedSource(config.sources[0], config)
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [
            {"title": "No link, no id", "content_text": "t", "date_published": "2026-11-20"},
            {
                "id": "https://j.example/2",
                "url": "ftp://j.example/2",
                "title": "Ftp link",
                "date_published": "2026-11-20T10:00:00Z",
            },
            {"id": "opaque-3", "url": "/3", "title": "Relative", "date_published": "2026-11-20"},
        ],
    }
    result = source.parse(json.dumps(doc).encode(), "https://j.example/f", {})
    assert result.problems == []
    urls = {item.title: item.url for item in result.items}
    assert urls == {
        "No link, no id": "",
        "Ftp link": "https://j.example/2",  # not ftp: the id, an http(s) URL
        "Relative": "https://j.example/3",
    }
    assert result.items[0].id.startswith("j:sha1:")
