"""`smtp` backend: STARTTLS or implicit TLS, optional auth, connections reused, rate-limited.

Credentials only from SMTP_USERNAME and SMTP_PASSWORD (environment). Each worker thread keeps
one connection open for all its messages; a recipient the server refuses is recorded as
failed and the others go on. A connection lost after the end of DATA was written (before the
server's answer) may have delivered the message: that recipient is uncertain, never resent.
"""

from __future__ import annotations

import os
import smtplib
import socket
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
    PermanentError,
    Recipient,
    Scheduled,
    Settings,
    TransientError,
    UncertainError,
)
from publisher.deliver.mime import Skeleton, build_message, prepare_skeleton

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


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


class _KnowsWhenDataWasSent(smtplib.SMTP):
    """smtplib.SMTP noting when a message and its final '.' were written (`data_sent`): an
    error after that point may come after the server queued the message.

    `data()` is smtplib's (DATA, the server's 354, the dot-stuffed message with its final
    '.' in one `send()`, the reply) with two changes: `data_sent` is set once that send
    returned, and the dot-stuffing is a bytes replace, not smtplib's multi-line regex
    (about 160 against 25 µs for an 18 KB message, on the path the server waits for)."""

    data_sent = False
    # called once the message is written, before its reply is read: the server reads the
    # message meanwhile (SmtpBackend builds the next one then, on the other core)
    while_waiting: Callable[[], None] | None = None

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        if isinstance(msg, str):  # as smtplib: any line end becomes CRLF
            msg = msg.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
        data = msg.encode("ascii") if isinstance(msg, str) else bytes(msg)
        data = data.replace(b"\n.", b"\n..")  # RFC 5321 4.5.2: a line's leading '.' doubled
        if data.startswith(b"."):
            data = b"." + data
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        self.send(data + b".\r\n")
        self.data_sent = True
        if self.while_waiting is not None:
            self.while_waiting()
        return self.getreply()


class _SMTP(_KnowsWhenDataWasSent):
    pass


class _SMTP_SSL(_KnowsWhenDataWasSent, smtplib.SMTP_SSL):  # noqa: N801
    pass


class _Ahead:
    """The recipients' messages, each built while the server reads the one before (instead
    of after its reply: the two ends take turns otherwise, bench/README.md "SMTP at 18 KB").
    What building one raises is raised when that message is due, as if built then."""

    def __init__(self, prepared: Skeleton, recipients: Sequence[Recipient]) -> None:
        self.prepared, self.recipients = prepared, recipients
        self.current = 0
        self._built: dict[int, bytes | Exception] = {}

    def message(self, index: int) -> bytes:
        self.current = index
        built = self._built.pop(index, None)
        if built is None:
            built = self._build(index)
        if isinstance(built, Exception):
            raise built
        return built

    def build_next(self) -> None:
        """Never raises: it runs between writing a message and reading the server's reply."""
        following = self.current + 1
        if following < len(self.recipients) and following not in self._built:
            self._built[following] = self._build(following)

    def _build(self, index: int) -> bytes | Exception:
        try:
            return build_message(self.prepared, self.recipients[index])
        except Exception as exc:  # noqa: BLE001 - raised by message() when it is due
            return exc


class _Ambiguous(Exception):  # noqa: N818 - internal: the message may have been accepted
    pass


class SmtpBackend:
    name = "smtp"
    cancellation = None  # a message written cannot be called back

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
        tcp_nodelay: bool = True,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.tcp_nodelay = tcp_nodelay  # False only for the benchmark's baseline
        self.timeout = timeout
        self.settings = Settings(batch_size=batch_size, workers=workers)
        self._credentials = (username, password or "") if username else None
        self._context = ssl.create_default_context(cafile=ca_file)
        self._limiter = RateLimiter(rate_limit)
        self._local = threading.local()
        self._connections: list[_KnowsWhenDataWasSent] = []
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

    def _connect(self) -> _KnowsWhenDataWasSent:
        if self.security == "tls":
            smtp: _KnowsWhenDataWasSent = _SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._context
            )
            self._no_delay(smtp)
        else:
            smtp = _SMTP(self.host, self.port, timeout=self.timeout)
            self._no_delay(smtp)
            if self.security == "starttls":
                smtp.starttls(context=self._context)
        if self._credentials:
            smtp.login(*self._credentials)
        with self._lock:
            self._connections.append(smtp)
        return smtp

    def _no_delay(self, smtp: smtplib.SMTP) -> None:
        """TCP_NODELAY: a message over TLS larger than one 16 KiB record is written as two
        or more segments, and without it the last one waits for the ACK of the first, which
        the server delays (~40 ms a message: 3-8x slower at 18 KB, bench/README.md "SMTP")."""
        if self.tcp_nodelay and smtp.sock is not None:
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _connection(self) -> _KnowsWhenDataWasSent:
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

    def encode(self, prepared: Skeleton, recipients: Sequence[Recipient], batch_key: str) -> None:
        return None  # each message is built as it is sent

    def send(
        self,
        prepared: Skeleton,
        encoded: None,
        recipients: Sequence[Recipient],
        hooks: Hooks,
        scheduled: Scheduled | None = None,
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
        ahead = _Ahead(prepared, recipients)
        for index, recipient in enumerate(recipients):
            self._limiter.acquire()
            try:
                error = self._send_one(ahead, index, hooks)
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

    def _send_one(self, ahead: _Ahead, index: int, hooks: Hooks, attempts: int = 3) -> str | None:
        """None when accepted, the server's text when it refused this recipient (prefixed
        BOUNCED when it refused the address for good: 5xx at RCPT)."""
        prepared, recipient = ahead.prepared, ahead.recipients[index]
        try:
            data = ahead.message(index)
        except HeaderError as exc:
            return str(exc)
        for attempt in range(attempts):
            smtp = None
            try:
                smtp = self._connection()
                options = self._utf8_options(smtp, recipient)
                if options is None:
                    return "the address is not ASCII and the server does not offer SMTPUTF8"
                smtp.data_sent = False
                hooks.writing([recipient])
                smtp.while_waiting = ahead.build_next
                try:
                    smtp.sendmail(
                        prepared.message.from_email, [recipient.email], data, mail_options=options
                    )
                finally:
                    smtp.while_waiting = None
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
                if smtp is not None and smtp.data_sent:
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
