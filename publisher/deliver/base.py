"""The delivery seam: a message, its recipients, and the protocol every backend implements.

A backend receives a fully rendered `Message` (subject, HTML and text that are final except
for the per-recipient placeholders of `publisher.render.PLACEHOLDERS`) and `Recipient`s with
their values; it never sees a template or the store.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar
from urllib.parse import quote, urlsplit

from publisher.errors import DeliveryError
from publisher.render import personalise, subscriber_url
from publisher.support.marks import mark_maker

if TYPE_CHECKING:  # the capability's protocol lives with the code that uses it
    from publisher.deliver.exactly_once import Cancellation

ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Message:
    edition_id: int
    campaign: str
    number: int
    title: str  # the campaign's title, for List-Id
    subject: str
    html: str
    text: str
    from_email: str
    from_name: str | None
    reply_to: str | None
    public_url: str  # organisation.public_url: unsubscribe/preferences pages live there
    unsubscribe_mailto: str
    date: datetime  # the Date header (the send's `now`)
    send_at: datetime | None = None  # SendGrid only: deliver later (at most 72 h ahead)
    link_key: str = ""  # the store's link key: links say which edition they came from

    @cached_property
    def mark(self) -> Callable[[int], str]:
        """A recipient's edition mark, by subscriber id (empty without a link key)."""
        return mark_maker(self.link_key, self.edition_id)

    @cached_property
    def domain(self) -> str:
        return urlsplit(self.public_url).hostname or "localhost"

    @cached_property
    def mailto_prefix(self) -> str:
        return f"mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20"

    @cached_property
    def list_id(self) -> str:
        """RFC 2919: a display phrase and a dotted id under a domain we control."""
        title = self.title.replace('"', "'")
        return f'"{title}" <{self.campaign}.{self.domain}>'

    @cached_property
    def date_header(self) -> str:
        return format_datetime(self.date)


class Recipient(NamedTuple):  # a tuple: a batch creates a thousand of them
    subscriber_id: int
    email: str
    name: str | None
    token: str
    public_url: str
    mark: str = ""  # which edition the links came from (publisher.support.marks)

    @property
    def unsubscribe_url(self) -> str:
        return subscriber_url(self.public_url, "unsubscribe", self.token, self.mark)

    @property
    def preferences_url(self) -> str:
        return subscriber_url(self.public_url, "preferences", self.token, self.mark)

    def personalise(self, document: str) -> str:
        return personalise(
            document,
            name=self.name,
            unsubscribe_url=self.unsubscribe_url,
            preferences_url=self.preferences_url,
        )


_ID_KEY = secrets.token_bytes(16)  # per process: the stand-ins below are never readable


def opaque_id(subscriber_id: int) -> str:
    """A subscriber's stand-in in Message-IDs (unique within a batch, as the id is): the
    sequential id itself would tell every reader how many subscribers there are."""
    return hashlib.blake2b(str(subscriber_id).encode(), key=_ID_KEY, digest_size=8).hexdigest()


def message_id(message: Message, recipient: Recipient, nonce: str) -> str:
    return f"<{message.edition_id}.{opaque_id(recipient.subscriber_id)}.{nonce}@{message.domain}>"


def list_unsubscribe(message: Message, recipient: Recipient) -> str:
    """The https one-click URL first (RFC 8058), then a mailto fallback."""
    token = recipient.token
    if not URL_SAFE.fullmatch(token):  # our tokens always are (secrets.token_urlsafe)
        token = quote(token, safe="")
    return f"<{recipient.unsubscribe_url}>, <{message.mailto_prefix}{token}>"


def list_headers(message: Message, recipient: Recipient, nonce: str) -> dict[str, str]:
    """The per-recipient headers every backend writes, exactly as they must arrive."""
    return {
        "Message-ID": message_id(message, recipient, nonce),
        "List-Unsubscribe": list_unsubscribe(message, recipient),
        "List-Unsubscribe-Post": ONE_CLICK,
        "List-Id": message.list_id,
        "Date": message.date_header,
    }


# --- outcomes: a backend raises these for a whole batch ----------------------------------


class TransientError(DeliveryError):
    """The provider definitely did not accept the batch and it is worth retrying (429, 5xx,
    connection refused before the request was written); `retry_after` in seconds if known.
    Never raise it for an error that may have come after the provider took the request."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """The provider refused the batch (400/401/403): the batch fails with this text."""


class TooLargeError(DeliveryError):
    """The request was too large (413): split the batch and send the halves."""


class UncertainError(DeliveryError):
    """The request may have been accepted (it was written, then the answer timed out or the
    connection dropped): never resent automatically, see publisher.store.ledger.

    `uncertain`: the subscriber ids in doubt (default: the whole batch); `failed`: others of
    the batch refused one by one (SMTP, where one message of a batch can be in doubt)."""

    def __init__(
        self,
        message: str,
        *,
        uncertain: Sequence[int] | None = None,
        failed: dict[int, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.uncertain = list(uncertain) if uncertain is not None else None
        self.failed = dict(failed or {})


class Hooks(Protocol):
    """What a backend tells the ledger while it sends one attempt of a batch (the
    dispatcher's side of the seam, called from the sending thread)."""

    def writing(self, part: Sequence[Recipient]) -> None:
        """Right before the bytes for `part` are written: they become `requested`, the only
        rows that can be in doubt after a crash."""

    def accepted(self, part: Sequence[Recipient]) -> None:
        """`part` was accepted (SMTP: one message at a time), so a crash right after leaves
        at most the message being written in doubt."""


class NoHooks:
    """For sends outside the ledger (test sends, benchmarks)."""

    def writing(self, part: Sequence[Recipient]) -> None:
        pass

    def accepted(self, part: Sequence[Recipient]) -> None:
        pass


@dataclass(frozen=True)
class Scheduled:
    """Exactly-once mode: the provider's batch id and the time it delivers the batch; until
    then the batch can be cancelled (see publisher.deliver.exactly_once)."""

    batch_id: str
    send_at: datetime


@dataclass(frozen=True)
class Settings:
    """How a backend wants its sends shaped: numbers the dispatcher reads, no behaviour."""

    batch_size: int  # recipients per batch
    workers: int  # concurrent sends
    idempotent: bool = False  # sending a message twice delivers it once (resume resends)
    build_ahead: int = 3  # batches per worker claimed and encoded ahead of the sending threads
    send_at_limit: timedelta | None = None  # honours Message.send_at this far ahead; None: never


P = TypeVar("P")  # what `prepare` builds once per edition (a MIME skeleton, a request body)
E = TypeVar("E")  # what `encode` builds per batch ahead of sending (None: nothing)


class DeliveryBackend(Protocol[P, E]):
    """One class per backend, registered by name in `publisher.deliver.BACKENDS`.

    Everything the dispatcher and the service call is declared here. The one optional
    capability, exactly-once mode, is an object of its own (`cancellation`), so no caller
    compares names or probes for methods."""

    @property
    def name(self) -> str:
        """The backend's name in the configuration ('file', 'smtp', 'sendgrid')."""

    @property
    def settings(self) -> Settings:
        """Batch size, workers, build-ahead, idempotence, how far ahead it schedules."""

    @property
    def cancellation(self) -> Cancellation | None:
        """Exactly-once mode (publisher.deliver.exactly_once): batch ids, delivery times
        and cancels at the provider; None for a backend that cannot cancel a batch."""

    def prepare(self, message: Message) -> P:
        """Per-edition work done once (a MIME skeleton, a request body), reused per batch."""

    def encode(self, prepared: P, recipients: Sequence[Recipient], batch_key: str) -> E:
        """The batch's request built ahead, off the sending threads (SendGrid: the JSON
        body), or None when there is nothing to build ahead. Every attempt reuses it."""

    def send(
        self,
        prepared: P,
        encoded: E | None,
        recipients: Sequence[Recipient],
        hooks: Hooks,
        scheduled: Scheduled | None = None,
    ) -> dict[int, str]:
        """Send one batch (`encoded`: None when it was not built ahead); return
        {subscriber_id: error} for recipients refused one by one (an error starting with
        `BOUNCED` is a permanent refusal of the address). Raise TransientError/
        PermanentError/TooLargeError/UncertainError for the batch. Calls `hooks.writing`
        right before writing any bytes. `scheduled`: exactly-once mode, the batch id and
        delivery time the request carries."""

    def preview(self, prepared: P, recipient: Recipient) -> str:
        """What one recipient's message looks like on the wire (for --dry-run)."""

    def destination(self, message: Message) -> str:
        """Where messages go, for the summary ('outbox/weekly/3', 'smtp.example.org:587')."""

    def close(self) -> None:
        """Release connections."""


BOUNCED = "BOUNCED: "  # prefix of a per-recipient error that is a permanent refusal


def check_send_at(backend: DeliveryBackend[Any, Any], now: datetime, send_at: datetime) -> None:
    """Raise DeliveryError when the backend would refuse this delivery time (--send-at)."""
    limit = backend.settings.send_at_limit
    if limit is None:
        raise DeliveryError(f"--send-at needs a backend that schedules sends, not {backend.name}")
    if not now <= send_at <= now + limit:
        hours = limit / timedelta(hours=1)
        raise DeliveryError(f"send_at must be in the future and at most {hours:g} hours ahead")


def send_batch(
    backend: DeliveryBackend[P, E], prepared: P, recipients: Sequence[Recipient], batch_key: str
) -> dict[int, str]:
    """One batch outside the ledger (test sends, benchmarks)."""
    encoded = backend.encode(prepared, recipients, batch_key)
    return backend.send(prepared, encoded, recipients, NoHooks())


# --- header values: the last guard against header injection -------------------------------

UNSAFE_HEADER = re.compile(r"[\x00-\x1f\x7f]")


def check_header(name: str, value: str) -> None:
    """A header value with CR, LF or another control character is never written: it could
    add headers or a body of its own (names and values are validated at import and config
    too; this is the last guard)."""
    if UNSAFE_HEADER.search(value):
        raise HeaderError(f"{name} header contains a control character (refused, not sent)")


class HeaderError(DeliveryError):
    """A header value that must not be written (control characters)."""
