"""One HTTP GET with limits: a total deadline and a maximum body size, streamed.

`timeout` in httpx applies to each read, so a server trickling a byte every second never
times out; here the body is read chunk by chunk and the fetch is cut once the deadline has
passed or the body grew past `max_bytes`, so neither time nor memory depends on the server.
Each read waits at most min(timeout, time left), so a fetch ends within the deadline plus
the read in flight.
"""

from __future__ import annotations

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
            content = _read_body(response, limits, ends, clock)
            permanent = any(r.status_code in (301, 308) for r in response.history)
            return Fetched(
                response.status_code, str(response.url), response.headers, content, permanent
            )
    except httpx.HTTPError as exc:
        if clock() >= ends:
            raise FetchError(f"cut at the {limits.deadline:g} s deadline ({exc})") from None
        raise FetchError(f"unreachable: {exc.__class__.__name__}: {exc}") from None


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
