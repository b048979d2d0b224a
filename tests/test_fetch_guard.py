"""Fetching that cannot be turned against us (issue 19): decompression bombs against the
collector with its peak memory measured, a refused fetch remembered, and redirects to
loopback or metadata addresses refused, on the address actually connected to (a test
resolver stands in for DNS; a server on 127.0.0.2 plays a public host)."""

from __future__ import annotations

import gzip
import ipaddress
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from publisher.sources.collect import collect_all
from publisher.sources.network import (
    ClientOptions,
    Network,
    guarded_client,
    is_public,
    names_private_host,
)
from publisher.store.sink import StoreSink
from publisher.store.state import get_source_memory

RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    b"<link>https://p.example/</link><description>d</description>"
    b"<item><title>Inside</title><link>https://p.example/1</link>"
    b"<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>"
)
MAX_BYTES = 2_000_000


@dataclass
class Answer:
    status: int = 200
    body: bytes = RSS
    headers: dict[str, str] = field(default_factory=dict)


class Site:
    """An HTTP server on one loopback address answering every path with `answer`, and
    counting the requests it got."""

    def __init__(self, host: str, answer: Answer) -> None:
        self.answer, self.requests, self.host = answer, 0, host
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                site.requests += 1
                self.send_response(site.answer.status)
                for name, value in (site.answer.headers | {"Connection": "close"}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(site.answer.body)))
                self.end_headers()
                try:
                    self.wfile.write(site.answer.body)
                except OSError:
                    pass  # the collector hung up: that is the point

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str = "/feed", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.server.server_port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sites() -> Iterator[Callable[[str, Answer], Site]]:
    made: list[Site] = []

    def make(host: str, answer: Answer) -> Site:
        made.append(Site(host, answer))
        return made[-1]

    yield make
    for site in made:
        site.close()


def _collect(make_config, store, now, url: str, extra: str = "", http: httpx.Client | None = None):
    config = make_config(f'sources:\n  - {{name: p, type: feed, url: "{url}"{extra}}}\n')
    return collect_all(config, StoreSink(store), now=now, http=http)


# --- decompression bombs ----------------------------------------------------------------

ZEROS = 64_000_000  # what the bomb inflates to: 32 times max_bytes


