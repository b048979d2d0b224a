"""The JSON API under /api/v1 (issue 22): keys with scopes, problem details, keyset
pages, Idempotency-Key, per-key rate limits, and the OpenAPI document generated from the
same route table (publisher/web/api/openapi.py)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount

from publisher.web.api import broadcasts, campaigns, content, people
from publisher.web.api.framework import Endpoint, routes_of

PREFIX = "/api/v1"
ENDPOINTS: list[Endpoint] = [
    *people.ENDPOINTS,
    *content.ENDPOINTS,
    *campaigns.ENDPOINTS,
    *broadcasts.ENDPOINTS,
]


def routes() -> list[BaseRoute]:
    from publisher.web.api import openapi  # the document's own routes

    return [Mount(PREFIX, routes=[*routes_of(ENDPOINTS), *openapi.ROUTES])]
