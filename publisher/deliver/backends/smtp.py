"""`smtp` backend: STARTTLS or implicit TLS, optional auth, connections reused, rate-limited.

Credentials only from SMTP_USERNAME and SMTP_PASSWORD (environment). Each worker thread keeps
one connection open for all its messages; a recipient the server refuses is recorded as
failed and the others go on. A connection lost after the end of DATA was written (before the
server's answer) may have delivered the message: that recipient is uncertain, never resent.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from publisher.config import PublisherConfig
from publisher.deliver.base import (
    BOUNCED,
    HeaderError,
    Hooks,
    Message,
    NotCancellable,
    PermanentError,
    Recipient,
    TransientError,
    UncertainError,
)
from publisher.deliver.mime import Skeleton, build_message, prepare_skeleton


class RateLimiter:
    """At most `rate` acquisitions per second across threads (evenly spaced)."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


# The mixin's methods are smtplib.SMTP's (it is only ever mixed into SMTP classes).
if TYPE_CHECKING:
    _SMTPBase = smtplib.SMTP
else:
    _SMTPBase = object


class _KnowsWhenDataWasSent(_SMTPBase):
    """smtplib.SMTP.data(), noting when the message and its final '.' were written: an error
    after that point may come after the server queued the message."""

    data_sent = False

    def data(self, msg):
        self.putcmd("data")
        code, repl = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, repl)
        quoted = smtplib._quote_periods(msg)  # type: ignore[attr-defined]  # private, untyped
        if quoted[-2:] != b"\r\n":
            quoted += b"\r\n"
        self.send(quoted + b".\r\n")
        self.data_sent = True
        return self.getreply()


class _SMTP(_KnowsWhenDataWasSent, smtplib.SMTP):
    pass


class _SMTP_SSL(_KnowsWhenDataWasSent, smtplib.SMTP_SSL):  # noqa: N801
    pass


class _Ambiguous(Exception):  # noqa: N818 - internal: the message may have been accepted
    pass


