"""The JSON API's one request path: a route table of `Endpoint`s (the same table the OpenAPI
document is generated from), the key and its scope, the per-key rate limit with its
RateLimit headers, the JSON body validated by the endpoint's pydantic model, the
Idempotency-Key of a POST, and every failure as RFC 9457 problem details. Keys, scopes and
rate limits are access.py's.

Handlers are plain functions of a `Call`, run in a worker thread, calling the same store
and pipeline functions as the CLI and /admin; they return a pydantic model (or None: 204)
and raise `Problem` or a PublisherError (mapped to a status in one place: problems.py)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from publisher.store import Store, api_keys
from publisher.store.api_keys import ApiKey
from publisher.web.api import bulk
from publisher.web.api.access import allowed_key, authorise, bearer, rate_headers
from publisher.web.api.problems import Problem, problem_for, problem_response
from publisher.web.context import Web, client_ip, off_loop, web
from publisher.web.notices import later

log = logging.getLogger("publisher.web.api")
JSON_TYPE = "application/json"
IDEMPOTENCY_MAX = 255
MAX_ID = 2**31 - 1  # ids are 32-bit on PostgreSQL: a larger one names nothing


@dataclass
class Call:
    """What a handler gets: the app's state, the key, the validated body and query, the
    path's values, where the request came from."""

    w: Web
    key: ApiKey
    params: dict[str, Any]
    body: Any = None
    query: Any = None
    ip: str = ""
    user_agent: str | None = None
    now: datetime = field(default_factory=lambda: datetime.min)
    # work a handler leaves for after the answer (a send): run only when it answered
    after: Callable[[], None] | None = None
    prepared: Any = None  # what the endpoint's `prepare` worked out for its handler

    @property
    def actor(self) -> str:
        """Who the audit log names for a write through this key."""
        return f"api key: {self.key.name}"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # OpenAPI form: /subscribers/{id} (every path value is an integer id)
    scope: str  # the scope a key needs; "signup": the sign-up key kind
    handler: Callable[[Call], BaseModel | None]
    summary: str
    tag: str
    answer: type[BaseModel] | None = None  # None: 204 No Content
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    cors: bool = False  # another website's page may call it (the sign-up)
    extra: tuple[tuple[str, str], ...] = ()  # more problem answers it gives: (status, why)
    # for the keys this says yes to, the handler only writes the store (no mail, no
    # network): it runs in the group commit (publisher/store/group.py), the idempotency
    # claim and answer in the same transaction
    batched: Callable[[ApiKey], bool] | None = None
    # pure checks run before a batched handler, outside the group commit's one writer
    # thread (so its serial work is the store's): they leave `prepared` (None: not done)
    prepare: Callable[[Call], None] | None = None
    # the handler for many prepared calls of a batch at once, on the batch's store: each
    # call's answer, or the refusal (Problem, PublisherError) the handler would raise; any
    # other failure raises, and each call then runs alone through the handler
    bulk: Callable[[Store, list[Call]], Sequence[BaseModel | Exception]] | None = None
    description: str = ""  # more than the summary says, for the document (before the scope)

    @property
    def route_path(self) -> str:
        return self.path.replace("}", ":int}")


def _parse(model: type[BaseModel] | None, raw: Any, where: str) -> Any:
    if model is None:
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise Problem.invalid(exc, where) from None


def _body(request: Request, raw: bytes, endpoint: Endpoint) -> Any:
    if endpoint.body is None:
        return None
    if not request.headers.get("content-type", "").startswith(JSON_TYPE):
        raise Problem(415, "unsupported-media-type", "Send the body as application/json.")
    try:
        data = json.loads(raw or b"null")
        # NUL and lone surrogates: JSON allows them, no database column does
        if b"\\u0000" in raw:
            raise ValueError("NUL")
        # a lone surrogate comes from a \u escape or from bytes beyond ASCII (json.loads
        # lets encoded surrogates pass): ASCII text without \u holds none, and is most bodies
        if b"\\u" in raw or not raw.isascii():
            json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError):
        raise Problem(400, "bad-request", "The body is not JSON text we can keep.") from None
    return _parse(endpoint.body, data, "body")


def _query(request: Request, endpoint: Endpoint) -> Any:
    if endpoint.query is None and not request.scope.get("query_string"):
        return None  # the common case, without building QueryParams
    params = request.query_params
    if endpoint.query is None:
        if params:
            raise Problem(400, "bad-request", "This endpoint takes no query parameters.")
        return None
    if any("\x00" in name + value for name, value in params.multi_items()):
        raise Problem(400, "bad-request", "A query parameter holds a NUL character.")
    repeated = [name for name in params if len(params.getlist(name)) > 1]
    if repeated:
        raise Problem(400, "bad-request", f"Give {repeated[0]} once.")
    return _parse(endpoint.query, dict(params), "query")


