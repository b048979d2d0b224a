"""Each source type against real inputs: files on disk and feeds over local HTTP."""

from __future__ import annotations

import json

import pytest
from werkzeug import Response

from publisher.sources import CollectContext, SourceMemory
from publisher.sources.collect import collect_all
from publisher.sources.export import ExportSource
from publisher.sources.feed import FeedSource
from publisher.sources.markdown import MarkdownSource
from publisher.store.items import list_items
from publisher.store.sink import StoreSink
from publisher.store.state import get_source_memory

GOOD_MD = """\
---
title: "Wages & Benefits: a primer"
date: 2026-11-20T10:00:00-05:00
kind: resource
topics: [Economic Justice, labor]
author: Staff
image: /images/primer.png
image_alt: A chart
---

Read [the report](/reports/primer/) today.
"""

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Partner</title><link>https://partner.example/</link>
<description>d</description>
<item><title>First &amp; best</title><link>/posts/first</link><guid>urn:partner:1</guid>
<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate>
<description>&lt;p&gt;Hello &lt;a href="/x"&gt;x&lt;/a&gt;&lt;/p&gt;</description></item>
<item><title>Second</title><link>https://partner.example/posts/second</link>
<pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate><description>two</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id>
<updated>2026-11-24T10:00:00Z</updated>
<entry><title>Atom entry</title><id>urn:a:1</id><link href="https://a.example/1"/>
<updated>2026-11-24T10:00:00Z</updated>
<content type="html">&lt;b&gt;bold&lt;/b&gt;</content></entry>
</feed>"""

JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "J",
    "items": [
        {
            "id": "j1",
            "url": "https://j.example/1",
            "title": "Json item",
            "content_html": "<p>hi</p>",
            "date_published": "2026-11-22T10:00:00Z",
            "tags": ["Labor"],
        }
    ],
}


def ctx(now, memory=None, http=None):
    return CollectContext(now=now, memory=memory or SourceMemory(), http=http)


# --- markdown ---------------------------------------------------------------------------


def test_markdown_source_reads_front_matter_and_makes_links_absolute(
    project, make_config, fixed_now
):
    (project / "content" / "primer.md").write_text(GOOD_MD, encoding="utf-8")
    config = make_config(
        "sources:\n  - {name: posts, type: markdown, path: content, "
        "base_url: 'https://www.example.org/'}\n"
    )
    result = MarkdownSource(config.sources[0], config).collect(ctx(fixed_now))
    assert result.problems == []
    [item] = result.items
    assert item.id == "posts:primer"
    assert item.title == "Wages & Benefits: a primer"
    assert item.kind == "resource"
    assert item.topics == ("economic-justice", "labor")
    assert item.url == "https://www.example.org/primer/"
    assert 'href="https://www.example.org/reports/primer/"' in item.body_html
    assert item.image == "https://www.example.org/images/primer.png"
    assert item.published.isoformat() == "2026-11-20T15:00:00+00:00"
    assert item.summary.startswith("Read the report today")


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("no front matter\n", 1, "no YAML front matter"),
        ("---\ntitle: [unclosed\ndate: 2026-01-01\n---\nbody\n", 3, "not valid YAML"),
        ("---\ndate: 2026-01-01\n---\nbody\n", 2, "no 'title'"),
        ("---\ntitle: x\ndate: 2026-01-01\n", 1, "not closed"),
    ],
)
def test_bad_markdown_file_is_reported_and_others_still_collected(
    project, make_config, fixed_now, text, line, reason
):
    (project / "content" / "good.md").write_text(GOOD_MD, encoding="utf-8")
    bad = project / "content" / "bad.md"
    bad.write_text(text, encoding="utf-8")
    config = make_config("sources:\n  - {name: posts, type: markdown, path: content}\n")
    result = MarkdownSource(config.sources[0], config).collect(ctx(fixed_now))
    assert [i.id for i in result.items] == ["posts:good"]
    [problem] = result.problems
    assert problem.where == f"{bad}:{line}"
    assert reason in problem.reason


def test_markdown_bad_date_and_kind_are_reported(project, make_config, fixed_now):
    (project / "content" / "a.md").write_text(
        "---\ntitle: A\ndate: yesterday\n---\n", encoding="utf-8"
    )
    (project / "content" / "b.md").write_text(
        "---\ntitle: B\ndate: 2026-11-01\nkind: podcast\n---\n", encoding="utf-8"
    )
    config = make_config("sources:\n  - {name: posts, type: markdown, path: content}\n")
    result = MarkdownSource(config.sources[0], config).collect(ctx(fixed_now))
    reasons = sorted(p.reason for p in result.problems)
    assert "date 'yesterday' is not an ISO 8601 date" in reasons[0]
    assert "kind 'podcast' is not one of" in reasons[1]


# --- remote feeds -----------------------------------------------------------------------


def feed_config(make_config, url):
    return make_config(f"sources:\n  - {{name: partner, type: feed, url: '{url}', timeout: 5}}\n")


def test_rss_atom_and_json_feeds_are_parsed(httpserver, make_config, fixed_now):
    httpserver.expect_request("/rss").respond_with_data(RSS, content_type="application/rss+xml")
    httpserver.expect_request("/atom").respond_with_data(ATOM, content_type="application/atom+xml")
    httpserver.expect_request("/json").respond_with_json(JSON_FEED)
    found = {}
    for path in ("rss", "atom", "json"):
        config = feed_config(make_config, httpserver.url_for(f"/{path}"))
        result = FeedSource(config.sources[0], config).collect(ctx(fixed_now))
        assert result.problems == [], path
        found[path] = result.items
    first = found["rss"][0]
    assert first.id == "partner:urn:partner:1"
    assert first.title == "First & best"
    assert first.url == httpserver.url_for("/posts/first")
    assert 'href="' + httpserver.url_for("/x") + '"' in first.body_html
    assert found["rss"][1].id == "partner:https://partner.example/posts/second"  # no guid
    assert found["atom"][0].body_html == "<b>bold</b>"
    assert found["json"][0].topics == ("labor",)


def test_conditional_get_304_means_nothing_to_do(httpserver, make_config, fixed_now):
    url = httpserver.url_for("/feed")
    httpserver.expect_ordered_request("/feed").respond_with_data(
        RSS, headers={"ETag": '"v1"', "Last-Modified": "Tue, 24 Nov 2026 10:00:00 GMT"}
    )
    httpserver.expect_ordered_request(
        "/feed",
        headers={"If-None-Match": '"v1"', "If-Modified-Since": "Tue, 24 Nov 2026 10:00:00 GMT"},
    ).respond_with_data("", status=304)
    config = feed_config(make_config, url)
    source = FeedSource(config.sources[0], config)
    first = source.collect(ctx(fixed_now))
    assert len(first.items) == 2
    assert first.memory is not None and first.memory.etag == '"v1"'
    second = source.collect(ctx(fixed_now, memory=first.memory))
    assert second.not_modified and second.items == [] and second.problems == []
    httpserver.check_assertions()


def test_redirects_are_followed_and_permanent_ones_remembered(httpserver, make_config, fixed_now):
    httpserver.expect_request("/old").respond_with_response(
        Response(status=301, headers={"Location": httpserver.url_for("/new")})
    )
    httpserver.expect_request("/new").respond_with_data(RSS)
    config = feed_config(make_config, httpserver.url_for("/old"))
    result = FeedSource(config.sources[0], config).collect(ctx(fixed_now))
    assert len(result.items) == 2
    assert result.memory is not None and result.memory.url == httpserver.url_for("/new")


def test_410_gone_disables_the_source(httpserver, make_config, fixed_now, store):
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    config = feed_config(make_config, httpserver.url_for("/gone"))
    report = collect_all(config, StoreSink(store), now=fixed_now)
    assert "410 Gone" in report.problems[0].reason
    assert get_source_memory(store, "partner").disabled
    # A later run does not even ask the server again.
    httpserver.clear()
    again = collect_all(config, StoreSink(store), now=fixed_now)
    assert "skipped" in again.problems[0].reason
    assert len(httpserver.log) == 0


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ("<rss><channel><item><title>broken", 200, "malformed feed"),
        ("{not json", 200, "malformed JSON feed"),
        ("oops", 500, "HTTP 500"),
    ],
)
def test_malformed_or_failing_feed_is_reported_and_other_sources_collected(
    httpserver, project, make_config, fixed_now, store, body, status, reason
):
    (project / "content" / "good.md").write_text(GOOD_MD, encoding="utf-8")
    httpserver.expect_request("/bad").respond_with_data(body, status=status)
    config = make_config(
        f"""
        sources:
          - {{name: partner, type: feed, url: '{httpserver.url_for("/bad")}'}}
          - {{name: posts, type: markdown, path: content}}
        """
    )
    report = collect_all(config, StoreSink(store), now=fixed_now)
    assert report.inserted == 1
    problem = report.problems[0]
    assert problem.source == "partner" and reason in problem.reason
    assert problem.where == httpserver.url_for("/bad")


def test_unreachable_feed_is_reported(make_config, fixed_now):
    config = feed_config(make_config, "http://127.0.0.1:9/feed")
    result = FeedSource(config.sources[0], config).collect(ctx(fixed_now))
    assert "unreachable" in result.problems[0].reason


# --- exports ----------------------------------------------------------------------------


def test_csv_export_reports_row_without_title_and_keeps_the_rest(project, make_config, fixed_now):
    (project / "export.csv").write_text(
        "id,title,url,published,kind,topics,body_html\n"
        "1,First,https://www.example.org/1,2026-11-01T10:00:00Z,news,labor;economic-justice,<p>a</p>\n"
        "2,,https://www.example.org/2,2026-11-02T10:00:00Z,news,labor,<p>b</p>\n"
        "3,Third,/3/,2026-11-03,article,,<script>x</script><p>c</p>\n",
        encoding="utf-8",
    )
    config = make_config("sources:\n  - {name: wp, type: export, path: export.csv}\n")
    result = ExportSource(config.sources[0], config).collect(ctx(fixed_now))
    assert [i.id for i in result.items] == ["wp:1", "wp:3"]
    assert result.items[0].topics == ("labor", "economic-justice")
    assert result.items[1].url == "https://www.example.org/3/"
    assert result.items[1].body_html == "<p>c</p>"
    [problem] = result.problems
    assert problem.where.endswith("export.csv:line 3")
    assert problem.reason == "missing title"


def test_json_export(project, make_config, fixed_now):
    (project / "export.json").write_text(
        json.dumps(
            {
                "items": [
                    {"id": "a", "title": "A", "date": "2026-11-01", "kind": "event"},
                    {"title": "no date"},
                ]
            }
        ),
        encoding="utf-8",
    )
    config = make_config("sources:\n  - {name: ex, type: export, path: export.json}\n")
    result = ExportSource(config.sources[0], config).collect(ctx(fixed_now))
    assert [i.kind for i in result.items] == ["event"]
    assert result.problems[0].where.endswith("export.json:item 2")
    assert "date is missing" in result.problems[0].reason


@pytest.mark.parametrize(
    ("front", "reason"),
    [
        ("image: [1, 2]", "image must be text, not list"),
        ("image_alt: {a: 1}", "image_alt must be text, not dict"),
        ("url: 'javascript:alert(1)'", "is not an http(s) URL"),
        ("author: [a, b]", "author must be text, not list"),
        ("updated: 2026-13-01", "invalid date"),
    ],
)
def test_bad_front_matter_values_skip_the_file_not_the_collection(
    project, make_config, fixed_now, store, front, reason
):
    (project / "content" / "good.md").write_text(GOOD_MD, encoding="utf-8")
    (project / "content" / "bad.md").write_text(
        f"---\ntitle: Bad\ndate: 2026-11-01\n{front}\n---\nbody\n", encoding="utf-8"
    )
    config = make_config("sources:\n  - {name: posts, type: markdown, path: content}\n")
    report = collect_all(config, StoreSink(store), now=fixed_now)
    assert [i.id for i in list_items(store)] == ["posts:good"]
    [problem] = report.problems
    assert problem.where.startswith(str(project / "content" / "bad.md"))
    assert reason in problem.reason
