"""`sendgrid` backend: v3 Mail Send, up to 1,000 personalizations per request.

One request carries the edition once (`content`: text/plain then text/html, with the
placeholders left in) and one personalization per recipient: its `to`, the placeholder
values as `substitutions`, its own List-Unsubscribe and Message-ID headers. Bodies are plain
dicts (the helper classes cost ~4x more per recipient), serialised once per batch by
`encode` (the dispatcher does it ahead, off the sending threads; a retry sends the same text)
and sent with the official client as `application/json; charset=utf-8` text (the client then
posts it as it is instead of serialising it again). The personalizations and batch bodies
are built in sendgrid_body.py.
The API key comes only from SENDGRID_API_KEY and is never logged or put in an error.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import TYPE_CHECKING, Any

import python_http_client.exceptions as http_errors
import sendgrid as sendgrid_library

from publisher.config import PublisherConfig
from publisher.deliver.backends import sendgrid_body
from publisher.deliver.backends.sendgrid_body import HTML_NAME, Encoded
from publisher.deliver.base import (
    ONE_CLICK,
    Hooks,
    Message,
    PermanentError,
    Recipient,
    Scheduled,
    Settings,
    TooLargeError,
    TransientError,
    UncertainError,
    check_header,
)
from publisher.errors import DeliveryError
from publisher.render.personalise import NAME
from publisher.support import killpoints

if TYPE_CHECKING:
    from publisher.deliver.exactly_once import Cancellation

# The library logs request headers (the Authorization header!) and bodies at DEBUG.
logging.getLogger("python_http_client").setLevel(logging.WARNING)

API_KEY_ENV = "SENDGRID_API_KEY"
# Any Content-Type but exactly "application/json" makes python_http_client send a str body
# as it is (UTF-8) instead of json.dumps-ing it: our body is already JSON (ASCII).
JSON_TEXT = {"Content-Type": "application/json; charset=utf-8"}
SEND_AT_LIMIT = timedelta(hours=72)  # SendGrid refuses send_at further ahead
CANCEL_MARGIN = timedelta(minutes=10)  # a cancel is guaranteed only up to 10 min before send_at
MIN_HOLD = timedelta(minutes=11)  # so a batch can always be cancelled for a while
MAX_CANCELLED = 10  # batches paused or cancelled at one time, per account


class SendGridBackend:
    """The delivery backend; in exactly-once mode also its own `cancellation` capability
    (new_batch, cancel, forget_cancel, hold: publisher.deliver.exactly_once)."""

    name = "sendgrid"
    cancel_margin = CANCEL_MARGIN
    max_cancelled = MAX_CANCELLED

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
        exactly_once: bool = False,
        hold: timedelta = timedelta(minutes=15),
    ) -> None:
        if exactly_once and hold < MIN_HOLD:
            raise DeliveryError("sendgrid.hold must be at least 11 minutes (cancels need 10)")
        self._api_key = api_key
        self.host = host
        self.settings = Settings(
            batch_size=batch_size, workers=workers, send_at_limit=SEND_AT_LIMIT
        )
        self.timeout = timeout
        self.asm_group_id = asm_group_id
        self.sandbox_mode = sandbox_mode
        self.cancellation: Cancellation | None = self if exactly_once else None
        self.hold = hold
        self._client = sendgrid_library.SendGridAPIClient(api_key=api_key, host=host)

    def __repr__(self) -> str:  # never show the key
        return f"SendGridBackend(host={self.host!r}, workers={self.settings.workers})"

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
            exactly_once=o.exactly_once,
            hold=timedelta(minutes=o.hold_minutes),
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
        for name, value in (("Subject", message.subject), ("From", message.from_name or "")):
            check_header(name, value)
        for name, value in body["headers"].items():
            check_header(name, value)
        return {"message": message, "body": body}

    # personalizations and batch bodies: publisher.deliver.backends.sendgrid_body
    personalization = staticmethod(sendgrid_body.personalization)

    def build_body(
        self, prepared: dict[str, Any], recipients: Sequence[Recipient], batch_key: str
    ) -> tuple[dict[str, Any], dict[int, str]]:
        """The request body and the recipients refused before sending (oversized values)."""
        return sendgrid_body.build_body(prepared, recipients, batch_key)

    def encode(
        self, prepared: dict[str, Any], recipients: Sequence[Recipient], batch_key: str
    ) -> Encoded:
        """The batch's body as JSON text, built once ahead of the sending threads."""
        return sendgrid_body.encode(prepared, recipients, batch_key)

    # --- sending --------------------------------------------------------------------------

    def send(
        self,
        prepared: dict[str, Any],
        encoded: Encoded | None,
        recipients: Sequence[Recipient],
        hooks: Hooks,
        scheduled: Scheduled | None = None,
    ) -> dict[int, str]:
        """POST the batch (built ahead by `encode`); in exactly-once mode with its batch id
        and send_at spliced in front (JSON members are unordered)."""
        if encoded is None:
            encoded = self.encode(prepared, recipients, "adhoc")
        if encoded.body is not None:
            body = encoded.body
            if scheduled is not None:
                at = int(scheduled.send_at.timestamp())
                body = (
                    f'{{"batch_id": {json.dumps(scheduled.batch_id)}, "send_at": {at}, {body[1:]}'
                )
            hooks.writing(recipients)
            self._call(
                lambda: self._client.client.mail.send.post(
                    request_body=body, request_headers=JSON_TEXT, timeout=self.timeout
                )
            )
            killpoints.reached("send.answered")
        return dict(encoded.refused)

    # --- exactly-once mode: batch ids and cancellations (Cancel Scheduled Sends API) -----

    def new_batch(self, send_at: datetime) -> Scheduled:
        """POST /v3/mail/batch: a new batch id (201)."""
        response = self._call(lambda: self._client.client.mail.batch.post(timeout=self.timeout))
        return Scheduled(json.loads(response.body)["batch_id"], send_at)

    def cancel(self, batch_id: str) -> None:
        """POST /v3/user/scheduled_sends with status cancel; a batch already cancelled
        (400 saying so) counts as done."""
        body = json.dumps({"batch_id": batch_id, "status": "cancel"})
        try:
            self._call(
                lambda: self._client.client.user.scheduled_sends.post(
                    request_body=body, request_headers=JSON_TEXT, timeout=self.timeout
                )
            )
        except PermanentError as exc:
            if "already" not in str(exc).lower():
                raise

    def forget_cancel(self, batch_id: str) -> None:
        """DELETE /v3/user/scheduled_sends/{batch_id} (204; 404: nothing to delete)."""
        try:
            self._call(
                lambda: self._client.client.user.scheduled_sends._(batch_id).delete(
                    timeout=self.timeout
                )
            )
        except PermanentError as exc:
            if "404" not in str(exc):
                raise

    def _call(self, request: Callable[[], Any]) -> Any:
        """One API call, its errors as delivery outcomes (see the module docstring)."""
        try:
            return request()
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


def _retry_after(headers: Any) -> float | None:
    """Retry-After in seconds (SendGrid sends it with 429)."""
    if headers is None:
        return None
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
