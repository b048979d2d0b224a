"""Who may call the JSON API: the key a request bears (Authorization: Bearer), whether
it is usable and has the endpoint's scope (401 and 403 otherwise), and the per-key rate
limit with its RateLimit headers (429 when a key's window is full)."""

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


def _authorise(w: Web, endpoint: Endpoint, token: str) -> ApiKey:
    """The key, if it is usable and allowed to call `endpoint` (401 and 403 otherwise)."""
    key = api_keys.authenticate(w.store, token, now=w.now()) if token else None
    return _allowed(key, endpoint)


def _allowed(key: ApiKey | None, endpoint: Endpoint) -> ApiKey:
    if key is None:
        raise Problem(401, "unauthorized", "Send a usable API key: Authorization: Bearer <key>.")
    allowed = key.kind == "signup" if endpoint.scope == "signup" else endpoint.scope in key.scopes
    if not allowed:
        raise Problem(403, "forbidden", f"This key does not have the {endpoint.scope} scope.")
    return key


class KeyWindows:
    """Each key's calls in the current fixed window, counted in this process: a call costs
    no store write. The limit is per `publisher serve` process (two processes behind one
    address allow a key twice the calls); a restart starts the window's count afresh."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[int, tuple[int, int]] = {}  # key id -> (window start, calls)

    def take(self, key_id: int, most: int, stamp: int) -> int | None:
        """Count one call: the calls in this window including it, or None when full."""
        start = stamp - stamp % RATE_WINDOW
        with self._lock:
            if len(self._counts) > 10_000:  # ended windows of keys not used since
                self._counts = {k: v for k, v in self._counts.items() if v[0] == start}
            began, used = self._counts.get(key_id, (start, 0))
            used = used if began == start else 0
            if used >= most:
                return None
            self._counts[key_id] = (start, used + 1)
            return used + 1


def _rate(now: datetime, windows: KeyWindows, key: ApiKey, per_minute: int) -> dict[str, str]:
    """Count the call against the key's limit; the RateLimit headers (IETF draft), or 429."""
    stamp = int(now.timestamp())
    used = windows.take(key.id, per_minute, stamp)
    reset = RATE_WINDOW - stamp % RATE_WINDOW
    headers = {"RateLimit-Policy": f'"per-key";q={per_minute};w={RATE_WINDOW}'}
    headers["RateLimit"] = f'"per-key";r={max(per_minute - (used or per_minute), 0)};t={reset}'
    if used is None:
        headers["Retry-After"] = str(reset)
        raise Problem(429, "rate-limited", "Too many requests with this key.", headers=headers)
    return headers
