"""Slow feed servers on several loopback hosts (127.0.0.2, 127.0.0.3, ...), for concurrent
collection: each request waits `latency` seconds, and each host records the most requests
it was answering at one time (and all hosts together).

Paths say what a feed does: `/ok/N` is an RSS feed of two items with an ETag (a matching
If-None-Match gets a 304), `/fail/N` is a 500, `/bad/N` is malformed XML, `/gone/N` a 410,
`/moved/N` a 301 to `/ok/N` on the next host, `/slow/N` sends its headers and then a byte
every `trickle` seconds for a minute (a source's deadline must cut it). A request counts
as open from its arrival until its answer starts, so the count never includes a request
the client already let go of.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>'
    "<link>http://{host}/</link><description>d</description>{items}</channel></rss>"
)
ITEM = (
    "<item><title>Story {n}.{k}</title><link>http://{host}/{n}/{k}</link>"
    "<guid>http://{host}/{n}/{k}</guid><pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate></item>"
)
MALFORMED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></chan'
ITEMS_PER_FEED = 2


def feed_body(host: str, n: int) -> bytes:
    items = "".join(ITEM.format(n=n, k=k, host=host) for k in range(1, ITEMS_PER_FEED + 1))
    return RSS.format(n=n, host=host, items=items).encode()


@dataclass
class Counter:
    """Requests being answered now, and the most at any one time."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    now: int = 0
    peak: int = 0
    total: int = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.total += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # read by listen() in __init__: a class attribute, not later


class FeedFarm:
    """`hosts` servers, one per loopback address from 127.0.0.2, in background threads."""

    def __init__(self, hosts: int, *, latency: float = 0.3, trickle: float = 0.4) -> None:
        self.latency, self.trickle = latency, trickle
        self.stop = threading.Event()
        self.everyone = Counter()
        self.per_host: dict[str, Counter] = {}
        self.servers: list[_Server] = []
        for k in range(hosts):
            address = f"127.0.0.{k + 2}"
            self.per_host[address] = Counter()
            self.servers.append(_Server((address, 0), self._handler(k)))

    def url(self, host: int, path: str) -> str:
        return f"http://127.0.0.{host + 2}:{self.servers[host].server_port}{path}"

    def start(self) -> FeedFarm:
        for server in self.servers:
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def close(self) -> None:
        self.stop.set()
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def peaks(self) -> dict[str, int]:
        return {address: c.peak for address, c in self.per_host.items()}

    def _handler(self, index: int) -> type[BaseHTTPRequestHandler]:
        address = f"127.0.0.{index + 2}"
        farm, counters = self, (self.everyone, self.per_host[address])

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                for c in counters:
                    c.enter()
                try:
                    farm.stop.wait(farm.latency)
                finally:
                    for c in counters:
                        c.leave()
                kind, _, n = self.path.strip("/").partition("/")
                if kind == "slow":
                    return self._trickle()
                if kind == "fail" or not n.isdigit():
                    return self._answer(500, b"boom")
                if kind == "bad":
                    return self._answer(200, MALFORMED)
                if kind == "gone":
                    return self._answer(410, b"")
                if kind == "moved":
                    target = farm.url((index + 1) % len(farm.servers), f"/ok/{n}")
                    return self._answer(301, b"", location=target)
                etag = f'"v{n}"'
                if self.headers.get("If-None-Match") == etag:
                    return self._answer(304, b"")
                host = self.headers.get("Host", address)
                self._answer(200, feed_body(host, int(n)), etag)

            def _answer(
                self, status: int, body: bytes, etag: str | None = None, location: str = ""
            ) -> None:
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                if etag:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def _trickle(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.end_headers()
                ends = time.monotonic() + 60
                try:
                    while time.monotonic() < ends and not farm.stop.is_set():
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        farm.stop.wait(farm.trickle)
                except OSError:
                    pass  # the collector hung up at its deadline: that is the point

            def log_message(self, *args: object) -> None:
                pass

        return Handler
