"""RFC 5322 messages for the file and SMTP backends, built from a per-edition skeleton.

Python's email package would build a MIME tree per recipient (slow) and folds or RFC 2047
encodes long header values such as List-Unsubscribe. So the static headers are encoded once
with the email package (they may be folded: that is lossless for them), and the
per-recipient headers are written verbatim: they are ASCII by construction (URLs with
URL-safe tokens) and kept under the 998-octet line limit, so they arrive exactly as written.
Bodies are quoted-printable (7-bit clean, safe for any relay) with CRLF line ends.
"""

from __future__ import annotations

import binascii
import secrets
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr

from publisher.deliver.base import Message, Recipient, check_header, list_headers
from publisher.render import PLACEHOLDERS

MAX_LINE = 998


@dataclass(frozen=True)
class Skeleton:
    message: Message
    static_headers: bytes  # From, Reply-To, MIME-Version, Content-Type (encoded once)
    boundary: str
    subject_header: bytes | None  # None when the subject has placeholders to fill


def _static_headers(message: Message, boundary: str) -> bytes:
    head = EmailMessage(policy=SMTP)
    head["From"] = Address(display_name=message.from_name or "", addr_spec=message.from_email)
    if message.reply_to:
        head["Reply-To"] = message.reply_to
    head["MIME-Version"] = "1.0"
    head["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    raw = bytes(head)
    return raw[: raw.index(b"\r\n\r\n") + 2]


def _encoded_subject(subject: str) -> bytes:
    head = EmailMessage(policy=SMTP)
    head["Subject"] = subject
    raw = bytes(head)
    return raw[: raw.index(b"\r\n\r\n") + 2]


def check_static_headers(message: Message) -> None:
    """The edition's own header values: one with a control character refuses the edition
    (DeliveryError), before anything is written."""
    for name, value in (
        ("Subject", message.subject),
        ("From", f"{message.from_name or ''} {message.from_email}"),
        ("Reply-To", message.reply_to or ""),
        ("List-Id", message.list_id),
        ("Date", message.date_header),
    ):
        check_header(name, value)


def prepare_skeleton(message: Message) -> Skeleton:
    check_static_headers(message)
    # "=_" cannot occur in quoted-printable output, so the boundary never clashes with a body.
    boundary = f"=_publisher_{secrets.token_hex(12)}"
    personal = any(p in message.subject for p in PLACEHOLDERS)
    subject = None if personal else _encoded_subject(message.subject)
    return Skeleton(message, _static_headers(message, boundary), boundary, subject)


def _qp(text: str) -> bytes:
    body = text.replace("\r\n", "\n").encode("utf-8")
    return binascii.b2a_qp(body, istext=True).replace(b"\n", b"\r\n")


def _header_line(name: str, value: str, charset: str = "ascii") -> bytes:
    line = f"{name}: {value}\r\n".encode(charset)
    if len(line) > MAX_LINE + 2:
        raise ValueError(f"{name} header longer than {MAX_LINE} octets")
    return line


def build_message(skeleton: Skeleton, recipient: Recipient) -> bytes:
    """One recipient's complete message: only string substitution and QP encoding here.
    Raises HeaderError (the recipient fails, with the reason) for a header value with a
    control character: it is never written."""
    message = skeleton.message
    headers = list_headers(message, recipient, secrets.token_hex(8))
    check_header("To", f"{recipient.name or ''} {recipient.email}")
    for name, value in headers.items():
        check_header(name, value)
    if recipient.email.isascii():
        to = formataddr((recipient.name or "", recipient.email), charset="utf-8")
    else:  # an internationalised address: UTF-8 as it is (SMTPUTF8, RFC 6532); the name
        # is still encoded by formataddr, around a stand-in address
        stand_in = "x@x.invalid"
        to = recipient.email.join(
            formataddr((recipient.name or "", stand_in), charset="utf-8").rsplit(stand_in, 1)
        )
    subject = skeleton.subject_header
    if subject is None:
        personal = recipient.personalise(message.subject)
        check_header("Subject", personal)
        subject = _encoded_subject(personal)
    parts = [skeleton.static_headers, _header_line("To", to, "utf-8"), subject]
    parts.extend(_header_line(name, value) for name, value in headers.items())
    b = skeleton.boundary.encode()
    for content_type, document in (("text/plain", message.text), ("text/html", message.html)):
        parts.append(
            b"\r\n--"
            + b
            + b"\r\nContent-Type: "
            + content_type.encode()
            + b'; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        )
        parts.append(_qp(recipient.personalise(document)))
    parts.append(b"\r\n--" + b + b"--\r\n")
    return b"".join(parts)
