"""Feed documents: golden files, feedparser round trip, JSON Feed schema, escaping, ids."""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from publisher.items import Item
from publisher.publish.documents import FORMATS, FeedMeta, plan_pages
from publisher.publish.entries import EntryCache
from tests.conftest import present
from tests.specs import spec_path

GOLDEN = Path(__file__).parent / "golden" / "feeds"
JSONFEED_SCHEMA = spec_path("jsonfeed-1.1.schema.json")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"

META = FeedMeta(
    name="labor",
    title="Labor & <workers>",
    description="News on labor, “quoted” and naïve",
    link="https://www.example.org/labor/",
    language="en",
    path="topics/labor",
    feeds_url="https://www.example.org/news/feeds",
    feed_id="urn:uuid:5f0c1b3e-0000-5000-8000-000000000001",
    author="Test Org",
    icon="https://www.example.org/logo.png",
    hub="https://hub.example.org/",
)


def make_item(number: int, **changes) -> Item:
    base = Item(
        id=f"posts:item-{number}",
        title=f"Item {number}: wages & “hours”",
        url=f"https://www.example.org/posts/{number}/",
        published=NOW - timedelta(days=10 - number),
        source="posts",
        kind="news",
        summary=f"Summary {number} <b>not bold</b> & more",
        body_html=f'<p>Body {number} with <a href="https://www.example.org/x">a link</a>.</p>',
        author="Ana Muñoz" if number % 2 else None,
        topics=("labor", "economic-justice"),
        image="https://www.example.org/images/photo.jpg" if number == 3 else None,
    )
    return dataclasses.replace(base, **changes)


def render_all(items: list[Item], meta: FeedMeta = META, limit: int = 50) -> dict[str, bytes]:
    """Every document of a feed: '<format>' for the current one, '<format>-<n>' archives."""
    cache = EntryCache("https://www.example.org/news")
    out = {}
    for page in plan_pages(items, limit, empty_updated=NOW):
        for name, fmt in FORMATS.items():
            key = name if page.number is None else f"{name}-{page.number}"
            out[key] = fmt.render(meta, page, cache)
    return out


def assert_golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("PUBLISHER_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    expected = path.read_text(encoding="utf-8") if path.exists() else ""
    actual = data.decode("utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                f"golden/{name}",
                "rendered",
            )
        )
        hint = "PUBLISHER_REGEN_GOLDEN=1 regenerates it"
        pytest.fail(f"{name} differs from its golden file ({hint}):\n{diff}")


@pytest.mark.parametrize("key", ["rss", "atom", "json", "rss-1", "atom-1", "json-1"])
def test_documents_match_golden_files(key):
    documents = render_all([make_item(n) for n in range(1, 6)], limit=3)
    extension = FORMATS[key.split("-")[0]].extension
    assert_golden(f"labor{key.removeprefix(key.split('-')[0])}.{extension}", documents[key])


def parse_feed(document: bytes) -> feedparser.FeedParserDict:
    """feedparser for RSS and Atom; feedparser 6.0 cannot read JSON Feed, so that one is
    mapped onto the same fields (id, title, link, dates, tags, content) by hand."""
    if not document.lstrip().startswith(b"{"):
        return feedparser.parse(document)
    data = json.loads(document)
    entries = [
        feedparser.FeedParserDict(
            id=entry["id"],
            title=entry["title"],
            link=entry["url"],
            published_parsed=datetime.fromisoformat(entry["date_published"]).utctimetuple(),
            tags=[feedparser.FeedParserDict(term=tag) for tag in entry.get("tags", [])],
            content=[feedparser.FeedParserDict(value=entry["content_html"])],
        )
        for entry in data["items"]
    ]
    feed = feedparser.FeedParserDict(title=data["title"])
    return feedparser.FeedParserDict(bozo=False, feed=feed, entries=entries)


@pytest.mark.parametrize("name", list(FORMATS))
def test_feedparser_round_trip(name):
    items = [make_item(n) for n in range(1, 6)]
    cache = EntryCache("https://www.example.org/news")
    parsed = parse_feed(render_all(items)[name])
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.title == META.title
    newest_first = sorted(items, key=lambda item: item.published, reverse=True)
    assert [e.id for e in parsed.entries] == [cache.guid(item) for item in newest_first]
    assert [e.title for e in parsed.entries] == [item.title for item in newest_first]
    assert [e.link for e in parsed.entries] == [item.url for item in newest_first]
    for entry, item in zip(parsed.entries, newest_first, strict=True):
        year, month, day, hour, minute, second = entry.published_parsed[:6]
        published = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        assert published == item.published
        assert [tag.term for tag in entry.tags] == list(item.topics)
        assert "a link" in entry.content[0].value


def test_json_feed_is_valid_against_the_schema():
    import jsonschema  # type: ignore[import-untyped]

    schema = json.loads(JSONFEED_SCHEMA.read_text(encoding="utf-8"))
    documents = render_all([make_item(n) for n in range(1, 6)], limit=2)
    checker = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    for key in ("json", "json-1", "json-2"):
        document = json.loads(documents[key])
        errors = [error.message for error in checker.iter_errors(document)]
        assert errors == [], key
    assert json.loads(documents["json"])["next_url"].endswith("/topics/labor/archive/2.json")


