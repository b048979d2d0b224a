"""Remote feeds that misbehave, served on 127.0.0.1: a server trickling bytes against the
total deadline, oversized bodies against the size cap, a fully rejected feed followed by a
304, and what feeds say about their text (types, categories, anchors, link-less items,
duplicate guids)."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from werkzeug import Response

from publisher.sources import CollectContext, SourceMemory
from publisher.sources.collect import collect_all
from publisher.sources.feed import FeedSource
from publisher.store.sink import StoreSink
from publisher.store.state import get_source_memory

RSS_HEAD = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    "<link>https://p.example/</link><description>d</description>"
)


class _Trickle(BaseHTTPRequestHandler):
    """One byte every 1.5 s: `limit` bytes, or for ever (limit 0) until the client goes."""

    limit = 0
    stop = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.end_headers()
        sent = 0
        try:
            while not self.stop.is_set() and (not self.limit or sent < self.limit):
                self.wfile.write(b" ")
                self.wfile.flush()
                sent += 1
                self.stop.wait(1.5)
        except OSError:
            pass  # the collector hung up: that is the point

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def trickle() -> Iterator[ThreadingHTTPServer]:
    _Trickle.stop = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    _Trickle.stop.set()
    server.shutdown()
    server.server_close()


def feed_source(make_config, url: str, extra: str = "") -> FeedSource:
    config = make_config(f'sources:\n  - {{name: p, type: feed, url: "{url}"{extra}}}\n')
    return FeedSource(config.sources[0], config)


@pytest.mark.parametrize("limit", [0, 40], ids=["endless", "sixty-seconds"])
def test_a_trickling_server_is_cut_at_the_total_deadline(make_config, fixed_now, trickle, limit):
    _Trickle.limit = limit
    url = f"http://127.0.0.1:{trickle.server_address[1]}/feed"
    # Each read returns within 1.5 s, well inside the per-read timeout of 10 s.
    source = feed_source(make_config, url, ", deadline: 3")
    started = time.monotonic()
    result = source.collect(CollectContext(now=fixed_now, memory=SourceMemory()))
    elapsed = time.monotonic() - started
    assert 3 <= elapsed < 8, elapsed  # the read in flight is cut too (a read may take 10 s)
    [problem] = result.problems
    assert problem.where == url and "3 s deadline" in problem.reason
    assert result.items == [] and result.memory is None


@pytest.mark.parametrize("how", ["content-length", "chunked", "gzip"])
def test_an_oversized_body_is_cut_at_max_bytes(make_config, fixed_now, httpserver, how):
    body = (RSS_HEAD + "<item><title>x</title></item>" * 100_000 + "</channel></rss>").encode()
    if how == "content-length":
        httpserver.expect_request("/big").respond_with_data(body)
    elif how == "chunked":  # no Content-Length: streamed in chunks, counted as it arrives
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        httpserver.expect_request("/big").respond_with_response(Response(chunks))
    else:  # 3 MB that travel as a few KB: counted once decompressed
        packed = gzip.compress(body)
        assert len(packed) < 100_000
        httpserver.expect_request("/big").respond_with_data(
            packed, headers={"Content-Encoding": "gzip"}
        )
    source = feed_source(make_config, httpserver.url_for("/big"), ", max_bytes: 1000000")
    result = source.collect(CollectContext(now=fixed_now, memory=SourceMemory()))
    [problem] = result.problems
    assert "max_bytes 1000000" in problem.reason and len(body) > 1_000_000
    assert result.items == []


def test_validators_are_kept_when_every_entry_is_rejected(
    make_config, fixed_now, httpserver, store
):
    rejected = RSS_HEAD + "<item><description>no title</description></item></channel></rss>"
    calls = []

    def handler(request):
        calls.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(rejected, content_type="application/rss+xml", headers={"ETag": '"v1"'})

    httpserver.expect_request("/f").respond_with_handler(handler)
    config = make_config(
        f'sources:\n  - {{name: p, type: feed, url: "{httpserver.url_for("/f")}"}}\n'
    )
    first = collect_all(config, StoreSink(store), now=fixed_now)
    assert [p.reason for p in first.problems] == ["entry has no title"]
    assert get_source_memory(store, "p").etag == '"v1"'
    second = collect_all(config, StoreSink(store), now=fixed_now)
    assert calls == [None, '"v1"']
    assert second.problems == [] and second.sources[0].not_modified


def test_feed_text_types_topics_anchors_links_and_guids(make_config, fixed_now, httpserver):
    rss = (
        RSS_HEAD + "<item><title>std::vector&lt;int&gt; explained</title><link>/posts/v</link>"
        "<guid>urn:1</guid><pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate>"
        "<category>劳工</category><category>Труд</category>"
        '<description>&lt;a href="#comments"&gt;c&lt;/a&gt; &lt;a href="../up"&gt;u&lt;/a&gt;'
        "</description></item>"
        "<item><title>Compare a&lt;b and b&gt;c</title><guid>https://p.example/s/2</guid>"
        "<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>"
        "<item><title>Opaque</title><guid>tag-3</guid>"
        "<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>"
        "<item><title>Again</title><link>https://p.example/again</link><guid>urn:1</guid>"
        "<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>"
        "</channel></rss>"
    )
    httpserver.expect_request("/feeds/main.xml").respond_with_data(
        rss, content_type="application/rss+xml"
    )
    url = httpserver.url_for("/feeds/main.xml")
    result = feed_source(make_config, url).collect(
        CollectContext(now=fixed_now, memory=SourceMemory())
    )
    first, second, opaque = result.items
    assert first.title == "std::vector<int> explained"
    assert second.title == "Compare a<b and b>c"
    assert first.topics == ("劳工", "труд")
    assert first.url == httpserver.url_for("/posts/v")  # relative to the feed's URL
    assert f'href="{first.url}#comments"' in first.body_html  # ...anchors to the item's
    assert f'href="{httpserver.url_for("/up")}"' in first.body_html
    assert second.url == "https://p.example/s/2"  # no link: the guid is a URL
    assert (opaque.url, opaque.id) == ("", "p:tag-3")  # no link at all: kept without one
    assert [(p.where, p.reason.split(";")[0]) for p in result.problems] == [
        (f"{url} entry 4", "duplicate id 'p:urn:1' (entry 1 has it too)"),
    ]


def test_a_150_kb_remote_title_is_trimmed(make_config, fixed_now, httpserver):
    title = "Enormous " * 17_000
    rss = (
        RSS_HEAD + f"<item><title>{title}</title><link>https://p.example/1</link>"
        "<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate>"
        f"<description>{'word ' * 30_000}</description><author>{'A' * 5000}</author>"
        "</item></channel></rss>"
    )
    httpserver.expect_request("/f").respond_with_data(rss, content_type="application/rss+xml")
    result = feed_source(make_config, httpserver.url_for("/f")).collect(
        CollectContext(now=fixed_now, memory=SourceMemory())
    )
    [item] = result.items
    assert len(title) > 150_000 and len(item.title) <= 300 and item.title.endswith("…")
    assert len(item.summary) <= 300 and len(item.author or "") <= 200


def test_atom_text_typed_content_is_escaped_into_paragraphs(make_config, fixed_now, httpserver):
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id>'
        '<updated>2026-11-24T10:00:00Z</updated><entry><title type="text">T &lt;i&gt;</title>'
        "<id>https://a.example/1</id><updated>2026-11-24T10:00:00Z</updated>"
        '<content type="text">a &lt;script&gt;b&lt;/script&gt;\n\nsecond</content>'
        "<author><name>&lt;b&gt;Bob&lt;/b&gt;</name></author></entry></feed>"
    )
    httpserver.expect_request("/a").respond_with_data(atom, content_type="application/atom+xml")
    result = feed_source(make_config, httpserver.url_for("/a")).collect(
        CollectContext(now=fixed_now, memory=SourceMemory())
    )
    [entry] = result.items
    assert entry.title == "T <i>" and entry.url == "https://a.example/1"
    assert entry.body_html == "<p>a &lt;script&gt;b&lt;/script&gt;</p><p>second</p>"
    assert entry.author == "Bob"


def test_a_server_that_stalls_mid_body_is_cut_at_the_deadline(make_config, fixed_now, trickle):
    # Two bytes, then nothing: the read in flight would wait for the whole 10 s timeout.
    _Trickle.limit = 0
    original = _Trickle.stop.wait
    calls: list[float | None] = []

    def stall(timeout: float | None = None) -> bool:
        calls.append(timeout)
        return original(30 if len(calls) > 1 else timeout)

    _Trickle.stop.wait = stall  # type: ignore[method-assign]
    url = f"http://127.0.0.1:{trickle.server_address[1]}/feed"
    source = feed_source(make_config, url, ", deadline: 2.5")
    started = time.monotonic()
    result = source.collect(CollectContext(now=fixed_now, memory=SourceMemory()))
    assert 2.5 <= time.monotonic() - started < 8  # not the 10 s per-read timeout
    assert "2.5 s deadline" in result.problems[0].reason


def test_a_sources_own_topics_are_slugged_like_its_tags(make_config, fixed_now, httpserver):
    rss = (
        RSS_HEAD + "<item><title>T</title><link>https://p.example/1</link>"
        "<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate><category>Workers' Rights</category>"
        "</item></channel></rss>"
    )
    httpserver.expect_request("/f").respond_with_data(rss, content_type="application/rss+xml")
    source = feed_source(make_config, httpserver.url_for("/f"), ", topics: [Labor Rights, 经济]")
    [item] = source.collect(CollectContext(now=fixed_now, memory=SourceMemory())).items
    assert item.topics == ("labor-rights", "经济", "workers-rights")
