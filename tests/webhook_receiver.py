"""A webhook receiver on 127.0.0.1 for the tests and the benchmark: keeps every request
(headers and raw body) and answers with whatever `status` says at the time."""

from __future__ import annotations

import ssl
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
    # hang_up: answer, then close the connection without saying so (no `connection: close`)
    hang_up: bool = False
    peers: list[int] = field(default_factory=list)  # the client port of every request

    def connections(self) -> int:
        """How many connections the requests came over."""
        with self.lock:
            return len(set(self.peers))

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [r.body for r in self.received]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the deliverer reuses its connections
    receiver: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        with self.receiver.lock:
            self.receiver.peers.append(self.client_address[1])
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
        if self.receiver.hang_up:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up mid-answer (the deliverer reads only the answer's start)


@contextmanager
def receiving(path: str = "/hook", *, tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """`tls`: a server context (https://localhost:port: its certificate names localhost)."""
    receiver = Receiver()
    handler = type("Handler", (_Handler,), {"receiver": receiver})
    server = _Server(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    receiver.url = f"http://127.0.0.1:{port}{path}"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        receiver.url = f"https://localhost:{port}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