class SmtpBackend(NotCancellable):
    name = "smtp"
    idempotent = False

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        ca_file: str | None = None,
        timeout: float = 30.0,
        rate_limit: float | None = None,
        workers: int = 2,
        batch_size: int = 20,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.timeout = timeout
        self.workers, self.batch_size = workers, batch_size
        self._credentials = (username, password or "") if username else None
        self._context = ssl.create_default_context(cafile=ca_file)
        self._limiter = RateLimiter(rate_limit)
        self._local = threading.local()
        self._connections: list[smtplib.SMTP] = []
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: PublisherConfig) -> SmtpBackend:
        o = config.delivery.smtp
        ca_file = str(config.resolve(o.ca_file)) if o.ca_file else None
        return cls(
            o.host,
            o.port,
            security=o.security,
            ca_file=ca_file,
            timeout=o.timeout,
            rate_limit=o.rate_limit,
            workers=o.workers,
            batch_size=o.batch_size,
            username=os.environ.get("SMTP_USERNAME") or None,
            password=os.environ.get("SMTP_PASSWORD") or None,
        )

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            smtp: smtplib.SMTP = _SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._context
            )
        else:
            smtp = _SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                smtp.starttls(context=self._context)
        if self._credentials:
            smtp.login(*self._credentials)
        with self._lock:
            self._connections.append(smtp)
        return smtp

    def _connection(self) -> smtplib.SMTP:
        smtp = getattr(self._local, "smtp", None)
        if smtp is None:
            smtp = self._local.smtp = self._connect()
        return smtp

    def _drop_connection(self) -> None:
        smtp = getattr(self._local, "smtp", None)
        self._local.smtp = None
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass

    def prepare(self, message: Message) -> Skeleton:
        return prepare_skeleton(message)

    def send(
        self,
        prepared: Skeleton,
        encoded: None,
        recipients: Sequence[Recipient],
        hooks: Hooks,
        scheduled: object = None,
    ) -> dict[int, str]:
        """One message per recipient on this thread's connection. A dropped connection is
        reopened and the message tried again, unless it was lost after the end of DATA: that
        recipient is uncertain (UncertainError once the batch is done) and the others go on.
        If the server stays unreachable, the batch is retried whole only when nothing in it
        was accepted (or is in doubt) yet, otherwise the rest is recorded as failed and
        retried by `publisher send --resume`. Each message is `requested` right before it is
        written and recorded as accepted right after the server's 250 (`hooks`), so a crash
        leaves at most one message per connection in doubt."""
        failed: dict[int, str] = {}
        uncertain: list[int] = []
        problem = ""
        for index, recipient in enumerate(recipients):
            self._limiter.acquire()
            try:
                error = self._send_one(prepared, recipient, hooks)
            except _Ambiguous as exc:
                uncertain.append(recipient.subscriber_id)
                problem = str(exc)
                continue
            except (TransientError, PermanentError) as exc:
                if index == 0:
                    raise
                for rest in recipients[index:]:
                    failed[rest.subscriber_id] = str(exc)
                break
            if error:
                failed[recipient.subscriber_id] = error
        if uncertain:
            raise UncertainError(problem, uncertain=uncertain, failed=failed)
        return failed

    def _send_one(
        self, prepared: Skeleton, recipient: Recipient, hooks: Hooks, attempts: int = 3
    ) -> str | None:
        """None when accepted, the server's text when it refused this recipient (prefixed
        BOUNCED when it refused the address for good: 5xx at RCPT)."""
        try:
            data = build_message(prepared, recipient)
        except HeaderError as exc:
            return str(exc)
        for attempt in range(attempts):
            smtp = None
            try:
                smtp = self._connection()
                options = self._utf8_options(smtp, recipient)
                if options is None:
                    return "the address is not ASCII and the server does not offer SMTPUTF8"
                smtp.data_sent = False  # type: ignore[attr-defined]
                hooks.writing([recipient])
                smtp.sendmail(
                    prepared.message.from_email, [recipient.email], data, mail_options=options
                )
                hooks.accepted([recipient])
                return None
            except smtplib.SMTPRecipientsRefused as exc:
                code, reason = exc.recipients.get(recipient.email, (550, b"refused"))
                text = f"{code} {_text(reason)}"
                return BOUNCED + text if code >= 500 else text
            except ssl.SSLCertVerificationError as exc:
                self._drop_connection()
                raise PermanentError(
                    f"the TLS certificate of {self.host}:{self.port} could not be verified "
                    f"({exc.verify_message}); if the server uses a private CA, set "
                    "delivery.smtp.ca_file to that CA's certificate (PEM)"
                ) from None
            except smtplib.SMTPAuthenticationError as exc:
                self._drop_connection()
                raise PermanentError(f"SMTP authentication failed ({exc.smtp_code})") from None
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code >= 500:
                    return f"{exc.smtp_code} {_text(exc.smtp_error)}"
                problem = f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}"
            except (smtplib.SMTPException, OSError) as exc:
                problem = f"SMTP connection to {self.host}:{self.port}: {exc}"
                if getattr(smtp, "data_sent", False):
                    self._drop_connection()
                    raise _Ambiguous(
                        f"{problem} (after the message was sent: it may have been accepted)"
                    ) from None
            self._drop_connection()
            time.sleep(0.1 * (attempt + 1))
        raise TransientError(problem)

    @staticmethod
    def _utf8_options(smtp: smtplib.SMTP, recipient: Recipient) -> list[str] | None:
        """[] for an ASCII address; SMTPUTF8 when the address needs it and the server
        offers it; None when it cannot be sent to this server."""
        if recipient.email.isascii():
            return []
        smtp.ehlo_or_helo_if_needed()
        return ["SMTPUTF8"] if smtp.has_extn("smtputf8") else None

    def preview(self, prepared: Skeleton, recipient: Recipient) -> str:
        return build_message(prepared, recipient).decode("utf-8")

    def destination(self, message: Message) -> str:
        return f"SMTP {self.host}:{self.port}"

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for smtp in connections:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
