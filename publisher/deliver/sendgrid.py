"""`sendgrid` backend: v3 Mail Send, up to 1,000 personalizations per request.

One request carries the edition once (`content`: text/plain then text/html, with the
placeholders left in) and one personalization per recipient: its `to`, the placeholder
values as `substitutions`, its own List-Unsubscribe and Message-ID headers. Bodies are plain
dicts (the helper classes cost ~4x more per recipient), serialised once per batch by
`encode` (the dispatcher does it ahead, off the sending threads; a retry sends the same text)
and sent with the official client as `application/json; charset=utf-8` text (the client then
posts it as it is instead of serialising it again).
The API key comes only from SENDGRID_API_KEY and is never logged or put in an error.
"""

from __future__ import annotations

import html
import json
import logging
import os
import secrets
import urllib.error
from collections.abc import Iterator, Sequence
from http.client import HTTPException
from typing import Any, NamedTuple

import python_http_client.exceptions as http_errors
import sendgrid as sendgrid_library

from publisher.config import PublisherConfig
from publisher.deliver.base import (
    ONE_CLICK,
    Message,
    PermanentError,
    Recipient,
    TooLargeError,
    TransientError,
    UncertainError,
    list_unsubscribe,
    message_id,
)
from publisher.errors import DeliveryError
from publisher.render.personalise import NAME, PREFERENCES_URL, UNSUBSCRIBE_URL, neutralise

# The library logs request headers (the Authorization header!) and bodies at DEBUG.
logging.getLogger("python_http_client").setLevel(logging.WARNING)

API_KEY_ENV = "SENDGRID_API_KEY"
HTML_NAME = "%%NAME_HTML%%"  # the name HTML-escaped, as personalise() does for HTML
SUBSTITUTIONS_LIMIT = 10_000  # bytes per personalization (SendGrid's documented limit)
# Any Content-Type but exactly "application/json" makes python_http_client send a str body
# as it is (UTF-8) instead of json.dumps-ing it: our body is already JSON (ASCII).
JSON_TEXT = {"Content-Type": "application/json; charset=utf-8"}


class Encoded(NamedTuple):
    """A batch's request, serialised: the JSON text (None: nobody left to send to) and the
    recipients refused before sending (oversized values)."""

    body: str | None
    refused: dict[int, str]


