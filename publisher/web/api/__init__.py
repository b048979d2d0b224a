"""The JSON API under /api/v1 (issue 22): keys with scopes, problem details, keyset
pages, Idempotency-Key, per-key rate limits, and the OpenAPI document generated from the
same route table (publisher/web/api/openapi.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette._utils import get_route_path
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from publisher.web.api import broadcasts, campaigns, content, people
from publisher.web.api.framework import Endpoint, handler_of, routes_of
from publisher.web.api.problems import RoutingProblems

PREFIX = "/api/v1"
ENDPOINTS: list[Endpoint] = [
    *people.ENDPOINTS,
    *content.ENDPOINTS,
    *campaigns.ENDPOINTS,
    *broadcasts.ENDPOINTS,
]


def routes() -> list[BaseRoute]:
    from publisher.web.api import openapi  # the document's own routes

    api = [*routes_of(ENDPOINTS), *openapi.ROUTES]
    return [Mount(PREFIX, routes=api, middleware=[Middleware(RoutingProblems)])]


class DirectPaths:
    """Pure ASGI middleware: a call of an API path without path values (POST
    /api/v1/subscribers, the creates) goes straight to its handler, by one dict look-up
    instead of Starlette's route by route matching and the Mount's; every other request,
    and another method on such a path (405), goes through the routes as before."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.table: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] = {
            (e.method, PREFIX + e.path): handler_of(e) for e in ENDPOINTS if "{" not in e.path
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.table.get((scope["method"], get_route_path(scope)))
            if handler is not None:
                response = await handler(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
