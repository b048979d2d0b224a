"""Every failure of the JSON API as RFC 9457 problem details (`application/problem+json`):
type, title, status, detail, and for a 422 the fields at fault. The errors the inner code
raises become statuses HERE and nowhere else; anything unexpected is a 500 that says
nothing about why (the log has it), never a traceback."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from publisher.deliver.approval import NotApproved
from publisher.errors import PublisherError
from publisher.store.broadcasts import BroadcastNotFound
from publisher.store.items import ItemNotFound
from publisher.store.posts import PostConflict, PostInvalid, PostNotFound
from publisher.subscribers.consent import StaffRefused
from publisher.web.context import Web

PROBLEM_TYPE = "application/problem+json"
TITLES = {
    "bad-request": "The request cannot be read",
    "unauthorized": "No usable API key",
    "forbidden": "The key does not allow this",
    "not-found": "Not found",
    "method-not-allowed": "This path does not take this method",
    "timeout": "The request body took too long to arrive",
    "too-large": "The request body is too large",
    "conflict": "Conflict with the current state",
    "idempotency-in-progress": "A request with this Idempotency-Key is still running",
    "idempotency-key-reused": "This Idempotency-Key was used with another request",
    "unsupported-media-type": "Unsupported media type",
    "invalid": "Invalid values",
    "rate-limited": "Too many requests",
    "server-error": "Something went wrong",
    "approval-needed": "A second staff member must approve this version in /admin first",
    "not-sent": "The email could not be sent",
}
# inner errors by class: (status, problem); the first class an error is an instance of wins
MAPPED: list[tuple[type[Exception], int, str]] = [
    (PostNotFound, 404, "not-found"),
    (ItemNotFound, 404, "not-found"),
    (PostConflict, 409, "conflict"),
    (StaffRefused, 409, "conflict"),
    (PostInvalid, 422, "invalid"),
    (BroadcastNotFound, 404, "not-found"),
    (NotApproved, 409, "approval-needed"),
    (ValueError, 422, "invalid"),
    (PublisherError, 409, "conflict"),
]


class Problem(Exception):
    def __init__(
        self,
        status: int,
        slug: str,
        detail: str = "",
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or slug)
        self.status, self.slug, self.detail = status, slug, detail
        self.errors = errors
        self.headers = headers or {}

    @classmethod
    def invalid(cls, exc: ValidationError, where: str) -> Problem:
        errors = [
            {
                "location": where,
                "field": ".".join(str(part) for part in error["loc"]) or "(whole)",
                "detail": error["msg"],
            }
            for error in exc.errors(include_url=False, include_input=False)[:50]
        ]
        return cls(422, "invalid", f"The {where} has invalid values.", errors=errors)

    def document(self, w: Web) -> dict[str, Any]:
        base = w.config.organisation.public_url.rstrip("/")
        document: dict[str, Any] = {
            "type": f"{base}/api/v1/docs#problem-{self.slug}",
            "title": TITLES.get(self.slug, self.slug),
            "status": self.status,
            "detail": self.detail or TITLES.get(self.slug, self.slug),
        }
        if self.errors is not None:
            document["errors"] = self.errors
        return document

    def body(self, w: Web) -> bytes:
        return json.dumps(self.document(w)).encode("utf-8")

    def response(self, w: Web) -> Response:
        return problem_response(self.status, self.body(w), self.headers)


def problem_response(status: int, body: bytes, headers: dict[str, str]) -> Response:
    return Response(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def problem_for(exc: Exception) -> Problem:
    """The problem an exception means (a 500 for anything not mapped)."""
    if isinstance(exc, Problem):
        return exc
    for kind, status, slug in MAPPED:
        if isinstance(exc, kind):
            return Problem(status, slug, str(exc)[:500])
    return Problem(500, "server-error", "The request failed on our side. Please try again later.")


# Starlette's own refusals under /api/v1 (no route: 404, another method: 405)
ROUTING = {
    404: ("not-found", "Nothing is at this address of the API."),
    405: ("method-not-allowed", "The Allow header lists the methods this path takes."),
}


class RoutingProblems:
    """Pure ASGI middleware of the API's Mount: what its router refuses (an unknown path, a
    method a path does not take) as problem details, not Starlette's plain text; the rest
    of the site keeps its pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except HTTPException as exc:
            if scope["type"] != "http" or exc.status_code not in ROUTING:
                raise
            slug, detail = ROUTING[exc.status_code]
            refused = Problem(exc.status_code, slug, detail, headers=dict(exc.headers or {}))
            await refused.response(scope["app"].state.web)(scope, receive, send)
