"""The transactional emails of the subscriber web: the sign-up confirmation and the
"download my data" link. Both are rendered from templates/email/ (overridable) and sent
after the answer has gone out (`mail_later`), so the answer takes the same time whether or
not anything is mailed: its timing tells nobody who is on the list.

Nothing a stranger typed reaches these emails: they greet nobody by name and the `To:`
header holds the bare address. Their body has no unsubscribe link: each is the one message a
request asked for, and nothing follows unless the person uses its link (transactional);
the List-Unsubscribe header (every message has it) still stops a pending sign-up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from jinja2 import Environment
from starlette.background import BackgroundTask

from publisher.config import PublisherConfig
from publisher.deliver.base import Message, Recipient
from publisher.errors import PublisherError
from publisher.render.environment import render_template, wrap_text
from publisher.render.mjml import compile_mjml
from publisher.store.subscribers import Subscriber
from publisher.web.context import Web
from publisher.web.limits import allow_mail
from publisher.web.security import CONFIRM_MAX_AGE

log = logging.getLogger("publisher.web")
CONFIRM_SUBJECT = "Please confirm your subscription to {org}"
DATA_SUBJECT = "Your data at {org}"
DATA_MAX_AGE = 3600  # the "download my data" link works for an hour
CAMPAIGNS = {"confirm": "confirmations", "data": "data-links"}


def render_email(
    config: PublisherConfig,
    env: Environment,
    template: str,
    subject: str,
    values: dict[str, Any],
    *,
    now: datetime,
) -> Message:
    """templates/email/<template>.mjml and .txt as a message; raises TemplateError."""
    org = config.organisation
    context = {"org": org, "colours": org.colours, "subject": subject} | values
    html = compile_mjml(
        render_template(env, f"email/{template}.mjml", context), template=f"email/{template}.mjml"
    )
    return Message(
        edition_id=0,
        campaign=CAMPAIGNS[template],  # the file backend's outbox folder
        number=0,
        title=org.name,
        subject=subject,
        html=html,
        text=wrap_text(render_template(env, f"email/{template}.txt", context)),
        from_email=org.from_email,
        from_name=org.from_name,
        reply_to=org.reply_to,
        public_url=org.public_url,
        unsubscribe_mailto=config.delivery.unsubscribe_mailto or org.from_email,
        date=now,
    )


def render_confirmation(
    config: PublisherConfig, env: Environment, confirm_url: str, *, now: datetime
) -> Message:
    """The confirmation email (templates/email/confirm.*); raises TemplateError."""
    subject = CONFIRM_SUBJECT.format(org=config.organisation.name)
    values = {"confirm_url": confirm_url, "days": CONFIRM_MAX_AGE // 86400}
    return render_email(config, env, "confirm", subject, values, now=now)


def _link(w: Web, path: str, purpose: str, subscriber: Subscriber) -> str:
    token = w.tokens.link_token(purpose, subscriber.ref or "", subscriber.email, subscriber.token)
    return f"{w.config.organisation.public_url.rstrip('/')}/{path}?token={token}"


def confirmation_message(w: Web, subscriber: Subscriber) -> Message:
    """The confirmation email for this subscriber, with its signed link."""
    url = _link(w, "confirm", "confirm", subscriber)
    return render_confirmation(w.config, w.env, url, now=w.now())


def reconfirmation_message(w: Web, subscriber: Subscriber) -> Message:
    """The same confirmation email for someone who unsubscribed and whom staff asked back:
    its link ("reconfirm") may activate an unsubscribed person, and nothing else does."""
    url = _link(w, "confirm", "reconfirm", subscriber)
    return render_confirmation(w.config, w.env, url, now=w.now())


def data_message(w: Web, subscriber: Subscriber) -> Message:
    """The email with a fresh link to download everything kept about the person."""
    subject = DATA_SUBJECT.format(org=w.config.organisation.name)
    values = {"data_url": _link(w, "my-data", "data", subscriber), "minutes": DATA_MAX_AGE // 60}
    return render_email(w.config, w.env, "data", subject, values, now=w.now())


def send(w: Web, subscriber: Subscriber, message: Message) -> None:
    """Errors are logged (by subscriber reference, never the address), never shown."""
    # the bare address: no display name a stranger could have typed. The token only feeds
    # the List-Unsubscribe header, read by the mailbox's owner alone
    public_url = w.config.organisation.public_url
    recipient = Recipient(subscriber.id, subscriber.email, None, subscriber.token, public_url)
    try:
        problem = (w.send_email or _default_send)(w.config, message, recipient)
    except PublisherError as exc:
        problem = str(exc)
    if problem:
        log.warning("%s to subscriber %s not sent: %s", message.subject, subscriber.ref, problem)


def mail(w: Web, subscriber: Subscriber, kind: str) -> bool:
    """`kind` ("confirm", "reconfirm" or "data") mailed, within the mailbox's limit (False:
    over it, nothing sent)."""
    if not allow_mail(w.store, subscriber.email, now=w.now()):
        return False  # this mailbox had its share: the person already has a recent link
    builders = {"reconfirm": reconfirmation_message, "data": data_message}
    send(w, subscriber, builders.get(kind, confirmation_message)(w, subscriber))
    return True


def _job(w: Web, work: Callable[[], None]) -> None:
    try:
        work()
    except Exception as exc:  # the answer is gone: log it (the kind only: it may hold data)
        log.error("work after answering failed: %s", type(exc).__name__)
    finally:
        if w.after_job is not None:
            w.after_job()


def later(w: Web, work: Callable[[], None]) -> BackgroundTask:
    """`work` done after the answer has gone out (in a worker thread)."""
    return BackgroundTask(_job, w, work)


def mail_later(w: Web, subscriber: Subscriber, kind: str) -> BackgroundTask:
    """`kind` ("confirm" or "data") mailed after the answer, within the mailbox's limit."""

    def work() -> None:
        mail(w, subscriber, kind)

    return later(w, work)


def _default_send(config: PublisherConfig, message: Message, recipient: Recipient) -> str | None:
    from publisher.deliver.outside_ledger import send_one

    return send_one(config, message, recipient)