def _bomb(layers: int) -> bytes:
    body = zlib.compressobj(9, zlib.DEFLATED, 31)
    packed = b"".join(body.compress(bytes(1_000_000)) for _ in range(ZEROS // 1_000_000))
    packed += body.flush()
    for _ in range(layers - 1):
        packed = gzip.compress(packed, 9)
    return packed


@pytest.mark.parametrize("layers", [1, 2], ids=["gzip", "gzip-gzip"])
def test_a_gzip_bomb_is_cut_within_3x_max_bytes_and_not_fetched_again(
    make_config, store, fixed_now, sites, layers
):
    bomb = _bomb(layers)
    assert len(bomb) < 100_000  # a few dozen KB on the wire
    encoding = ", ".join(["gzip"] * layers)
    site = sites("127.0.0.1", Answer(body=bomb, headers={"Content-Encoding": encoding}))
    extra = f", max_bytes: {MAX_BYTES}"
    with guarded_client() as http:
        tracemalloc.start()
        try:
            report = _collect(make_config, store, fixed_now, site.url(), extra, http)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 3 * MAX_BYTES, f"peak {peak:,} bytes for max_bytes {MAX_BYTES:,}"
    [problem] = report.problems
    if layers == 1:
        assert f"larger than max_bytes {MAX_BYTES}" in problem.reason
    else:
        assert "stacked content encodings (gzip, gzip) refused" in problem.reason
    memory = get_source_memory(store, "p")
    assert memory.refused_at == fixed_now and memory.refused_reason == problem.reason
    # the next collects do not fetch it again...
    again = _collect(make_config, store, fixed_now + timedelta(hours=1), site.url(), extra)
    assert site.requests == 1 and "skipped: the last fetch was refused" in again.problems[0].reason
    # ...until the source's limits change, or a day has gone by
    _collect(make_config, store, fixed_now + timedelta(hours=1), site.url(), ", max_bytes: 999")
    assert site.requests == 2
    _collect(make_config, store, fixed_now + timedelta(hours=25), site.url(), extra)
    assert site.requests == 3


def test_a_redirects_bomb_body_is_never_read(make_config, store, fixed_now, sites):
    target = sites("127.0.0.1", Answer())
    headers = {"Location": target.url(), "Content-Encoding": "gzip"}
    moved = sites("127.0.0.1", Answer(status=302, body=_bomb(1), headers=headers))
    tracemalloc.start()
    try:
        report = _collect(make_config, store, fixed_now, moved.url(), f", max_bytes: {MAX_BYTES}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_BYTES, f"peak {peak:,} bytes"
    assert report.problems == [] and report.inserted == 1


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate", "identity"])
def test_a_compressed_feed_is_still_read(make_config, store, fixed_now, sites, coding):
    packed = {
        "gzip": gzip.compress(RSS),
        "deflate": zlib.compress(RSS),
        "raw-deflate": zlib.compress(RSS, wbits=-15),
        "identity": RSS,
    }[coding]
    name = "deflate" if coding == "raw-deflate" else coding
    site = sites("127.0.0.1", Answer(body=packed, headers={"Content-Encoding": name}))
    report = _collect(make_config, store, fixed_now, site.url())
    assert report.problems == [] and report.inserted == 1


@pytest.mark.parametrize("encoding", ["br", "gzip, deflate", "deflate, identity, gzip"])
def test_unknown_and_stacked_encodings_are_refused(make_config, store, fixed_now, sites, encoding):
    site = sites(
        "127.0.0.1", Answer(body=gzip.compress(RSS), headers={"Content-Encoding": encoding})
    )
    [problem] = _collect(make_config, store, fixed_now, site.url()).problems
    assert "refused" in problem.reason


# --- redirects to private addresses -------------------------------------------------------

PUBLIC_NAME = "feeds.example.org"  # resolves to 127.0.0.2, which plays a public host
INSIDE_NAME = "inside.example.org"  # a public-looking name that DNS points at loopback


def _network() -> Network:
    names = {PUBLIC_NAME: ["127.0.0.2"], INSIDE_NAME: ["127.0.0.1"]}

    def resolve(host: str, port: int) -> list[str]:
        return names.get(host, [host])  # an address resolves to itself

    def public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return str(address) == "127.0.0.2"

    return Network(resolve=resolve, public=public)


@pytest.fixture
def inside(sites) -> Site:
    """A feed on our own machine that must never reach the public feeds."""
    return sites("127.0.0.1", Answer())


def _redirecting(sites, location: str, status: int = 302) -> Site:
    return sites("127.0.0.2", Answer(status=status, body=b"", headers={"Location": location}))


@pytest.mark.parametrize(
    "where",
    ["127.0.0.1", "169.254.169.254", INSIDE_NAME, "[::ffff:127.0.0.1]"],
    ids=["loopback", "metadata", "dns-to-loopback", "mapped-loopback"],
)
@pytest.mark.parametrize("status", [302, 301])
def test_a_public_source_redirecting_inside_is_refused(
    make_config, store, fixed_now, sites, inside, where, status
):
    port = inside.server.server_port
    location = f"http://{where}/latest/meta-data/" if "169" in where else inside.url(host=where)
    public = _redirecting(sites, location, status)
    with guarded_client(ClientOptions(network=_network())) as http:
        report = _collect(make_config, store, fixed_now, public.url(host=PUBLIC_NAME), http=http)
    [problem] = report.problems
    assert "not a public address" in problem.reason and "allow_private_addresses" in problem.reason
    assert report.inserted == 0 and inside.requests == 0 and public.requests == 1
    memory = get_source_memory(store, "p")
    assert memory.url is None and memory.refused_at == fixed_now  # no redirect remembered
    assert port  # the inside server was there to be reached


def test_a_public_looking_name_that_resolves_inside_is_refused(
    make_config, store, fixed_now, inside
):
    with guarded_client(ClientOptions(network=_network())) as http:
        url = inside.url(host=INSIDE_NAME)
        [problem] = _collect(make_config, store, fixed_now, url, http=http).problems
    assert f"refused to connect to {INSIDE_NAME} at 127.0.0.1" in problem.reason
    assert inside.requests == 0


def test_a_source_that_allows_private_addresses_follows_the_redirect(
    make_config, store, fixed_now, sites, inside
):
    public = _redirecting(sites, inside.url())
    extra = ", allow_private_addresses: true"
    with guarded_client(ClientOptions(network=_network())) as http:
        report = _collect(make_config, store, fixed_now, public.url(host=PUBLIC_NAME), extra, http)
    assert report.problems == [] and report.inserted == 1 and inside.requests == 1


def test_a_source_configured_on_loopback_keeps_working_through_redirects(
    make_config, store, fixed_now, sites, inside
):
    # the staff's explicit choice: a loopback URL may redirect to another loopback server
    first = sites("127.0.0.1", Answer(status=301, body=b"", headers={"Location": inside.url()}))
    with guarded_client(ClientOptions(network=_network())) as http:
        report = _collect(make_config, store, fixed_now, first.url(), http=http)
    assert report.problems == [] and report.inserted == 1
    assert get_source_memory(store, "p").url == inside.url()  # permanent: remembered


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("0.0.0.0", False),  # connects to this machine on Linux
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # AWS, GCP, Azure metadata
        ("100.100.100.200", False),  # Alibaba metadata, in the shared 100.64/10
        ("fd00:ec2::254", False),  # AWS metadata over IPv6
        ("::1", False),
        ("::ffff:169.254.169.254", False),
        ("fe80::1", False),
        ("224.0.0.1", False),
    ],
)
def test_which_addresses_count_as_public(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    ("url", "private"),
    [
        ("http://127.0.0.1:8080/feed", True),
        ("http://localhost:8080/feed", True),
        ("http://feeds.localhost/feed", True),
        ("http://[::1]/feed", True),
        ("http://10.0.0.5/feed", True),
        ("https://partner.example/feed.xml", False),
        ("https://93.184.215.14/feed", False),
        ("https://localhost.example.org/feed", False),
    ],
)
def test_which_configured_urls_are_the_staffs_explicit_choice(url, private):
    assert names_private_host(url) is private
