"""One HTTP GET with limits: a total deadline and a maximum body size, streamed.

`timeout` in httpx applies to each read, so a server trickling a byte every second never
times out; here the body is read chunk by chunk and cut once it grows past `max_bytes`, and
at the deadline a watchdog shuts the connection's socket down, which ends the read in
flight at once. So neither time nor memory depends on the server: waiting for the response
headers takes at most min(timeout, deadline), reading the body ends at the deadline.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx


class FetchError(Exception):
    """The fetch failed or was cut; the message says why (reported as the source's problem)."""


@dataclass(frozen=True)
class Limits:
    timeout: float  # seconds, each connect/read
    deadline: float  # seconds, the whole fetch
    max_bytes: int


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
    per_read = min(limits.timeout, limits.deadline)
    try:
        with client.stream(
            "GET", url, headers=headers, timeout=per_read, follow_redirects=True
        ) as response:
            fired = threading.Event()
            watchdog = threading.Timer(max(0.0, ends - clock()), _hang_up, (response, fired))
            watchdog.daemon = True
            watchdog.start()
            try:
                content = _read_body(response, limits, ends, clock)
            finally:
                watchdog.cancel()
            if fired.is_set():  # a body "ended" by the hang-up is not a whole body
                raise FetchError(
                    f"response not complete at the {limits.deadline:g} s deadline; cut"
                )
            permanent = any(r.status_code in (301, 308) for r in response.history)
            return Fetched(
                response.status_code, str(response.url), response.headers, content, permanent
            )
    except httpx.HTTPError as exc:
        if clock() >= ends:
            raise FetchError(f"cut at the {limits.deadline:g} s deadline ({exc})") from None
        raise FetchError(f"unreachable: {exc.__class__.__name__}: {exc}") from None


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
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise FetchError(f"response of {int(declared)} bytes is above max_bytes {limits.max_bytes}")
    chunks, size = [], 0
    for chunk in response.iter_bytes():  # decoded: a compressed bomb is counted as it expands
        size += len(chunk)
        if size > limits.max_bytes:
            raise FetchError(f"response is larger than max_bytes {limits.max_bytes}; cut")
        chunks.append(chunk)
        if clock() >= ends:
            raise FetchError(f"response not complete at the {limits.deadline:g} s deadline; cut")
    return b"".join(chunks)
