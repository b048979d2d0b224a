"""`POST /webhooks/sendgrid`: SendGrid's signed Event Webhook.

The signature (ECDSA P-256 over the timestamp header followed by the raw body) is checked
with the official library's `sendgrid.helpers.eventwebhook` over the body exactly as
received; a missing or bad signature, or a timestamp more than 10 minutes away, is refused
(403) and nothing is stored. Events are stored once each and acted on
(publisher.subscribers.events). Once the signature is good the answer is 200, whatever the
events say: an event that cannot be read is skipped and logged with why, and the rest are
applied. Anything else would make SendGrid retry the same batch for 24 hours and then drop
it, with every unsubscribe and complaint in it. (A database that cannot be reached still
answers 500, so SendGrid retries later.)
"""

from __future__ import annotations

import binascii
import json
import logging
import re
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook, EventWebhookHeader
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from publisher.subscribers.events import record_events
from publisher.web.context import web

log = logging.getLogger("publisher.web")
MAX_AGE = 600  # seconds: older (or as far in the future) is a replay
MAX_BODY = 32 * 1024 * 1024
KEY_VARIABLE = "SENDGRID_WEBHOOK_PUBLIC_KEY"
LOGGED_PROBLEMS = 20  # skipped events logged one by one per batch; the rest are counted
# ASCII digits only: str.isdigit() also accepts '²' and other digits int() refuses
_DIGITS = re.compile(r"[0-9]{1,15}")


def load_key(value: str | None) -> Any:
    """The verification key from SendGrid's Mail Settings (base64 DER), or None."""
    if not value:
        return None
    try:
        return EventWebhook().convert_public_key_to_ecdsa(value.strip())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{KEY_VARIABLE} is not a SendGrid verification key: {exc}") from None


def _refuse(reason: str) -> Response:
    log.warning("sendgrid webhook refused: %s", reason)
    return JSONResponse({"error": reason}, status_code=403)


async def sendgrid_events(request: Request) -> Response:
    w = web(request)
    if w.webhook_key is None:
        return _refuse(f"no verification key configured ({KEY_VARIABLE})")
    length = request.headers.get("content-length")
    if length is not None and (not _DIGITS.fullmatch(length) or int(length) > MAX_BODY):
        return JSONResponse({"error": "too large"}, status_code=413)
    raw = await request.body()
    signature = request.headers.get(EventWebhookHeader.SIGNATURE)
    stamp = request.headers.get(EventWebhookHeader.TIMESTAMP)
    if not signature or not stamp or not _DIGITS.fullmatch(stamp):
        return _refuse("missing signature or timestamp")
    if abs(w.now().timestamp() - int(stamp)) > MAX_AGE:
        return _refuse("stale timestamp")
    try:
        payload = raw.decode("utf-8")
        valid = EventWebhook().verify_signature(payload, signature, stamp, w.webhook_key)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        valid = False
    if not valid:
        return _refuse("bad signature")
    events = _events_of(payload)
    if events is None:  # signed, so SendGrid's own: a retry would bring the same again
        return JSONResponse({"received": 0, "error": "expected a JSON array of events"})
    report = record_events(w.store, events, now=w.now())
    for problem in report.problems[:LOGGED_PROBLEMS]:
        log.warning("sendgrid webhook: %s", problem)
    if len(report.problems) > LOGGED_PROBLEMS:
        more = len(report.problems) - LOGGED_PROBLEMS
        log.warning("sendgrid webhook: %d more event(s) skipped in this batch", more)
    return JSONResponse(
        {
            "received": report.received,
            "stored": report.stored,
            "duplicates": report.duplicates,
            "skipped": report.skipped,
            "status_changes": report.status_changes,
        }
    )


def _integer(digits: str) -> int | str:
    return int(digits) if len(digits) <= 40 else digits


def _events_of(payload: str) -> list[Any] | None:
    """The batch's events, or None (logged) when the body is not a JSON array."""
    try:  # a number too long for int() stays a string: its one event is refused, not all
        events = json.loads(payload, parse_int=_integer)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        log.warning("sendgrid webhook: body is not JSON (%s); ignored", exc.__class__.__name__)
        return None
    if not isinstance(events, list):
        log.warning("sendgrid webhook: body is not a JSON array of events; ignored")
        return None
    return events


ROUTES = [Route("/webhooks/sendgrid", sendgrid_events, methods=["POST"])]
