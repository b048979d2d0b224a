"""`POST /webhooks/sendgrid`: SendGrid's signed Event Webhook.

The signature (ECDSA P-256 over the timestamp header followed by the raw body) is checked
with the official library's `sendgrid.helpers.eventwebhook` over the body exactly as
received; a missing or bad signature, or a timestamp more than 10 minutes away, is refused
(403) and nothing is stored. Events are stored once each and acted on
(publisher.subscribers.events).
"""

from __future__ import annotations

import binascii
import json
import logging
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
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return JSONResponse({"error": "too large"}, status_code=413)
    raw = await request.body()
    signature = request.headers.get(EventWebhookHeader.SIGNATURE)
    stamp = request.headers.get(EventWebhookHeader.TIMESTAMP)
    if not signature or not stamp or not stamp.isdigit():
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
    try:
        events = json.loads(payload)
    except json.JSONDecodeError:
        return JSONResponse({"error": "body is not JSON"}, status_code=400)
    if not isinstance(events, list):
        return JSONResponse({"error": "expected a JSON array of events"}, status_code=400)
    report = record_events(w.store, events, now=w.now())
    for problem in report.problems[:5]:
        log.warning("sendgrid webhook: %s", problem)
    return JSONResponse(
        {
            "received": report.received,
            "stored": report.stored,
            "duplicates": report.duplicates,
            "status_changes": report.status_changes,
        }
    )


ROUTES = [Route("/webhooks/sendgrid", sendgrid_events, methods=["POST"])]