def answer_of(endpoint: Endpoint, result: BaseModel | None) -> tuple[int, bytes]:
    if result is None:
        return 204, b""
    return endpoint.status, result.model_dump_json().encode("utf-8")


def respond(status: int, body: bytes, headers: dict[str, str]) -> Response:
    media = JSON_TYPE if body else None
    return Response(body or None, status_code=status, media_type=media, headers=headers)


def _run(request: Request, endpoint: Endpoint, raw: bytes, headers: dict[str, str]) -> Response:
    """Everything after the body has arrived, in a worker thread."""
    _check_ids(request)
    w = web(request)
    key = authorise(w, endpoint, bearer(request))
    call = _called(request, endpoint, raw, headers, key, w.now())
    return _dispatch(call, request, endpoint, raw, headers)


def _check_ids(request: Request) -> None:
    if any(value > MAX_ID for value in request.path_params.values()):
        raise Problem(404, "not-found", "No record with this id.")


def _called(
    request: Request,
    endpoint: Endpoint,
    raw: bytes,
    headers: dict[str, str],
    key: ApiKey,
    now: datetime,
) -> Call:
    """The call of a key allowed `endpoint`, counted against its rate, its body and query
    read, prepared for a batched handler: pure work (no store)."""
    w = web(request)
    state = request.app.state
    ip = client_ip(request)
    headers.update(rate_headers(now, state.api_windows, key, state.api_per_minute, ip))
    call = Call(
        w,
        key,
        dict(request.path_params),
        body=_body(request, raw, endpoint),
        query=_query(request, endpoint),
        ip=ip,
        user_agent=request.headers.get("user-agent"),
        now=now,
    )
    if endpoint.prepare is not None and endpoint.batched is not None and endpoint.batched(key):
        try:
            endpoint.prepare(call)
        except Problem:  # the handler raises it again, where an Idempotency-Key keeps it
            call.prepared = None
    return call


def _dispatch(
    call: Call, request: Request, endpoint: Endpoint, raw: bytes, headers: dict[str, str]
) -> Response:
    """The handler run for a call, in a worker thread."""
    idem = request.headers.get("idempotency-key")
    state = request.app.state
    if bulk.bulked(endpoint, call):
        pending = bulk.Pending(call, endpoint, request, raw, idem, headers)
        return cast(Response, state.api_writes.submit(bulk.bulk_of(endpoint), pending).result())
    if endpoint.batched is not None and endpoint.batched(call.key):
        response, after = state.api_writes.run(
            lambda store: batched_call(call, store, endpoint, request, raw, idem, headers)
        )
    else:
        response, after = _call(call, endpoint, request, raw, idem, headers), call.after
    if after is not None:  # after the answer has gone (a replayed answer left none)
        response.background = later(call.w, after)
    return response


def _on_loop(
    request: Request, endpoint: Endpoint, raw: bytes, headers: dict[str, str]
) -> Call | None:
    """The call, worked out on the event loop when its key is known without the store
    (see api_keys.cached_key); None: all of it runs in a worker thread (`_run`)."""
    token = bearer(request)
    w = web(request)
    now = w.now()  # one reading of the clock for the whole call
    key = api_keys.cached_key(w.store, token, now=now) if token else None
    if key is None:
        return None
    _check_ids(request)
    return _called(request, endpoint, raw, headers, allowed_key(key, endpoint), now)


def _call(
    call: Call,
    endpoint: Endpoint,
    request: Request,
    raw: bytes,
    idem: str | None,
    headers: dict[str, str],
) -> Response:
    if endpoint.method != "POST" or idem is None:
        return respond(*answer_of(endpoint, endpoint.handler(call)), headers)
    return _idempotent(call, endpoint, request, raw, idem, headers)


def batched_call(
    call: Call,
    store: Store,
    endpoint: Endpoint,
    request: Request,
    raw: bytes,
    idem: str | None,
    headers: dict[str, str],
) -> tuple[Response, Callable[[], None] | None]:
    """One job of the group commit: the call on the batch's store."""
    joined = replace(call, w=replace(call.w, store=store))
    return _call(joined, endpoint, request, raw, idem, headers), joined.after


