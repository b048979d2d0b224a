"""The sending sections of schedules.yaml: delivery and its backends, the subscriber file,
the welcome email, broadcast senders, approval before a send, outgoing webhooks."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, field_validator, model_validator

from publisher.config.fields import EmailAddress, OneLine, Strict, check_absolute_url

# --- delivery and subscribers (delivery issue) --------------------------------------------


class FileDeliveryConfig(Strict):
    """`file` backend: one RFC 5322 .eml per recipient in <path>/<campaign>/<edition>/."""

    # the outbox folder
    path: str = "outbox"
    # messages per ledger batch
    batch_size: int = Field(default=500, ge=1, le=10_000)


class SmtpDeliveryConfig(Strict):
    """`smtp` backend. Credentials only from SMTP_USERNAME / SMTP_PASSWORD (environment)."""

    # SMTP server
    host: str = "localhost"
    # SMTP port (465 with security: tls)
    port: int = Field(default=587, ge=1, le=65535)
    # STARTTLS, implicit TLS, or none
    security: Literal["starttls", "tls", "none"] = "starttls"
    ca_file: str | None = None  # extra CA bundle to trust (a private relay, tests)
    # seconds for each connect or reply
    timeout: float = Field(default=30.0, gt=0, le=600)
    rate_limit: float | None = Field(default=None, gt=0, le=100_000)  # messages/s, all workers
    workers: int = Field(default=2, ge=1, le=32)  # connections, each reused for many messages
    # messages per ledger batch: a crash mid-batch leaves at most this many 'uncertain' per worker
    batch_size: int = Field(default=20, ge=1, le=10_000)


class SendGridDeliveryConfig(Strict):
    """`sendgrid` backend. The API key only from SENDGRID_API_KEY (environment)."""

    host: str = "https://api.sendgrid.com"  # EU region: https://api.eu.sendgrid.com
    # concurrent requests (at most 8 with exactly_once)
    workers: int = Field(default=4, ge=1, le=64)
    batch_size: int = Field(default=1000, ge=1, le=1000)  # personalizations per request
    # seconds for each request
    timeout: float = Field(default=30.0, gt=0, le=600)
    # SendGrid unsubscribe group of the emails
    asm_group_id: int | None = None
    # SendGrid validates requests and delivers nothing
    sandbox_mode: bool = False
    # Exactly-once mode (docs/operators.md "Interrupted sends"): every batch is scheduled
    # `hold_minutes` ahead under its own batch id, so a batch of unknown outcome can be
    # cancelled and resent.
    exactly_once: bool = False
    # exactly_once: how far ahead each batch is scheduled
    hold_minutes: int = Field(default=15, ge=11, le=24 * 60)

    _host = field_validator("host")(classmethod(lambda cls, v: check_absolute_url(v)))

    @model_validator(mode="after")
    def _few_unknown_batches(self) -> SendGridDeliveryConfig:
        # SendGrid keeps at most 10 batches cancelled at one time; a crash leaves at most
        # one unknown batch per worker, and a resume may still hold a few cancellations.
        if self.exactly_once and self.workers > 8:
            raise ValueError("exactly_once allows at most 8 workers (SendGrid cancels 10 batches)")
        return self


class DeliveryConfig(Strict):
    backend: str = "file"  # a name in publisher.deliver.BACKENDS; env PUBLISHER_DELIVERY wins
    # mailto address in List-Unsubscribe; default from_email
    unsubscribe_mailto: EmailAddress | None = None
    max_attempts: int = Field(default=5, ge=1, le=20)  # per batch, on 429/5xx/connection errors
    backoff_base: float = Field(default=0.5, ge=0, le=600)  # seconds; doubled per attempt
    # seconds; the longest wait between attempts
    backoff_max: float = Field(default=60.0, ge=0, le=3600)
    max_failed_batches: int = Field(default=3, ge=1, le=1000)  # then the edition is paused
    # settings of the `file` backend
    file: FileDeliveryConfig = FileDeliveryConfig()
    # settings of the `smtp` backend
    smtp: SmtpDeliveryConfig = SmtpDeliveryConfig()
    # settings of the `sendgrid` backend
    sendgrid: SendGridDeliveryConfig = SendGridDeliveryConfig()

    @property
    def effective_backend(self) -> str:
        return os.environ.get("PUBLISHER_DELIVERY") or self.backend


class SubscribersConfig(Strict):
    file: str | None = None  # CSV or JSON imported (upserted) before each run's sends
    # the sign-up form asks the browser for a proof of work (ALTCHA, self-hosted; needs JavaScript)
    proof_of_work: bool = False


# --- the welcome email (issue 21) --------------------------------------------------------


class WelcomeConfig(Strict):
    """Top-level `welcome:`: the email a person gets once, when they confirm their
    subscription. Without this block nobody gets one."""

    # the subject, as written (no template syntax: what is here is what people read)
    subject: OneLine = Field(min_length=1)
    # the preview line mail clients show, as written
    preheader: OneLine = ""
    # templates/<template>.mjml and .txt (a file in your templates/ folder wins)
    template: str = Field(default="welcome", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    # a campaign whose latest sent edition the welcome links to (its web copy)
    latest_edition: str | None = None


# --- broadcast senders (issue 21) ---------------------------------------------------------

ORGANISATION_SENDER = "organisation"  # the sender name of organisation.from_email/from_name


class SenderConfig(Strict):
    """One verified From address staff may choose for a broadcast (top-level `senders:`)."""

    # slug, the key stored with a broadcast ("organisation" is the organisation's own)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)
    # the From address: one your provider has verified for you
    from_email: EmailAddress
    # the name shown in From
    from_name: OneLine | None = None
    # Reply-To address, when replies go elsewhere
    reply_to: EmailAddress | None = None


# --- approval before a send (issue 21) ----------------------------------------------------


class ApprovalConfig(Strict):
    """Top-level `approval:`: which sends a second staff member approves first. The approver
    has the send permission and is not the one who asked for approval or edited it last; an
    edit after the approval voids it."""

    # each broadcast is approved before it can go
    broadcasts: bool = False
    # each digest edition is approved before its slot (held, and late, until it is)
    editions: bool = False


# --- outgoing webhooks (issue 22) ----------------------------------------------------------


class WebhooksConfig(Strict):
    """Top-level `webhooks:`: how the daemon (or `publisher webhooks deliver`) posts the
    events owners asked for in /admin. The endpoints themselves are set in /admin."""

    # how often the daemon looks for events to deliver
    every_seconds: float = Field(default=5.0, ge=0.5, le=3600)
    # deliveries posted at once
    workers: int = Field(default=8, ge=1, le=64)
    # seconds to connect and for each read of the answer
    timeout: float = Field(default=10.0, gt=0, le=60)
    # endpoints may also be http(s)://127.0.0.1 or localhost (tests, a receiver on this
    # host); other private addresses are refused all the same; otherwise only https://
    # to public addresses
    allow_private_addresses: bool = False
