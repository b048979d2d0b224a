"""The `sendgrid` backend's request bodies: each recipient's personalization, and a batch's
body as a dict (`build_body`) or as JSON text written once (`encode`).

A personalization carries the recipient's `to`, the placeholder values as `substitutions`
and its own List-Unsubscribe and Message-ID headers. A recipient whose values cannot be sent
(an oversized name, a control character in a header) is refused with the reason, never sent.
"""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

from publisher.deliver.base import (
    UNSAFE_HEADER,
    URL_SAFE,
    HeaderError,
    Message,
    Recipient,
    check_header,
    list_unsubscribe,
    message_id,
    opaque_id,
)
from publisher.render.personalise import (
    NAME,
    NAME_FALLBACK,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    neutralise,
)

HTML_NAME = "%%NAME_HTML%%"  # the name HTML-escaped, as personalise() does for HTML
SUBSTITUTIONS_LIMIT = 10_000  # bytes per personalization (SendGrid's documented limit)


class Encoded(NamedTuple):
    """A batch's request, serialised: the JSON text (None: nobody left to send to) and the
    recipients refused before sending (oversized values)."""

    body: str | None
    refused: dict[int, str]


def personalization(message: Message, recipient: Recipient, nonce: str) -> dict[str, Any]:
    to = {"email": recipient.email}
    if recipient.name:
        to["name"] = recipient.name
    name, unsubscribe, preferences, list_unsub, mid = _values(message, recipient, nonce)
    return {
        "to": [to],
        "substitutions": {
            NAME: name,
            HTML_NAME: html.escape(name, quote=True),
            UNSUBSCRIBE_URL: unsubscribe,
            PREFERENCES_URL: preferences,
        },
        "headers": {"List-Unsubscribe": list_unsub, "Message-ID": mid},
    }


def build_body(
    prepared: dict[str, Any], recipients: Sequence[Recipient], batch_key: str
) -> tuple[dict[str, Any], dict[int, str]]:
    """The request body and the recipients refused before sending (oversized values)."""
    refused: dict[int, str] = {}
    body = _envelope(prepared, batch_key)
    body["personalizations"] = list(_accepted(prepared, recipients, refused))
    return body, refused


def encode(prepared: dict[str, Any], recipients: Sequence[Recipient], batch_key: str) -> Encoded:
    """`build_body` as JSON text (the same text `json.dumps` makes of it), built once: the
    dispatcher calls this ahead of the sending threads, and every attempt of the batch
    sends the same text. Each personalization becomes text at once: a thousand of them
    alive together would be promoted to the collector's oldest generation and bring on
    full collections (a pause of every thread)."""
    refused: dict[int, str] = {}
    parts = list(_accepted_json(prepared, recipients, refused))
    if not parts:
        return Encoded(None, refused)
    head = json.dumps(_envelope(prepared, batch_key))  # "{...}": personalizations last
    return Encoded(f'{head[:-1]}, "personalizations": [{", ".join(parts)}]}}', refused)


def _accepted(
    prepared: dict[str, Any], recipients: Sequence[Recipient], refused: dict[int, str]
) -> Iterator[dict[str, Any]]:
    """Each recipient's personalization, unless refused (recorded in `refused`)."""
    message: Message = prepared["message"]
    nonce = secrets.token_hex(4)
    for recipient in recipients:
        p = personalization(message, recipient, nonce)
        if not _refuse(recipient, p, refused):
            yield p


