"""The Starlette application behind `publisher serve`: one router module per area
(subscriber pages, sign-up, webhooks, the staff dashboard under /admin),
security headers, and our own access log that never contains a query string (tokens)."""

from __future__ import annotations

import functools
import gc
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from publisher.config import PublisherConfig
from publisher.errors import PublisherError
from publisher.publish.archive import ARCHIVE_DIR
from publisher.publish.posts import POSTS_DIR
from publisher.render.environment import render_template
from publisher.store import Store
from publisher.store.group import GroupCommit
from publisher.web import admin, api, media, signup, subscriber, webhook
from publisher.web.api.access import KeyWindows
from publisher.web.bounds import BoundedBodies, Limits
from publisher.web.context import Web, topics_of, web, web_environment
from publisher.web.forms import FormTooLarge
from publisher.web.security import Tokens

access_log = logging.getLogger("publisher.web.access")

# Framing: only the sign-up page may be embedded (in an iframe on the organisation's site).
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' https:; form-action 'self'; "
    "base-uri 'none'"
)
# The published pages (an edition's web copy is an email: inline styles throughout) keep
# their styles; still no script, no form, no framing.
PUBLISHED = ("/archive", "/feeds", "/posts")
PUBLISHED_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
# An RSS or Atom document loads its feed.xsl, which browsers check as a script.
FEED_CSP = f"{PUBLISHED_CSP}; script-src 'self'"


def _policy(path: str) -> str:
    if not path.startswith(PUBLISHED):
        return CSP
    return FEED_CSP if path.endswith((".rss", ".atom")) else PUBLISHED_CSP


@functools.lru_cache(maxsize=16)  # (3 policies) x (2 framings): built once, not per answer
def _framed(policy: str, framing: str) -> bytes:
    return f"{policy}; frame-ancestors {framing}".encode()


HSTS = b"max-age=31536000"  # a year; not includeSubDomains: the organisation's other sites
# control characters (and the quote that ends the logged field) never reach a log line raw
UNPRINTABLE = re.compile('[\x00-\x1f"\x7f-\x9f\u2028\u2029]')


def printable(value: str) -> str:
    """`value` with control characters escaped: a %0A in a path cannot forge a log line."""
    return UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


@functools.lru_cache(maxsize=64)  # a handful of policies: parsed once, not per answer
def frame_options(policy: bytes) -> bytes | None:
    """X-Frame-Options saying what the policy's frame-ancestors says, for browsers that
    ignore CSP; none when it names other sites (X-Frame-Options cannot)."""
    for directive in policy.split(b";"):
        name, _, value = directive.strip().partition(b" ")
        if name == b"frame-ancestors":
            return {b"'none'": b"DENY", b"'self'": b"SAMEORIGIN"}.get(value.strip())
    return None


