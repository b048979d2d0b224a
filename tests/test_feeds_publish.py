"""Publishing feeds to disk: selection, rebuilds, archives, WebSub, editions, CLI."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import feedparser
import httpx
import pytest
from lxml import etree
from typer.testing import CliRunner
from werkzeug import Response

from publisher.errors import ConfigError
from publisher.items import Item
from publisher.pipeline import build_feeds
from publisher.publish import MemoryState, feeds_up_to_date, publish_feeds
from publisher.store.items import upsert_items
from publisher.store.models import EditionRow
from tests.conftest import present

ATOM = "{http://www.w3.org/2005/Atom}"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

FEEDS = """\
campaigns:
  - name: weekly
    title: Weekly
    subject: The weekly
feeds:
  feeds:
    - name: everything
      title: Everything
      description: All of it
      path: everything
      everything: true
      limit: {limit}
    - name: labor
      title: Labor
      description: Labor news
      path: topics/labor
      topics: [labor]
    - name: resources
      title: Resources
      description: Toolkits
      path: kinds/resources
      kinds: [resource]
    - name: weekly
      title: Weekly editions
      description: Every edition
      path: editions/weekly
      campaign: weekly
"""


def items(count: int, start: int = 0) -> list[Item]:
    return [
        Item(
            id=f"posts:{n}",
            title=f"Post {n}",
            url=f"https://www.example.org/posts/{n}/",
            published=NOW - timedelta(days=1000 - n),
            source="posts",
            kind="resource" if n % 3 == 0 else "news",
            summary=f"Summary {n}",
            body_html=f"<p>Body {n}</p>",
            topics=("labor",) if n % 2 else ("economic-justice",),
        )
        for n in range(start, start + count)
    ]


@pytest.fixture
def config(make_config):
    return make_config(FEEDS.format(limit=5))


def feed_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_every_feed_is_written_with_opml_and_alternate_links(config, project):
    report = publish_feeds(config, items(12), {}, now=NOW)
    out = project / "feeds"
    for path in ("everything", "topics/labor", "kinds/resources", "editions/weekly"):
        for extension in ("rss", "atom", "json"):
            assert (out / f"{path}.{extension}").is_file(), path
    labor = feedparser.parse((out / "topics/labor.rss").read_bytes())
    assert {e.title for e in labor.entries} == {f"Post {n}" for n in range(12) if n % 2}
    resources = json.loads((out / "kinds/resources.json").read_bytes())
    assert [i["title"] for i in resources["items"]] == ["Post 9", "Post 6", "Post 3", "Post 0"]
    opml = etree.parse(str(out / "index.opml"))
    urls = [o.get("xmlUrl") for o in opml.iter("outline")]
    assert "https://www.example.org/news/feeds/topics/labor.rss" in urls and len(urls) == 4
    snippet = (out / "alternate-links.html").read_text()
    assert snippet.count('<link rel="alternate"') == 12
    assert 'type="application/feed+json"' in snippet
    assert report.note.startswith(f"feeds: {report.written} files written, 0 unchanged")


def test_rebuild_without_changes_is_byte_identical_and_leaves_mtimes(config, project):
    state = MemoryState()
    publish_feeds(config, items(23), {}, now=NOW, state=state)
    out = project / "feeds"
    before = feed_files(out)
    old = 1_600_000_000
    for path in out.rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))
    later = NOW + timedelta(days=3)  # the clock moves; the content does not
    report = publish_feeds(config, items(23), {}, now=later, state=state)
    assert report.written == 0 and report.unchanged == len(before) + 0
    # Without the fingerprints (a fresh state) every document is re-rendered...
    report = publish_feeds(config, items(23), {}, now=later)
    assert report.written == 0  # ...and still compares equal, so nothing is rewritten
    assert feed_files(out) == before
    files = [p for p in out.rglob("*") if p.is_file()]
    assert all(p.stat().st_mtime == old for p in files)


def test_an_edit_rewrites_only_the_documents_holding_the_item(config, project):
    publish_feeds(config, items(23), {}, now=NOW)
    out = project / "feeds"
    before = feed_files(out)
    edited = items(23)
    edited[0] = dataclasses.replace(edited[0], title="Post 0, corrected")  # archive 1 of all
    publish_feeds(config, edited, {}, now=NOW)
    after = feed_files(out)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {
        "everything/archive/1.rss",
        "everything/archive/1.atom",
        "everything/archive/1.json",
        "kinds/resources.rss",
        "kinds/resources.atom",
        "kinds/resources.json",
    }


def follow_archives(out: Path, extension: str) -> list[list[str]]:
    """Start at the subscription document and follow prev-archive / next_url to the end."""
    base = "https://www.example.org/news/feeds/"
    path: Path | None = out / f"everything.{extension}"
    pages: list[list[str]] = []
    while path is not None:
        data = path.read_bytes()
        if extension == "json":
            document = json.loads(data)
            pages.append([entry["id"] for entry in document["items"]])
            following = document.get("next_url")
        else:
            root = etree.fromstring(data)
            ids = [present(e.text) for e in root.iter("guid", f"{ATOM}id")]
            pages.append(ids if extension == "rss" else ids[1:])  # the feed's own id first
            link = root.find(f".//{ATOM}link[@rel='prev-archive']")
            following = link.get("href") if link is not None else None
        path = out / following.removeprefix(base) if following else None
    return pages


@pytest.mark.parametrize("extension", ["rss", "atom", "json"])
def test_archive_paging_reaches_every_item_exactly_once(config, project, extension):
    publish_feeds(config, items(23), {}, now=NOW)
    pages = follow_archives(project / "feeds", extension)
    assert [len(page) for page in pages] == [3, 5, 5, 5, 5]
    every = [entry for page in pages for entry in page]
    assert len(every) == len(set(every)) == 23
    archive = (project / "feeds/everything/archive/2.atom").read_bytes()
    root = etree.fromstring(archive)
    assert root.find("{http://purl.org/syndication/history/1.0}archive") is not None
    assert present(present(root.find(f"{ATOM}link[@rel='current']")).get("href")).endswith(
        "/everything.atom"
    )


def test_full_archives_are_rewritten_only_when_the_next_archive_appears(config, project):
    state = MemoryState()
    publish_feeds(config, items(23), {}, now=NOW, state=state)
    older, newest = (project / f"feeds/everything/archive/{n}.rss" for n in (3, 4))
    for archive in (older, newest):
        os.utime(archive, (1_600_000_000, 1_600_000_000))
    content = older.read_bytes()
    current = "https://www.example.org/news/feeds/everything.rss"
    assert _next_archive(newest) == current  # the newest archive's neighbour: the feed
    publish_feeds(config, items(30), {}, now=NOW, state=state)  # 7 more: archive 5 appears
    assert older.read_bytes() == content and older.stat().st_mtime == 1_600_000_000
    assert (project / "feeds/everything/archive/5.rss").is_file()
    # Archive 4 changed once, to link its new neighbour; its entries did not change.
    assert _next_archive(newest) == current.replace(".rss", "/archive/5.rss")
    assert _next_archive(older) == current.replace(".rss", "/archive/4.rss")
    publish_feeds(config, items(8), {}, now=NOW, state=state)  # items deleted: stale go
    assert not (project / "feeds/everything/archive/5.rss").exists()


def _next_archive(path: Path) -> str:
    links = etree.fromstring(path.read_bytes()).findall(f"channel/{ATOM}link")
    [href] = [link.get("href") for link in links if link.get("rel") == "next-archive"]
    return present(href)


def test_bad_items_are_reported_and_left_out(config, project):
    good = items(3)
    untitled = dataclasses.replace(good[0], id="posts:untitled", title="  \x00 ")
    # an item without a date, which Item's type rules out: what a broken source could give
    undated = dataclasses.replace(good[1], id="posts:undated", published=None)  # type: ignore[arg-type]
    relative = dataclasses.replace(good[2], id="posts:relative", url="/posts/x")
    report = publish_feeds(config, [*good, untitled, undated, relative], {}, now=NOW)
    assert len(report.left_out) == 3
    assert "posts:untitled" in report.left_out[0] and "no title" in report.left_out[0]
    assert "no date" in report.left_out[1]
    assert "3 item(s) left out" in report.note
    document = feedparser.parse((project / "feeds/everything.atom").read_bytes())
    assert not document.bozo and len(document.entries) == 3


def test_websub_hub_is_advertised_and_pinged_after_a_change(make_config, project, httpserver):
    pings: list[dict] = []

    def hub(request):
        pings.append(parse_qs(request.get_data(as_text=True)))
        return Response("", status=204)

    httpserver.expect_request("/hub", method="POST").respond_with_handler(hub)
    hub_url = httpserver.url_for("/hub")
    config = make_config(
        FEEDS.format(limit=5).replace(
            "feeds:\n  feeds:", "feeds:\n  websub_hub: " + hub_url + "\n  feeds:"
        )
    )
    with httpx.Client() as http:
        report = publish_feeds(config, items(4), {}, now=NOW, http=http)
        assert len(pings) == 12 and len(report.pinged) == 12  # 4 feeds x 3 formats
        assert all(p["hub.mode"] == ["publish"] for p in pings)
        assert {p["hub.url"][0] for p in pings} >= {
            "https://www.example.org/news/feeds/everything.rss",
            "https://www.example.org/news/feeds/topics/labor.json",
        }
        publish_feeds(config, items(4), {}, now=NOW, http=http)
        assert len(pings) == 12  # nothing changed: no ping
        publish_feeds(config, items(5), {}, now=NOW, http=http)  # Post 4: everything only
        assert sorted(p["hub.url"][0].rsplit("/", 1)[1] for p in pings[12:]) == [
            "everything.atom",
            "everything.json",
            "everything.rss",
        ]
    out = project / "feeds"
    assert json.loads((out / "everything.json").read_bytes())["hubs"][0]["url"] == hub_url
    rss = etree.fromstring((out / "everything.rss").read_bytes())
    assert present(rss.find(f"channel/{ATOM}link[@rel='hub']")).get("href") == hub_url
    atom = etree.fromstring((out / "everything.atom").read_bytes())
    assert present(atom.find(f"{ATOM}link[@rel='hub']")).get("href") == hub_url


def test_a_failing_hub_is_reported_and_the_feeds_stay(make_config, project, httpserver):
    httpserver.expect_request("/hub").respond_with_data("down", status=503)
    extra = FEEDS.format(limit=5).replace(
        "feeds:\n  feeds:", f"feeds:\n  websub_hub: {httpserver.url_for('/hub')}\n  feeds:"
    )
    config = make_config(extra)
    state = MemoryState()
    report = publish_feeds(config, items(2), {}, now=NOW, state=state)
    assert report.problems and "503" in report.problems[0]
    assert (project / "feeds/everything.rss").is_file()
    missed = len(httpserver.log)
    # The next build changes no file, yet retries every ping the hub did not take.
    httpserver.clear()
    httpserver.expect_request("/hub").respond_with_data("", status=204)
    assert feeds_up_to_date(config, "same", state) is None
    again = publish_feeds(config, items(2), {}, now=NOW, signature="same", state=state)
    assert again.written == 0 and len(again.pinged) == missed
    assert feeds_up_to_date(config, "same", state) is not None  # all announced: skip now


def add_edition(store, number: int, *, sent: bool, campaign: str = "weekly") -> None:
    composed = NOW - timedelta(days=30 - number)
    with store.session() as session:
        session.add(
            EditionRow(
                campaign=campaign,
                number=number,
                composed_at=composed,
                subject=f"Weekly #{number} & more",
                preheader="This week's news",
                html="<p>%%NAME%%</p>",
                text="%%NAME%%",
                status="sent" if sent else "composed",
                sent_at=composed + timedelta(hours=1) if sent else None,
            )
        )


def test_campaign_feed_lists_sent_editions_linking_to_their_pages(config, project, store):
    build_feeds(config, store, now=NOW)  # no editions yet: still a valid, empty feed
    out = project / "feeds"
    empty = feedparser.parse((out / "editions/weekly.atom").read_bytes())
    assert not empty.bozo and empty.entries == []
    for number in (1, 2):
        add_edition(store, number, sent=True)
    add_edition(store, 3, sent=False)  # composed, not sent: not published
    add_edition(store, 1, sent=True, campaign="other")
    report = build_feeds(config, store, now=NOW)
    parsed = feedparser.parse((out / "editions/weekly.rss").read_bytes())
    assert not parsed.bozo
    assert [e.link for e in parsed.entries] == [
        "https://www.example.org/news/archive/weekly/2.html",
        "https://www.example.org/news/archive/weekly/1.html",
    ]
    assert parsed.entries[0].title == "Weekly #2 & more"
    assert "%%NAME%%" not in (out / "editions/weekly.json").read_text()
    assert report.written > 0


def test_feed_configuration_is_validated(make_config):
    with pytest.raises(ConfigError) as error:
        make_config(
            """\
            feeds:
              feeds:
                - name: mixed
                  title: Mixed
                  description: Two selectors
                  path: mixed
                  everything: true
                  topics: [labor]
            """
        )
    assert "exactly one selector" in str(error.value) and "schedules.yaml:" in str(error.value)
    with pytest.raises(ConfigError, match="duplicate feed path 'same'"):
        make_config(
            """\
            feeds:
              feeds:
                - {name: a, title: A, description: A, path: same, everything: true}
                - {name: b, title: B, description: B, path: same, kinds: [news]}
            """
        )


def test_cli_builds_feeds_and_loading_refuses_unknown_campaigns(project, make_config):
    from publisher.cli import app

    with pytest.raises(ConfigError) as error:
        make_config(FEEDS.format(limit=5).replace("campaign: weekly", "campaign: nope"))
    assert error.value.key == "feeds.feeds[3].campaign"
    assert "unknown campaign 'nope'" in str(error.value)
    config = make_config(FEEDS.format(limit=5))
    env = {"PUBLISHER_DATABASE_URL": f"sqlite:///{project}/cli.db"}
    result = CliRunner().invoke(
        app, ["--config", str(config.file), "feeds", "build"], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "feeds: 16 files written, 0 unchanged" in result.output  # index.html, feed.xsl
    assert (project / "feeds/everything.rss").is_file()


def test_pipeline_skips_an_unchanged_store_and_notices_any_edit(config, project, store):
    upsert_items(store, items(6), now=NOW)
    first = build_feeds(config, store, now=NOW)
    assert first.written == 19  # 4 feeds + 1 archive, 3 formats each; OPML; links; index; xsl
    again = build_feeds(config, store, now=NOW)  # nothing changed: no item is even loaded
    assert again.written == 0 and again.unchanged == 19
    edited = dataclasses.replace(items(6)[5], title="Post 5, corrected")
    upsert_items(store, [edited], now=NOW)  # same clock: only the content hash tells
    after = build_feeds(config, store, now=NOW)
    assert after.written > 0
    titles = [
        e.title for e in feedparser.parse((project / "feeds/everything.rss").read_bytes()).entries
    ]
    assert "Post 5, corrected" in titles
    add_edition(store, 1, sent=True)
    assert build_feeds(config, store, now=NOW).written == 3  # the campaign feed only
    (project / "feeds/everything.json").unlink()  # a deleted file is noticed and rewritten
    assert build_feeds(config, store, now=NOW).written == 1


def test_an_unwritable_output_is_a_clear_error_and_leaves_no_temporary_files(config, project):
    from publisher.publish import FeedWriteError

    publish_feeds(config, items(3), {}, now=NOW)
    blocked = project / "feeds/topics"
    for path in blocked.iterdir():
        path.unlink()
    blocked.rmdir()
    blocked.write_text("not a directory")  # feeds/topics/labor.* cannot be written now
    # Writes run on several threads: whichever of the topic's files fails first is named.
    expected = r"cannot (read|write) .*/topics/labor\S*: Not a directory"
    with pytest.raises(FeedWriteError, match=expected):
        publish_feeds(config, items(4), {}, now=NOW)
    leftovers = [p.name for p in (project / "feeds").rglob(".*")]
    assert leftovers == []


def test_a_backdated_arrival_leaves_written_archives_alone(config, project):
    first_seen = NOW - timedelta(days=1)
    stored = [dataclasses.replace(i, first_seen=first_seen) for i in items(12)]
    publish_feeds(config, stored, {}, now=NOW)
    archives = sorted((project / "feeds/everything/archive").glob("*.rss"))
    before = {path: path.read_bytes() for path in archives}
    late = dataclasses.replace(
        items(1, start=500)[0],
        id="posts:late",
        title="Backdated",
        published=NOW - timedelta(days=2000),  # older than everything, collected today
        first_seen=NOW,
    )
    publish_feeds(config, [*stored, late], {}, now=NOW)
    assert {path: path.read_bytes() for path in archives} == before
    current = feedparser.parse((project / "feeds/everything.rss").read_bytes())
    assert "Backdated" in [entry.title for entry in current.entries]