def _claim(
    store: Store, call: Call, request: Request, raw: bytes, idem: str, headers: dict[str, str]
) -> Response | None:
    """Claim the Idempotency-Key (None: claimed, run the request), or the kept answer."""
    digest = digest_of(request, raw, idem)
    kept = api_keys.claim_answer(store, call.key.id, idem, digest, now=call.now)
    return None if kept is None else replay(kept, digest, headers)


def digest_of(request: Request, raw: bytes, idem: str) -> str:
    """What a retry must repeat (a usable Idempotency-Key checked first: 400)."""
    if not idem or len(idem) > IDEMPOTENCY_MAX or not idem.isprintable():
        raise Problem(400, "bad-request", f"Idempotency-Key: 1 to {IDEMPOTENCY_MAX} characters.")
    return hashlib.sha256(f"{request.url.path}\n".encode() + raw).hexdigest()


def replay(kept: api_keys.Replay, digest: str, headers: dict[str, str]) -> Response:
    """The kept answer again, or why not (another body: 422; still running: 409)."""
    if kept.request_hash != digest:
        raise Problem(422, "idempotency-key-reused", "This key was used with another body.")
    if kept.status == 0:
        raise Problem(409, "idempotency-in-progress", "The first request still runs.")
    headers["Idempotent-Replayed"] = "true"
    if kept.status >= 400:  # a kept refusal is problem details again, not plain JSON
        return problem_response(kept.status, kept.body.encode("utf-8"), headers)
    return respond(kept.status, kept.body.encode("utf-8"), headers)


def kept_under_key(status: int) -> bool:
    """Whether an answer is kept for retries under its Idempotency-Key: not a 429 nor a
    server error, which a retry may get past (after Retry-After, once the fault is gone)."""
    return status < 500 and status != 429


def _idempotent(
    call: Call, endpoint: Endpoint, request: Request, raw: bytes, idem: str, headers: dict[str, str]
) -> Response:
    """A POST with an Idempotency-Key: run once per key and body; a retry gets the same
    answer, the same key with another body 422, while the first still runs 409 (for
    IDEMPOTENCY_STALE at most: then the claim counts as lost, see api_keys.claim_answer)."""
    store, key_id = call.w.store, call.key.id
    kept = _claim(store, call, request, raw, idem, headers)
    if kept is not None:
        return kept
    try:
        status, body = answer_of(endpoint, endpoint.handler(call))
    except Exception as exc:
        failure = problem_for(exc)
        if not kept_under_key(failure.status):
            api_keys.release_answer(store, key_id, idem)
            raise
        status, body = failure.status, failure.body(call.w)
    api_keys.remember_answer(store, key_id, idem, status=status, body=body.decode("utf-8"))
    if status >= 400:
        return problem_response(status, body, headers)
    return respond(status, body, headers)


def handler_of(endpoint: Endpoint) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        headers: dict[str, str] = {}
        if endpoint.cors:
            headers.update(CORS)
        try:
            raw = await request.body()  # bounded by web/bounds.py before it gets here
            if endpoint.bulk is None:
                return await off_loop(_run, request, endpoint, raw, headers)
            # one hop: the pure work here, the create straight to the group commit's
            # writer, which resolves the future (no worker thread waiting in between)
            call = _on_loop(request, endpoint, raw, headers)
            if call is None:
                return await off_loop(_run, request, endpoint, raw, headers)
            if not bulk.bulked(endpoint, call):
                return await off_loop(_dispatch, call, request, endpoint, raw, headers)
            idem = request.headers.get("idempotency-key")
            pending = bulk.Pending(call, endpoint, request, raw, idem, headers)
            future = request.app.state.api_writes.submit(bulk.bulk_of(endpoint), pending)
            return cast(Response, await asyncio.wrap_future(future))
        except Exception as exc:
            failure = problem_for(exc)
            if failure.status >= 500:
                log.error("%s %s failed: %r", request.method, request.url.path, exc)
            failure.headers = {**headers, **failure.headers}
            return failure.response(web(request))

    return handle


CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Max-Age": "600",
    "Access-Control-Expose-Headers": "RateLimit, RateLimit-Policy, Retry-After",
}


async def preflight(request: Request) -> Response:
    return Response(status_code=204, headers=CORS)


def routes_of(endpoints: list[Endpoint]) -> list[Route]:
    routes = [Route(e.route_path, handler_of(e), methods=[e.method]) for e in endpoints]
    routes += [Route(e.route_path, preflight, methods=["OPTIONS"]) for e in endpoints if e.cors]
    return routes
