"""One HTTP GET with limits: a total deadline and a maximum body size, streamed, and
decompressed here in bounded steps.

`timeout` in httpx applies to each read, so a server trickling a byte every second never
times out; here the body is read chunk by chunk and cut once it grows past `max_bytes`, and
at the deadline a watchdog shuts the connection's socket down, which ends the read in
flight at once. So neither time nor memory depends on the server: waiting for the response
headers takes at most min(timeout, deadline), reading the body ends at the deadline.

httpx would decompress each `Content-Encoding` layer of a chunk whole before anything could
be counted (a 1 KB body sent as `gzip, gzip` grew to 2.1 GB), so the raw bytes are read and
inflated here, at most `STEP` bytes of output at a time: memory stays within a small multiple
of `max_bytes` whatever the server sends. Stacked encodings are refused, and so is any
coding but gzip and deflate (the only ones we ask for). Redirects are followed here too, so
a redirect's own body is never read. Where a fetch may connect is sources/network.py.

A fetch refused for what the server sent (`Refused`: too large, an encoding we refuse, a
non-public address) is remembered by the source (`remember_refusal`): it is not fetched
again for `REFUSAL_PAUSE`, or until its url, max_bytes or allow_private_addresses change.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import httpx

from publisher.config import FeedSourceConfig
from publisher.sources.base import SourceMemory
from publisher.sources.network import AddressRefused, names_private_host, private_allowed

STEP = 64 * 1024  # bytes inflated at a time
MAX_REDIRECTS = 10
REFUSAL_PAUSE = timedelta(hours=24)
ACCEPT_ENCODING = "gzip, deflate"


class FetchError(Exception):
    """The fetch failed or was cut; the message says why (reported as the source's problem)."""


class Refused(FetchError):
    """The fetch was refused for what the server sent or where it led: it would be refused
    again, so the source remembers it (not a deadline or an unreachable host)."""


@dataclass(frozen=True)
class Limits:
    timeout: float  # seconds, each connect/read
    deadline: float  # seconds, the whole fetch
    max_bytes: int
    allow_private: bool = False  # may connect to non-public addresses (sources.network)


def limits_of(cfg: FeedSourceConfig) -> Limits:
    """A feed source's limits; a source configured with a non-public URL may reach
    non-public addresses, as may one that says `allow_private_addresses: true`."""
    allow = cfg.allow_private_addresses or names_private_host(cfg.url)
    return Limits(cfg.timeout, cfg.deadline, cfg.max_bytes, allow)


@dataclass(frozen=True)
class Fetched:
    status: int
    url: str  # after redirects
    headers: httpx.Headers
    content: bytes
    permanent_redirect: bool  # a 301/308 on the way: remember the new URL


def fetch(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    limits: Limits,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Fetched:
    ends = clock() + limits.deadline
    try:
        with private_allowed(limits.allow_private):
            return _fetch(
                client, url, headers | {"Accept-Encoding": ACCEPT_ENCODING}, limits, ends, clock
            )
    except AddressRefused as exc:
        raise Refused(str(exc)) from None
    except httpx.HTTPError as exc:
        if clock() >= ends:
            raise FetchError(f"cut at the {limits.deadline:g} s deadline ({exc})") from None
        raise FetchError(f"unreachable: {exc.__class__.__name__}: {exc}") from None


def _fetch(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    limits: Limits,
    ends: float,
    clock: Callable[[], float],
) -> Fetched:
    per_read = min(limits.timeout, limits.deadline)
    request: httpx.Request | None = client.build_request(
        "GET", url, headers=headers, timeout=per_read
    )
    permanent = False
    for _ in range(MAX_REDIRECTS + 1):
        assert request is not None
        response = client.send(request, stream=True, follow_redirects=False)
        with contextlib.closing(response):
            if not response.is_redirect or response.next_request is None:
                content = _read_within_deadline(response, limits, ends, clock)
                status, final, got = response.status_code, str(response.url), response.headers
                return Fetched(status, final, got, content, permanent)
            # the redirect's own body is never read; the connection is let go at once
            permanent = permanent or response.status_code in (301, 308)
            request = response.next_request
        if clock() >= ends:
            raise FetchError(f"redirects not done at the {limits.deadline:g} s deadline; cut")
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _read_within_deadline(
    response: httpx.Response, limits: Limits, ends: float, clock: Callable[[], float]
) -> bytes:
    fired = threading.Event()
    watchdog = threading.Timer(max(0.0, ends - clock()), _hang_up, (response, fired))
    watchdog.daemon = True
    watchdog.start()
    try:
        content = _read_body(response, limits, ends, clock)
    finally:
        watchdog.cancel()
    if fired.is_set():  # a body "ended" by the hang-up is not a whole body
        raise FetchError(f"response not complete at the {limits.deadline:g} s deadline; cut")
    return content


def _hang_up(response: httpx.Response, fired: threading.Event) -> None:
    """Shut the socket down under a read that has run out of time (closing it from another
    thread would not wake the read; shutting it down does)."""
    fired.set()
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _read_body(
    response: httpx.Response, limits: Limits, ends: float, clock: Callable[[], float]
) -> bytes:
    if response.status_code in (304, 410) or response.status_code >= 400:
        return b""  # nothing to parse: the status says it all
    coding = _coding(response.headers.get("content-encoding", ""))
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limits.max_bytes:
        raise Refused(f"response of {int(declared)} bytes is above max_bytes {limits.max_bytes}")
    pieces, size = [], 0  # a list, not a growing bytearray: no copy on every resize
    for piece in _inflated(response.iter_raw(), coding):
        size += len(piece)  # counted as it is inflated, never more than STEP past the limit
        if size > limits.max_bytes:
            raise Refused(f"response is larger than max_bytes {limits.max_bytes}; cut")
        pieces.append(piece)
        if clock() >= ends:
            raise FetchError(f"response not complete at the {limits.deadline:g} s deadline; cut")
    return b"".join(pieces)


def _coding(header: str) -> str | None:
    """The one content coding to undo (None: identity); stacked or unknown ones refused."""
    codings = [c.strip().lower() for c in header.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if len(codings) > 1:
        raise Refused(f"stacked content encodings ({header.strip()[:80]}) refused")
    if codings and codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise Refused(f"content encoding {codings[0][:40]!r} refused (gzip or deflate only)")
    return codings[0] if codings else None


def _inflated(raw: Iterable[bytes], coding: str | None) -> Iterator[bytes]:
    """The body undone from its coding, at most STEP bytes per piece whatever the ratio."""
    if coding is None:
        yield from raw
        return
    inflater: zlib._Decompress | None = None
    try:
        for chunk in raw:
            if inflater is None:  # deflate is meant to be zlib-wrapped, but often is raw
                inflater = zlib.decompressobj(_wbits(coding, chunk))
            pending = chunk
            while pending and not inflater.eof:
                piece = inflater.decompress(pending, STEP)
                pending = inflater.unconsumed_tail
                if piece:
                    yield piece
            while not inflater.eof:  # output zlib still holds beyond STEP: drained in steps
                piece = inflater.decompress(b"", STEP)
                if not piece:
                    break
                yield piece
    except zlib.error as exc:
        raise Refused(f"{coding} body cannot be decompressed ({exc})") from None


def _wbits(coding: str, first: bytes) -> int:
    if coding in ("gzip", "x-gzip"):
        return 16 + zlib.MAX_WBITS
    zlib_header = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
    return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS


def fetch_key(cfg: FeedSourceConfig) -> str:
    """What a remembered refusal was about: changing any of it tries again at once."""
    return f"{cfg.url} max_bytes={cfg.max_bytes} private={limits_of(cfg).allow_private}"


def remember_refusal(memory: SourceMemory, key: str, reason: str, now: datetime) -> SourceMemory:
    return replace(memory, refused_key=key, refused_reason=reason, refused_at=now)


def refusal_in_force(memory: SourceMemory, key: str, now: datetime) -> str | None:
    """Why the source is not fetched now (a refusal remembered), or None."""
    if memory.refused_at is None or memory.refused_key != key:
        return None
    again = memory.refused_at + REFUSAL_PAUSE
    if now >= again:
        return None
    return (
        f"skipped: the last fetch was refused ({memory.refused_reason}); tried again after "
        f"{again:%Y-%m-%d %H:%M} UTC, or at once if url, max_bytes or "
        "allow_private_addresses change"
    )