def test_validator_rules_a_reader_expects():
    """What the W3C Feed Validation Service warns about, checked rule by rule."""
    documents = render_all([make_item(n) for n in range(1, 6)], limit=50)
    rss = etree.fromstring(documents["rss"])
    channel = present(rss.find("channel"))
    assert present(channel.find(f"{ATOM}link[@rel='self']")).get("href") == META.url("rss")
    assert present(channel.find(f"{ATOM}link[@rel='hub']")).get("href") == META.hub
    for item in channel.iter("item"):
        assert present(item.find("guid")).get("isPermaLink") == "false"
        assert present(item.find("description")).text  # content:encoded always has a description
        assert item.find("author") is None  # names go to dc:creator, RSS wants an email
        assert 2000 < parsedate_to_datetime(present(present(item.find("pubDate")).text)).year < 2100
    newest = parsedate_to_datetime(present(present(channel.find("lastBuildDate")).text))
    assert newest == make_item(5).published  # the newest item, not the build time
    atom = etree.fromstring(documents["atom"])
    assert atom.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert present(atom.find(f"{ATOM}link[@rel='self']")).get("href") == META.url("atom")
    assert present(atom.find(f"{ATOM}updated")).text == make_item(5).published.isoformat()
    assert present(atom.find(f"{ATOM}author/{ATOM}name")).text == "Test Org"
    for entry in atom.iter(f"{ATOM}entry"):
        author = entry.find(f"{ATOM}author")
        assert author is None or present(author.find(f"{ATOM}name")).text
    enclosure = present(atom.find(f"{ATOM}entry/{ATOM}link[@rel='enclosure']"))
    assert enclosure.get("type") == "image/jpeg"
    for document in documents.values():  # every URL in every document is absolute
        for url in _urls(document):
            assert url.startswith("https://"), url


def _urls(document: bytes) -> list[str]:
    if document.lstrip().startswith(b"{"):
        text = json.dumps(json.loads(document))
        return [part.split('"')[0] for part in text.split('url": "')[1:]]
    root = etree.fromstring(document)
    found = [url for el in root.iter() for attr in ("href", "url") if (url := el.get(attr))]
    found += [value for el in root.iter("link", "url") if (value := el.text)]
    return found


def test_ids_survive_edits_of_title_body_and_url():
    original = make_item(1)
    edited = dataclasses.replace(
        original,
        title="A new title",
        body_html="<p>Rewritten</p>",
        url="https://www.example.org/moved/",
        summary="changed",
    )
    before, after = render_all([original]), render_all([edited])
    for name in FORMATS:
        assert parse_feed(before[name]).entries[0].id == parse_feed(after[name]).entries[0].id
        assert before[name] != after[name]


HOSTILE_TITLE = "Close ]]> the <script>alert('x')</script> & \x00nul\x0b \U0001f600"
HOSTILE_BODY = "<p>]]><script>alert(1)</script>\x00 body &amp; more</p>"


@pytest.mark.parametrize("name", list(FORMATS))
def test_hostile_content_is_escaped_and_the_document_parses(name):
    item = make_item(1, title=HOSTILE_TITLE, body_html=HOSTILE_BODY, author="<b>\x00Eve</b>")
    document = render_all([item])[name]
    assert b"\x00" not in document and b"\x0b" not in document
    assert b"<script>" not in document if name != "json" else True
    expected_title = "Close ]]> the <script>alert('x')</script> & nul \U0001f600"
    if name == "json":
        parsed = json.loads(document)
        assert parsed["items"][0]["title"] == expected_title
        assert "\x00" not in parsed["items"][0]["content_html"]
    else:
        root = etree.fromstring(document)  # strict parser: raises on anything malformed
        titles = [el.text for el in root.iter("title", f"{ATOM}title")]
        assert expected_title in titles
        assert b"&lt;script&gt;" in document
    assert not parse_feed(document).bozo


def test_empty_feed_is_still_a_valid_document():
    documents = render_all([])
    assert set(documents) == set(FORMATS)
    for name, document in documents.items():
        assert not parse_feed(document).bozo, name
    assert json.loads(documents["json"])["items"] == []
    updated = present(etree.fromstring(documents["atom"]).find(f"{ATOM}updated")).text
    assert updated == NOW.isoformat()


def test_paging_puts_each_item_in_exactly_one_page():
    items = [make_item(n, published=NOW - timedelta(hours=n)) for n in range(1, 24)]
    pages = plan_pages(items, 5, empty_updated=NOW)
    assert [page.number for page in pages] == [1, 2, 3, 4, None]
    assert [len(page.items) for page in pages] == [5, 5, 5, 5, 3]
    assert [page.prev_archive for page in pages] == [None, 1, 2, 3, 4]
    seen = [item.id for page in pages for item in page.items]
    assert sorted(seen) == sorted(item.id for item in items)
    oldest = pages[0].items
    assert max(i.published for i in oldest) < min(i.published for i in pages[1].items)


def test_entries_made_in_parallel_are_the_same_as_made_here():
    items = [make_item(n) for n in range(1, 6)] + [make_item(9, title="Ünïcode ]]> & <b>")]
    serial = render_all(items, limit=2)
    cache = EntryCache("https://www.example.org/news")
    cache.warm(items, workers=2, threshold=0)  # a forked process makes half of them
    parallel = {}
    for page in plan_pages(items, 2, empty_updated=NOW):
        for name, fmt in FORMATS.items():
            key = name if page.number is None else f"{name}-{page.number}"
            parallel[key] = fmt.render(META, page, cache)
    assert parallel == serial