class SendGridBackend:
    name = "sendgrid"
    idempotent = False

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "https://api.sendgrid.com",
        workers: int = 4,
        batch_size: int = 1000,
        timeout: float = 30.0,
        asm_group_id: int | None = None,
        sandbox_mode: bool = False,
    ) -> None:
        self._api_key = api_key
        self.host = host
        self.workers = workers
        self.batch_size = batch_size
        self.timeout = timeout
        self.asm_group_id = asm_group_id
        self.sandbox_mode = sandbox_mode
        self._client = sendgrid_library.SendGridAPIClient(api_key=api_key, host=host)

    def __repr__(self) -> str:  # never show the key
        return f"SendGridBackend(host={self.host!r}, workers={self.workers})"

    @classmethod
    def from_config(cls, config: PublisherConfig) -> SendGridBackend:
        api_key = os.environ.get(API_KEY_ENV, "").strip()
        if not api_key:
            raise DeliveryError(f"the sendgrid backend needs {API_KEY_ENV} in the environment")
        o = config.delivery.sendgrid
        return cls(
            api_key,
            host=o.host,
            workers=o.workers,
            batch_size=o.batch_size,
            timeout=o.timeout,
            asm_group_id=o.asm_group_id,
            sandbox_mode=o.sandbox_mode,
        )

    # --- request bodies -------------------------------------------------------------------

    def prepare(self, message: Message) -> dict[str, Any]:
        """Everything but `personalizations` and the batch id, built once per edition."""
        sender: dict[str, str] = {"email": message.from_email}
        if message.from_name:
            sender["name"] = message.from_name
        body: dict[str, Any] = {
            "from": sender,
            "subject": message.subject,
            "content": [
                {"type": "text/plain", "value": message.text},
                {"type": "text/html", "value": message.html.replace(NAME, HTML_NAME)},
            ],
            "headers": {
                "List-Unsubscribe-Post": ONE_CLICK,
                "List-Id": message.list_id,
                "Date": message.date_header,
            },
            "custom_args": {"edition_id": str(message.edition_id), "campaign": message.campaign},
            "categories": [message.campaign[:255]],
        }
        if message.reply_to:
            body["reply_to"] = {"email": message.reply_to}
        if self.asm_group_id is not None:
            body["asm"] = {"group_id": self.asm_group_id}
        if self.sandbox_mode:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        if message.send_at is not None:
            body["send_at"] = int(message.send_at.timestamp())
        return {"message": message, "body": body}

    @staticmethod
    def personalization(message: Message, recipient: Recipient, nonce: str) -> dict[str, Any]:
        to = {"email": recipient.email}
        if recipient.name:
            to["name"] = recipient.name
        # SendGrid's substitution of one key inside another's value is undocumented: a name
        # that spells a key must not be able to pull in a URL.
        name = neutralise(recipient.personalise(NAME))
        return {
            "to": [to],
            "substitutions": {
                NAME: name,
                HTML_NAME: html.escape(name, quote=True),
                UNSUBSCRIBE_URL: recipient.unsubscribe_url,
                PREFERENCES_URL: recipient.preferences_url,
            },
            "headers": {
                "List-Unsubscribe": list_unsubscribe(message, recipient),
                "Message-ID": message_id(message, recipient, nonce),
            },
        }

    def build_body(
        self, prepared: dict[str, Any], recipients: Sequence[Recipient], batch_key: str
    ) -> tuple[dict[str, Any], dict[int, str]]:
        """The request body and the recipients refused before sending (oversized values)."""
        refused: dict[int, str] = {}
        body = self._envelope(prepared, batch_key)
        body["personalizations"] = list(self._accepted(prepared, recipients, refused))
        return body, refused

    def _accepted(
        self, prepared: dict[str, Any], recipients: Sequence[Recipient], refused: dict[int, str]
    ) -> Iterator[dict[str, Any]]:
        """Each recipient's personalization, unless refused (recorded in `refused`)."""
        message: Message = prepared["message"]
        nonce = secrets.token_hex(4)
        for recipient in recipients:
            p = self.personalization(message, recipient, nonce)
            if not _refuse(recipient, p, refused):
                yield p

    @staticmethod
    def _envelope(prepared: dict[str, Any], batch_key: str) -> dict[str, Any]:
        body = dict(prepared["body"])
        body["custom_args"] = {**body["custom_args"], "batch": batch_key}
        return body

    def encode(
        self, prepared: dict[str, Any], recipients: Sequence[Recipient], batch_key: str
    ) -> Encoded:
        """`build_body` as JSON text (the same text `json.dumps` makes of it), built once: the
        dispatcher calls this ahead of the sending threads, and every attempt of the batch
        sends the same text. Each personalization becomes text at once: a thousand of them
        alive together would be promoted to the collector's oldest generation and bring on
        full collections (a pause of every thread)."""
        refused: dict[int, str] = {}
        parts = [json.dumps(p) for p in self._accepted(prepared, recipients, refused)]
        if not parts:
            return Encoded(None, refused)
        head = json.dumps(self._envelope(prepared, batch_key))  # "{...}": personalizations last
        return Encoded(f'{head[:-1]}, "personalizations": [{", ".join(parts)}]}}', refused)

    # --- sending --------------------------------------------------------------------------

    def send_encoded(self, encoded: Encoded) -> dict[int, str]:
        if encoded.body is not None:
            self._post(encoded.body)
        return dict(encoded.refused)

    def send_batch(
        self, prepared: dict[str, Any], recipients: Sequence[Recipient], *, batch_key: str
    ) -> dict[int, str]:
        return self.send_encoded(self.encode(prepared, recipients, batch_key))

    def _post(self, body: str) -> None:
        try:
            self._client.client.mail.send.post(
                request_body=body, request_headers=JSON_TEXT, timeout=self.timeout
            )
        except http_errors.HTTPError as exc:
            raise self._http_error(exc) from None
        except urllib.error.URLError as exc:
            # urllib wraps only errors raised while connecting and writing the request: the
            # provider never had the whole request (Content-Length), so it is safe to retry.
            raise TransientError(f"cannot reach {self.host}: {self._redact(exc.reason)}") from None
        except TimeoutError:  # the request went out; the answer did not come
            raise UncertainError(
                f"no answer from {self.host} within {self.timeout:g}s; it may have been accepted"
            ) from None
        except (HTTPException, OSError) as exc:
            # Raised by getresponse(), after the whole request was written (RemoteDisconnected,
            # ConnectionResetError, IncompleteRead...): it may have been accepted. Never retried.
            raise UncertainError(
                f"connection to {self.host} dropped after the request was sent "
                f"({type(exc).__name__}); it may have been accepted"
            ) from None

    def _http_error(self, exc: http_errors.HTTPError) -> DeliveryError:
        status = int(exc.status_code)
        text = f"SendGrid answered {status}: {self._error_text(exc.body)}"
        if status == 413:
            return TooLargeError(text)
        if status == 429 or status >= 500:
            return TransientError(text, retry_after=_retry_after(exc.headers))
        return PermanentError(text)

    def _error_text(self, raw: bytes | str | None) -> str:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        try:
            errors = json.loads(raw or "").get("errors") or []
            text = "; ".join(
                (f"{e.get('field')}: " if e.get("field") else "") + str(e.get("message"))
                for e in errors
            )
        except (ValueError, AttributeError):
            text = (raw or "").strip()[:500]
        return self._redact(text or "no details")

    def _redact(self, text: object) -> str:
        return str(text).replace(self._api_key, "[redacted]") if self._api_key else str(text)

    def preview(self, prepared: dict[str, Any], recipient: Recipient) -> str:
        body, _ = self.build_body(prepared, [recipient], "preview")
        return json.dumps(body, indent=2, ensure_ascii=False)

    def destination(self, message: Message) -> str:
        return f"SendGrid ({self.host})"

    def close(self) -> None:
        pass


def _refuse(recipient: Recipient, p: dict[str, Any], refused: dict[int, str]) -> bool:
    if len(recipient.name or "") > 1000 and _too_big(p["substitutions"]):
        refused[recipient.subscriber_id] = "substitutions exceed 10,000 bytes"
        return True
    return False


def _too_big(substitutions: dict[str, str]) -> bool:
    """Only a very long name can reach the limit: URLs and keys are short and bounded."""
    size = sum(len(k.encode()) + len(v.encode()) for k, v in substitutions.items())
    return size > SUBSTITUTIONS_LIMIT


def _retry_after(headers: Any) -> float | None:
    """Retry-After in seconds (SendGrid sends it with 429)."""
    if headers is None:
        return None
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