class SecurityHeaders:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): headers on every answer and
    one access-log line with the path only, never the query string."""

    def __init__(self, app: ASGIApp, frame_ancestors: str) -> None:
        self.app, self.frame_ancestors = app, frame_ancestors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, path = time.perf_counter(), scope["path"]
        # under --root-path the path carries the prefix (uvicorn adds it): policies go by
        # the app's own path, so /news/posts/ is a published page like /posts/
        local = path.removeprefix(scope.get("root_path", ""))
        status = 500
        framing = self.frame_ancestors if local == "/subscribe" else "'none'"

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                policy = next((v for k, v in headers if k == b"content-security-policy"), None)
                if policy is None:  # /admin sets its own
                    policy = _framed(_policy(local), framing)
                    headers.append((b"content-security-policy", policy))
                if (framed := frame_options(policy)) is not None:
                    headers.append((b"x-frame-options", framed))
                if scope["scheme"] == "https":  # behind a proxy: its X-Forwarded-Proto
                    headers.append((b"strict-transport-security", HSTS))
                headers += [
                    (b"referrer-policy", b"no-referrer"),  # token URLs never leak onwards
                    (b"x-content-type-options", b"nosniff"),
                ]
                if not local.startswith((*PUBLISHED, "/web.css", "/media/")):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            client = scope.get("client") or ("-", 0)
            access_log.info(
                '%s "%s %s" %s %.1fms',
                client[0],
                printable(scope["method"]),
                printable(path),
                status,
                (time.perf_counter() - started) * 1000,
            )


async def stylesheet(request: Request) -> Response:
    w = web(request)
    css = render_template(w.env, "web/web.css", {"colours": w.config.organisation.colours})
    return Response(css, media_type="text/css", headers={"cache-control": "public, max-age=3600"})


async def too_large(request: Request, exc: Exception) -> Response:
    """Every form is read by forms.read_form; one answer for a body over its limit."""
    return web(request).message("Too large", "That request was too large.", status=413)


async def failure(request: Request, exc: Exception) -> Response:
    """Anything unexpected (the store down, a template broken): a plain page, never a
    traceback; the log has the detail."""
    logging.getLogger("publisher.web").error(
        "%s %s failed: %r", request.method, request.url.path, exc
    )
    return web(request).message(
        "Something went wrong",
        "Nothing was changed. Please try again in a few minutes.",
        status=500,
    )


async def health(request: Request) -> Response:
    return Response("ok\n", media_type="text/plain")


# RSS and Atom as XML: a browser then shows them through their feed.xsl (under their own
# types it offers a download instead); feed readers accept either.
XML_FEEDS = {".rss": "application/xml; charset=utf-8", ".atom": "application/xml; charset=utf-8"}


class PublishedFiles(StaticFiles):
    """A folder the publisher writes (it may not exist yet: 404 until the first build).
    Dotfiles (.git, .htpasswd, a build's state) are never served."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except HTTPException as exc:  # a page, not Starlette's plain-text "Not Found"
            if exc.status_code != 404:
                raise
            answer = scope["app"].state.web.message(
                "Not found", "Nothing is published at this address.", status=404
            )
            await answer(scope, receive, send)

    async def check_config(self) -> None:
        if self.directory is None or not Path(self.directory).is_dir():
            raise HTTPException(404)
        await super().check_config()

    def file_response(
        self, full_path: Any, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        media_type = XML_FEEDS.get(Path(full_path).suffix)
        if media_type:
            response.headers["content-type"] = media_type
        return response

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if isinstance(response, RedirectResponse):  # a folder without its slash (posts/<slug>)
            # Starlette's redirect is absolute, built from the Host header; this one is
            # relative, so it stays on the host (and the prefix) it came on
            last = quote(scope["path"].rstrip("/").rsplit("/", 1)[-1])
            response.headers["location"] = f"./{last}/"
        return response

    def lookup_path(self, path: str) -> tuple[str, Any]:
        if any(part.startswith(".") for part in PurePosixPath(path.replace("\\", "/")).parts):
            return "", None
        return super().lookup_path(path)


def slash_redirects(router: Router) -> Callable[[Scope, Receive, Send], Any]:
    """Starlette's redirect between /path and /path/ is absolute and built from the Host
    header; this one is relative, so it stays on the host (and the prefix) it came on."""

    async def redirect_or_404(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        if scope["type"] == "http" and path != "/" and not path.endswith("//"):
            other = path[:-1] if path.endswith("/") else path + "/"
            probe = dict(scope, path=scope["path"][: -len(path)] + other)
            if any(route.matches(probe)[0] is not Match.NONE for route in router.routes):
                last = quote(other.rstrip("/").rsplit("/", 1)[-1])
                target = f"../{last}" if path.endswith("/") else f"./{last}/"
                query = scope.get("query_string", b"").decode("latin-1")
                location = f"{target}?{query}" if query else target
                await RedirectResponse(location, status_code=307)(scope, receive, send)
                return
        await router.not_found(scope, receive, send)

    return redirect_or_404


def _static(config: PublisherConfig) -> list[BaseRoute]:
    """archive/, feeds/ and posts/ as written by the publisher, with ETag, Last-Modified and 304
    (Starlette's StaticFiles); in production let nginx or Caddy serve them instead."""
    mounts: list[BaseRoute] = []
    folders = {
        "archive": config.resolve(ARCHIVE_DIR),
        "feeds": config.resolve(config.feeds.output_dir),
        "posts": config.resolve(POSTS_DIR),
    }
    for name, folder in folders.items():  # check_dir=False: the folder may appear later
        files = PublishedFiles(directory=Path(folder), html=True, check_dir=False)
        mounts.append(Mount(f"/{name}", files, name=name))
    return mounts


def create_app(
    config: PublisherConfig,
    store: Store,
    *,
    secret_key: str,
    now: Callable[[], datetime],
    webhook_key: Any = None,
    send_email: Callable[..., str | None] | None = None,
    limits: Limits | None = None,
) -> Starlette:
    if not secret_key:
        raise PublisherError("the subscriber web needs a secret key (PUBLISHER_SECRET_KEY)")
    state = Web(
        config=config,
        store=store,
        tokens=Tokens(secret_key, now),
        now=now,
        env=web_environment(config),
        topics=topics_of(config),
        webhook_key=webhook_key,
        send_email=send_email,
    )
    routes: list[BaseRoute] = [
        Route("/web.css", stylesheet, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        # the API first: Starlette tries each route in turn, /admin's ~80 cost an API call
        # more than its own work (one Mount under /api/v1, matched nowhere else)
        *api.routes(),
        *signup.ROUTES,
        *subscriber.ROUTES,
        *webhook.ROUTES,
        *admin.ROUTES,
        *media.ROUTES,
        *_static(config),
    ]
    website = config.organisation.website.rstrip("/")
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders, frame_ancestors=f"'self' {website}"),
            Middleware(BoundedBodies, limits=limits or Limits()),
            Middleware(api.DirectPaths),  # the API's creates without route matching
        ],
        exception_handlers={FormTooLarge: too_large, Exception: failure},
    )
    app.router.redirect_slashes = False
    app.router.default = slash_redirects(app.router)
    app.state.web = state
    app.state.staff_sessions = admin.Sessions(secret_key, now)
    app.state.api_per_minute = (limits or Limits()).api_per_minute
    app.state.api_windows = KeyWindows()
    # its writer thread starts on first use; its jobs (the API's creates: add_person, the
    # audit row, the Idempotency-Key answer) never catch a failed statement: no inner
    # savepoints
    app.state.api_writes = GroupCommit(store, nested=False)
    _freeze_once()
    return app


_frozen: list[bool] = []


def _freeze_once() -> None:
    """What is alive when the first app is made (the modules, the configuration, the app)
    lives as long as the process: out of the collector's sight, a full collection no longer
    walks it (one was a 150 ms pause in the middle of a page on the admin benchmark). Once a
    process: a test run making many apps freezes none of the later ones' garbage."""
    if not _frozen:
        _frozen.append(True)
        gc.collect()
        gc.freeze()
