"""The bulk path of the JSON API: a prepared call of an endpoint with a `bulk` handler,
handed to the group commit's writer (publisher/store/group.py) as a `Pending`, and a batch of
them answered together, their Idempotency-Keys looked up and kept per batch.

framework.py imports this module and this module framework.py: each uses the other's names
only when called, never while the modules load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from publisher.store import Store, api_keys
from publisher.store.group import Bulk
from publisher.web.api import framework
from publisher.web.api.problems import Problem, problem_for, problem_response

__all__ = ["Pending", "bulk_of", "bulked"]


def bulked(endpoint: framework.Endpoint, call: framework.Call) -> bool:
    """The call goes to its endpoint's bulk handler in the group commit."""
    return (
        endpoint.bulk is not None
        and call.prepared is not None
        and endpoint.batched is not None
        and endpoint.batched(call.key)
    )


@dataclass
class Pending:
    """A prepared call of a bulk endpoint waiting for its batch."""

    call: framework.Call
    endpoint: framework.Endpoint
    request: Request
    raw: bytes
    idem: str | None
    headers: dict[str, str]


_BULKS: dict[int, Bulk] = {}  # id of the endpoint -> its Bulk (the group commit groups by it)


def bulk_of(endpoint: framework.Endpoint) -> Bulk:
    found = _BULKS.get(id(endpoint))
    if found is None:
        found = _BULKS[id(endpoint)] = Bulk(_many, _alone)
    return found


def _alone(store: Store, pending: Pending) -> Response:
    """One call by itself, as every batched call ran before bulk handlers."""
    p = pending
    response, _ = framework.batched_call(
        p.call, store, p.endpoint, p.request, p.raw, p.idem, p.headers
    )
    return response


def _many(store: Store, items: list[Pending]) -> list[tuple[Any, BaseException | None]]:
    """The calls of one bulk endpoint in a batch, answered as they would be one at a time
    in this order: their Idempotency-Keys looked up together, the handler run once for the
    calls to run, their answers kept together (nobody saw them running: one transaction);
    a key repeated within the batch is looked up again afterwards (a replay of the first
    one's answer, or 422 for another body)."""
    outcomes: dict[int, tuple[Any, BaseException | None]] = {}
    digests: dict[int, str] = {}
    for index, p in enumerate(items):
        if p.idem is not None:
            try:
                digests[index] = framework.digest_of(p.request, p.raw, p.idem)
            except Problem as refused:
                outcomes[index] = (None, refused)
    now = max(p.call.now for p in items)
    keys = {index: (items[index].call.key.id, items[index].idem or "") for index in digests}
    kept = api_keys.kept_answers(store, list(keys.values()), now=now)
    run, later, seen = [], [], set()
    for index, p in enumerate(items):
        if index in outcomes:
            continue
        if index in keys and keys[index] in seen:
            later.append(index)
        elif index in keys and keys[index] in kept:
            try:
                outcomes[index] = (
                    framework.replay(kept[keys[index]], digests[index], p.headers),
                    None,
                )
            except Problem as refused:
                outcomes[index] = (None, refused)
        else:
            seen.add(keys.get(index))
            run.append(index)
    endpoint = items[0].endpoint
    assert endpoint.bulk is not None
    answers = endpoint.bulk(store, [items[i].call for i in run]) if run else []
    keep: list[tuple[int, str, str, int, str]] = []
    for index, answer in zip(run, answers, strict=True):
        p = items[index]
        if index not in keys:
            outcomes[index] = _settled(p, answer)
            continue
        status, body = _kept(p, answer)
        if framework.kept_under_key(status):  # a 429 is not: a retry may get past it
            keep.append((*keys[index], digests[index], status, body.decode("utf-8")))
        answered = problem_response if status >= 400 else framework.respond
        outcomes[index] = (answered(status, body, p.headers), None)
    api_keys.keep_answers(store, keep, now=now)
    for index in later:
        try:
            outcomes[index] = (_alone(store, items[index]), None)
        except Exception as exc:  # its refusal (a reused key), given to its caller
            outcomes[index] = (None, exc)
    return [outcomes[index] for index in range(len(items))]


def _kept(p: Pending, answer: BaseModel | Exception) -> tuple[int, bytes]:
    """The status and body of an answer, as an Idempotency-Key keeps them."""
    if isinstance(answer, Exception):
        failure = problem_for(answer)
        if failure.status >= 500:  # not a refusal: the batch's calls run alone instead
            raise answer
        return failure.status, failure.body(p.call.w)
    return framework.answer_of(p.endpoint, answer)


def _settled(p: Pending, answer: BaseModel | Exception) -> tuple[Any, BaseException | None]:
    """The outcome of a call without an Idempotency-Key: its answer, or its refusal."""
    if isinstance(answer, Exception):
        if problem_for(answer).status >= 500:  # the batch's calls run alone instead
            raise answer
        return None, answer
    return framework.respond(*framework.answer_of(p.endpoint, answer), p.headers), None
