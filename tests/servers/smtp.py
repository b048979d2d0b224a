"""A local aiosmtpd server with STARTTLS (a trustme test certificate) and optional AUTH.
Recipients starting with `reject` are refused at RCPT (550), `later` temporarily (450); for
recipients starting with `drop`
the message is taken and the connection dropped before the answer to DATA; for recipients
starting with `nodata` the message is refused for good at DATA (554)."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    peer: tuple


@dataclass
class RecordingHandler:
    reject_prefix: str = "reject"
    drop_prefix: str = "drop"  # take the message, then drop the connection before answering
    defer_prefix: str = "later"  # refused temporarily at RCPT (450)
    refuse_data_prefix: str = "nodata"  # refused for good at DATA (554)
    messages: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith(self.reject_prefix):
            self.refused.append(address)
            return "550 5.1.1 mailbox unavailable"
        if address.startswith(self.defer_prefix):
            self.refused.append(address)
            return "450 4.2.1 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if any(r.startswith(self.refuse_data_prefix) for r in envelope.rcpt_tos):
            self.refused.extend(envelope.rcpt_tos)
            return "554 5.7.1 message refused"
        self.messages.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content or envelope.content,
                session.peer,
            )
        )
        if any(r.startswith(self.drop_prefix) for r in envelope.rcpt_tos):
            server.transport.abort()  # accepted, then the connection is lost: no answer
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    """`with SmtpServer(tmp_path) as server:`; trust `server.ca_file`."""

    def __init__(
        self,
        folder: Path,
        *,
        credentials: tuple[str, str] | None = None,
        smtputf8: bool = True,
    ) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = folder / "test-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        self.handler = RecordingHandler()
        self.credentials = credentials
        self.port = free_port()
        options: dict[str, Any] = {}
        if credentials:
            options = dict(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=True
            )
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            enable_SMTPUTF8=smtputf8,
            **options,
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages
