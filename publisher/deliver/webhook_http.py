"""The HTTP side of outgoing webhooks: one signed POST over a kept-alive HTTP/1.1 connection
from a small pool per origin (scheme, host, port).

Why not httpx, which collection uses: a POST through httpx cost about 1.3 ms of CPU on the
benchmark machine, through the standard library's http.client about 0.3 ms, and the
deliverer's throughput (issue 22: >= 500/s) is bound by that CPU. The guard stays the same
(sources.network.allowed_addresses): every new connection is made to an address checked
after resolving, never to the name; redirects are not followed (http.client never follows
them); no proxy from the environment; TLS verified against the same CA bundle as httpx's.
"""

from __future__ import annotations

import functools
import http.client
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from publisher.sources.network import Network, allowed_addresses

__all__ = ["Answer", "Connections", "Origin"]

# a kept connection the receiver closed (idle timeout, restart) fails like this on reuse,
# before any answer: such a POST is sent again once on a new connection
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass(frozen=True)
class Origin:
    tls: bool
    host: str
    port: int


@dataclass(frozen=True)
class Answer:
    status: int
    text: str  # the start of the answer, at most `kept` characters


@functools.lru_cache(maxsize=1024)
def _split(url: str) -> tuple[Origin, str]:
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    origin = Origin(tls, parts.hostname or "", parts.port or (443 if tls else 80))
    return origin, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class _Connection(http.client.HTTPConnection):
    """An HTTP/1.1 connection (TLS when the origin is https) made only to a checked address.
    http.client reconnects through connect() when the receiver closed the previous one."""

    def __init__(self, origin: Origin, pool: Connections) -> None:
        super().__init__(origin.host, origin.port, timeout=pool.timeout)
        self.origin, self.pool = origin, pool

    def connect(self) -> None:
        pool, host, port = self.pool, self.origin.host, self.origin.port
        try:
            addresses = allowed_addresses(pool.network, host, port, allow_private=False)
        except UnicodeError as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from None
        error: OSError | None = None
        for address in addresses:
            try:
                sock = socket.create_connection((address, port), pool.connect_timeout)
                break
            except OSError as exc:
                error = exc
        else:
            raise error or OSError(f"cannot connect to {host}")
        sock.settimeout(self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.origin.tls:
            try:
                sock = pool.tls().wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock

    def idle_and_open(self) -> bool:
        """Kept open by the receiver: nothing to read (a readable idle connection is one the
        receiver closed, or one sending what nobody asked for)."""
        if self.sock is None:
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable


class Connections:
    """Kept-alive connections per origin, each used by one thread at a time; at most `keep`
    idle ones per origin are kept (the deliverer's workers), the rest closed. `network`
    resolves names and says which addresses may be connected to."""

    def __init__(
        self,
        network: Network,
        *,
        timeout: float,
        keep: int,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.network = network  # its `public` says which addresses count as allowed
        self.timeout, self.connect_timeout, self.keep = timeout, min(5.0, timeout), keep
        self._tls, self._idle = tls_context, dict[Origin, list[_Connection]]()
        self._lock = threading.Lock()

    def tls(self) -> ssl.SSLContext:
        if self._tls is None:  # made once, when the first https endpoint is posted to
            self._tls = httpx.create_ssl_context(trust_env=False)
        return self._tls

    def post(self, url: str, body: bytes, headers: dict[str, str], *, kept: int) -> Answer:
        """POST `body`; the status and at most `kept` characters of the answer (the rest is
        never read: that connection is closed). Errors are the socket's, http.client's, ssl's
        or sources.network.AddressRefused."""
        origin, path = _split(url)
        connection, reused = self._take(origin)
        try:
            try:
                answer, keep = _exchange(connection, path, body, headers, kept)
            except _STALE:
                if not reused:
                    raise
                connection.close()  # the next request reconnects, once
                answer, keep = _exchange(connection, path, body, headers, kept)
        except BaseException:
            connection.close()
            raise
        if keep:
            self._give(connection)
        else:
            connection.close()
        return answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _take(self, origin: Origin) -> tuple[_Connection, bool]:
        while True:
            with self._lock:
                found = self._idle.get(origin)
                connection = found.pop() if found else None
            if connection is None:
                return _Connection(origin, self), False
            if connection.idle_and_open():
                return connection, True
            connection.close()

    def _give(self, connection: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(connection.origin, [])
            if len(idle) < self.keep:
                idle.append(connection)
                return
        connection.close()


def _exchange(
    connection: _Connection, path: str, body: bytes, headers: dict[str, str], kept: int
) -> tuple[Answer, bool]:
    """One request and the start of its answer; whether the connection can be used again
    (the whole answer was read and the receiver keeps the connection open)."""
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    raw = response.read(kept * 4)  # utf-8: at most 4 bytes a character
    keep = response.isclosed() and not response.will_close and connection.sock is not None
    return Answer(response.status, raw.decode("utf-8", "replace")[:kept]), keep
