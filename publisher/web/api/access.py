"""Who may call the JSON API: the key a request bears (Authorization: Bearer), whether
it is usable and has the endpoint's scope (401 and 403 otherwise), and the per-key rate
limit with its RateLimit headers (429 when a key's window is full; a sign-up key's
window is per client address)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING

from starlette.requests import Request

from publisher.store import api_keys
from publisher.store.api_keys import ApiKey
from publisher.web.api.problems import Problem
from publisher.web.context import Web

if TYPE_CHECKING:
    from publisher.web.api.framework import Endpoint

RATE_WINDOW = 60  # seconds; the hits per window are Limits.api_per_minute


def bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authorise(w: Web, endpoint: Endpoint, token: str) -> ApiKey:
    """The key, if it is usable and allowed to call `endpoint` (401 and 403 otherwise)."""
    key = api_keys.authenticate(w.store, token, now=w.now()) if token else None
    return allowed_key(key, endpoint)


def allowed_key(key: ApiKey | None, endpoint: Endpoint) -> ApiKey:
    if key is None:
        raise Problem(401, "unauthorized", "Send a usable API key: Authorization: Bearer <key>.")
    allowed = key.kind == "signup" if endpoint.scope == "signup" else endpoint.scope in key.scopes
    if not allowed:
        raise Problem(403, "forbidden", f"This key does not have the {endpoint.scope} scope.")
    return key


# what a window counts: a key's id, or (a sign-up key's id, a client address)
Counted = int | tuple[int, str]


class KeyWindows:
    """Each key's calls in the current fixed window, counted in this process: a call costs
    no store write. The limit is per `publisher serve` process (two processes behind one
    address allow a key twice the calls); a restart starts the window's count afresh.
    At most `most_counted` counts are held a window: past that, a new (key, address) is
    counted with every other newcomer of its key, so a flood of addresses costs bounded
    memory and no rebuild per call (they share one count; keys and known clients go on)."""

    def __init__(self, most_counted: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Counted, int] = {}  # calls in the window that began at _start
        self._start = 0
        self._most = most_counted

    def take(self, counted: Counted, most: int, stamp: int) -> int | None:
        """Count one call: the calls in this window including it, or None when full."""
        start = stamp - stamp % RATE_WINDOW
        with self._lock:
            if start != self._start:  # a new window: every count starts afresh
                self._counts, self._start = {}, start
            if counted not in self._counts and len(self._counts) >= self._most:
                counted = (counted[0], "") if isinstance(counted, tuple) else counted
            used = self._counts.get(counted, 0)
            if used >= most:
                return None
            self._counts[counted] = used + 1
            return used + 1


def rate_headers(
    now: datetime, windows: KeyWindows, key: ApiKey, per_minute: int, ip: str
) -> dict[str, str]:
    """Count the call against the key's limit; the RateLimit headers (IETF draft), or 429.
    A sign-up key sits in public web pages: its limit counts per client address, so one
    visitor spending it locks nobody else out (the sign-up's own per-address, per-network
    and per-mailbox limits still hold)."""
    stamp = int(now.timestamp())
    public = key.kind == "signup"
    used = windows.take((key.id, ip) if public else key.id, per_minute, stamp)
    reset = RATE_WINDOW - stamp % RATE_WINDOW
    name = '"per-client"' if public else '"per-key"'
    headers = {"RateLimit-Policy": f"{name};q={per_minute};w={RATE_WINDOW}"}
    headers["RateLimit"] = f"{name};r={max(per_minute - (used or per_minute), 0)};t={reset}"
    if used is None:
        headers["Retry-After"] = str(reset)
        detail = "Too many requests " + ("from here with this key." if public else "with this key.")
        raise Problem(429, "rate-limited", detail, headers=headers)
    return headers
