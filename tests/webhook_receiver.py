"""A webhook receiver on 127.0.0.1 for the tests and the benchmark: keeps every request
(headers and raw body) and answers with whatever `status` says at the time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str = ""
    status: int = 200  # what it answers now (503: "down")
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # holding: a request is counted as arrived, then not answered until `release` is set
    holding: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [r.body for r in self.received]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the deliverer reuses its connections
    receiver: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        if self.receiver.holding:
            self.receiver.arrived.set()
            self.receiver.release.wait(120)
            self.close_connection = True
            return  # no answer at all: the sender is stuck in the read
        status = self.receiver.status
        if 200 <= status < 300:
            with self.receiver.lock:
                self.receiver.received.append(Received(dict(self.headers.items()), body))
        answer = b"ok" if status < 300 else b"down for maintenance " * 500
        self.send_response(status)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def receiving(path: str = "/hook") -> Iterator[Receiver]:
    receiver = Receiver()
    handler = type("Handler", (_Handler,), {"receiver": receiver})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