def _accepted_json(
    prepared: dict[str, Any], recipients: Sequence[Recipient], refused: dict[int, str]
) -> Iterator[str]:
    """`_accepted` as JSON text, written straight from the values: the C string encoder
    per value and one %-format per recipient, the per-batch parts of every URL and id
    built once (the CPU-bound heart of a big send). The same text as
    json.dumps(personalization): tests/test_deliver_sendgrid.py checks it."""
    message: Message = prepared["message"]
    nonce = secrets.token_hex(4)
    if not recipients:
        return
    root = recipients[0].public_url.rstrip("/")
    unsubscribe_at, preferences_at = f"{root}/unsubscribe?token=", f"{root}/preferences?token="
    mailto, id_tail = message.mailto_prefix, f".{nonce}@{message.domain}>"
    id_head = f"<{message.edition_id}."
    unsafe, url_safe, escape, fmt = (
        UNSAFE_HEADER.search,
        URL_SAFE.fullmatch,
        html.escape,
        _PERSONALIZATION,
    )
    for r in recipients:
        sid, email, name, token, public_url, mark = r
        if (
            public_url.rstrip("/") != root
            or not url_safe(token)
            or (name is not None and (len(name) > 1000 or "%%" in name))
            or unsafe(f"{email}{name or ''}{token}")
        ):  # rare: the general path (and the reason when refused)
            p = personalization(message, r, nonce)
            if not _refuse(r, p, refused):
                yield json.dumps(p)
            continue
        display = (name or "").strip() or NAME_FALLBACK
        tail = f"&e={mark}" if mark else ""
        unsubscribe = unsubscribe_at + token + tail
        yield fmt % (
            _json(email) if not name else f'{_json(email)}, "name": {_json(name)}',
            _json(display),
            _json(escape(display, quote=True)),
            _json(unsubscribe),
            _json(preferences_at + token + tail),
            _json(f"<{unsubscribe}>, <{mailto}{token}>"),
            _json(f"{id_head}{opaque_id(sid)}{id_tail}"),
        )


def _unsafe(p: dict[str, Any]) -> str | None:
    """A personalization whose header values (or `to`, which becomes one) carry a
    control character: refused with the reason, never sent."""
    to = p["to"][0]
    try:
        check_header("To", f"{to.get('name', '')} {to['email']}")
        for name, value in p["headers"].items():
            check_header(name, value)
    except HeaderError as exc:
        return str(exc)
    return None


def _envelope(prepared: dict[str, Any], batch_key: str) -> dict[str, Any]:
    body = dict(prepared["body"])
    body["custom_args"] = {**body["custom_args"], "batch": batch_key}
    return body


_json = encode_basestring_ascii  # json.dumps of one str, as json.dumps writes it
_KEYS = [key.replace("%", "%%") for key in (NAME, HTML_NAME, UNSUBSCRIBE_URL, PREFERENCES_URL)]
_PERSONALIZATION = (  # a %-format: the placeholders' own % are doubled
    '{"to": [{"email": %s}], "substitutions": {'
    + ", ".join(f'"{key}": %s' for key in _KEYS)
    + '}, "headers": {"List-Unsubscribe": %s, "Message-ID": %s}}'
)


def _values(message: Message, recipient: Recipient, nonce: str) -> tuple[str, str, str, str, str]:
    """(name, unsubscribe URL, preferences URL, List-Unsubscribe, Message-ID), each URL
    built once. SendGrid's substitution of one key inside another's value is undocumented:
    a name that spells a key must not be able to pull in a URL (neutralise)."""
    unsubscribe = recipient.unsubscribe_url
    name = neutralise((recipient.name or "").strip() or NAME_FALLBACK)
    token = recipient.token
    if not URL_SAFE.fullmatch(token):  # as list_unsubscribe does
        return (
            name,
            unsubscribe,
            recipient.preferences_url,
            list_unsubscribe(message, recipient),
            message_id(message, recipient, nonce),
        )
    return (
        name,
        unsubscribe,
        recipient.preferences_url,
        f"<{unsubscribe}>, <{message.mailto_prefix}{token}>",
        message_id(message, recipient, nonce),
    )


def _refuse(recipient: Recipient, p: dict[str, Any], refused: dict[int, str]) -> bool:
    if len(recipient.name or "") > 1000 and _too_big(p["substitutions"]):
        refused[recipient.subscriber_id] = "substitutions exceed 10,000 bytes"
        return True
    unsafe = _unsafe(p)
    if unsafe:
        refused[recipient.subscriber_id] = unsafe
        return True
    return False


def _too_big(substitutions: dict[str, str]) -> bool:
    """Only a very long name can reach the limit: URLs and keys are short and bounded."""
    size = sum(len(k.encode()) + len(v.encode()) for k, v in substitutions.items())
    return size > SUBSTITUTIONS_LIMIT
