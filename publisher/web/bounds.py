"""What `publisher serve` bounds by itself: every request body (counted as it streams,
chunked or not, cut at its route's limit before any handler reads it), the time to send
the headers and the body, the size of the headers, and the number of connections.

The body is read here, up to the route's limit and within the body deadline, and handed
to the application whole: the limits are small (64 KiB for forms, 2 MiB for SendGrid's
batches), so nothing bigger than that is ever held. What is over the limit is never
stored: uvicorn discards the rest of the body after the 413 answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from publisher.web.forms import MAX_FORM_BYTES

# SendGrid posts its events in batches: 1,000 events with every field it sends are a few
# hundred KB; room to spare. At most WEBHOOK_AT_ONCE bodies are read at one time, so even a
# flood of junk-signed posts holds no more than 8 MiB.
WEBHOOK_MAX_BYTES = 2 * 1024 * 1024
WEBHOOK_AT_ONCE = 4
WEBHOOK_PATH = "/webhooks/sendgrid"

# The newsroom's bigger bodies (issue 20), by path prefix: an image upload (10 MB of image
# plus the multipart framing), a CSV of people, a post's Markdown. At most UPLOADS_AT_ONCE
# such bodies are read at one time, so uploads hold at most ~2 x 11 MiB.
MiB = 1024 * 1024
UPLOAD_LIMITS = {
    "/admin/media": 10 * MiB + 64 * 1024,
    "/admin/subscribers/import": 10 * MiB + 64 * 1024,
    "/admin/posts": 1 * MiB,
    "/admin/broadcasts": 1 * MiB,
    "/api/v1/posts": 1 * MiB,
    "/api/v1/broadcasts": 1 * MiB,
}
UPLOADS_AT_ONCE = 2
API_PREFIX = "/api/v1"  # its refusals are problem details (publisher/web/api/problems.py)


@dataclass(frozen=True)
class Limits:
    """The bounds of `publisher serve`; tests shorten the timeouts."""

    form_bytes: int = MAX_FORM_BYTES  # every route but the webhook (GETs carry no body)
    webhook_bytes: int = WEBHOOK_MAX_BYTES
    header_bytes: int = 32 * 1024  # request line and headers together
    header_timeout: float = 10.0  # from the connection (or the request's first byte)
    body_timeout: float = 30.0  # the whole body, from the end of the headers
    keep_alive: int = 5  # an idle keep-alive connection is closed after this many seconds
    max_connections: int = 1000  # beyond: 503 at once (uvicorn's limit_concurrency)
    api_per_minute: int = 600  # requests per API key per minute (web/api/framework.py)

    def body_limit(self, path: str) -> int:
        if path == WEBHOOK_PATH:
            return self.webhook_bytes
        return upload_limit(path) or self.form_bytes


def upload_limit(path: str) -> int | None:
    """The body limit of a newsroom route that takes more than a form (None: a form)."""
    for prefix, limit in UPLOAD_LIMITS.items():
        if path == prefix or path.startswith(prefix + "/"):
            return limit
    return None


class BoundedBodies:
    """Pure ASGI middleware: read the body up to the route's limit within the deadline,
    then replay it to the application; 413 (or 408) before any handler runs."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app, self.limits = app, limits
        self._webhooks = asyncio.Semaphore(WEBHOOK_AT_ONCE)  # bound to the app's loop
        self._uploads = asyncio.Semaphore(UPLOADS_AT_ONCE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        if path == WEBHOOK_PATH:
            async with self._webhooks:  # SendGrid waits (and retries): its batches keep
                await self._bounded(scope, receive, send, path, self.limits.webhook_bytes)
            return
        uploaded = upload_limit(path)  # once a request: every request passes here
        if uploaded is not None and scope["method"] == "POST":
            async with self._uploads:
                await self._bounded(scope, receive, send, path, uploaded)
        else:
            limit = uploaded or self.limits.form_bytes
            await self._bounded(scope, receive, send, path, limit)

    async def _bounded(
        self, scope: Scope, receive: Receive, send: Send, path: str, limit: int
    ) -> None:
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(scope, path, limit)(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.limits.body_timeout):
                body = await _read_body(receive, limit)
        except TimeoutError:
            # the client is too slow: answer and close (its unread bytes are dropped)
            await _too_slow(scope, path)(scope, receive, send)
            return
        if body is None:
            await _too_large(scope, path, limit)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` (nothing more is read)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(parts)  # the app sees an empty or partial form and refuses it
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # afterwards: the disconnect, as Starlette expects

    return replay


def _route_path(scope: Scope) -> str:
    return str(scope["path"]).removeprefix(scope.get("root_path", ""))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1").strip())
    return None


def _web(scope: Scope) -> Any:
    return getattr(getattr(scope.get("app"), "state", None), "web", None)


def _api_problem(scope: Scope, path: str, status: int, slug: str, detail: str) -> Response | None:
    """The API's refusal as RFC 9457 problem details (None: not an API path)."""
    web = _web(scope)
    if web is None or not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
        return None
    # here, not at the top: the CLI imports this module without the whole API package
    from publisher.web.api.problems import Problem

    headers = {"connection": "close"} if status == 408 else {}
    return Problem(status, slug, detail, headers=headers).response(web)


def _too_slow(scope: Scope, path: str) -> Response:
    detail = "The request body did not arrive in time."
    answer = _api_problem(scope, path, 408, "timeout", detail)
    return answer or PlainTextResponse("Request timeout\n", 408, {"connection": "close"})


def _too_large(scope: Scope, path: str, limit: int) -> Response:
    if path == WEBHOOK_PATH:
        return JSONResponse({"error": "too large"}, status_code=413)
    detail = f"The body may be at most {limit} bytes."
    answer = _api_problem(scope, path, 413, "too-large", detail)
    if answer is not None:
        return answer
    web = _web(scope)
    if web is None:
        return PlainTextResponse("That request was too large.\n", status_code=413)
    page: Response = web.message("Too large", "That request was too large.", status=413)
    return page


class BoundedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size limit for the request line
    and headers, which uvicorn bounds neither of (a client sending one header byte a
    second held its connection forever). `limits` is set by `protocol_for`."""

    limits: Limits = Limits()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._header_timer: asyncio.TimerHandle | None = None
        self._awaiting_headers, self._header_seen = True, 0
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()  # a client that connects and says nothing is cut too

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.limits.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers:
            self._header_seen += len(data)
        super().data_received(data)
        if self._awaiting_headers and self._header_seen > self.limits.header_bytes:
            if not self.transport.is_closing():
                self.send_400_response("Request headers too large.")

    def on_message_begin(self) -> None:
        self._awaiting_headers = True
        self._arm()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._awaiting_headers, self._header_seen = False, 0
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_for(limits: Limits) -> type[BoundedProtocol]:
    return type("Bounded", (BoundedProtocol,), {"limits": limits})


def server_options(limits: Limits) -> dict[str, Any]:
    """uvicorn.Config's keyword arguments for these limits (`publisher serve` and tests)."""
    return {
        "http": protocol_for(limits),
        "timeout_keep_alive": limits.keep_alive,
        "limit_concurrency": limits.max_connections,
        "h11_max_incomplete_event_size": limits.header_bytes,  # if h11 were ever chosen
    }


__all__ = ["BoundedBodies", "Limits", "protocol_for", "server_options", "upload_limit"]
