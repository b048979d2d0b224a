"""Sign-up with double opt-in: the form (embeddable in an iframe), the pending subscriber
with its consent record, the confirmation email, the confirm page.

The answer to a sign-up is the same whether the address is new, pending or already
subscribed (nobody can learn who is on the list); a bot that fills the hidden field is told
the same and nothing is stored. Confirmation links open a page with a button: mail gateways
open links to scan them, and must not confirm anyone."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from publisher.config import PublisherConfig
from publisher.deliver.base import Message, Recipient
from publisher.errors import PublisherError
from publisher.render.environment import render_template, wrap_text
from publisher.render.mjml import compile_mjml
from publisher.store import consent
from publisher.store.subscribers import PENDING, Subscriber, find_subscriber
from publisher.subscribers.consent import activate, sign_up
from publisher.web.context import Web, client_ip, off_loop, web
from publisher.web.forms import read_form, text
from publisher.web.security import CONFIRM_MAX_AGE, fingerprint

log = logging.getLogger("publisher.web")
CONFIRM_SUBJECT = "Please confirm your subscription to {org}"


def _form_page(
    w: Web,
    form_name: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return w.page(
        "subscribe.html",
        f"Subscribe to {w.config.organisation.name}",
        status=status,
        csrf=w.tokens.form_token("subscribe"),
        form_name=form_name,
        values=values or {"name": "", "email": ""},
        errors=errors or {},
        chosen=(values or {}).get("topics", ()),
        consent_text=w.consent_text,
    )


async def subscribe_page(request: Request) -> Response:
    name = request.query_params.get("form", "subscribe-page")[:100]
    return _form_page(web(request), name)


def _sent_page(w: Web) -> Response:
    return w.message(
        "Check your inbox",
        "If this address can receive our email, a message is on its way with a link to "
        "confirm your subscription. The link works for 7 days.",
        "Nothing arrives? Look in your spam folder, or try again in a few minutes.",
    )


async def subscribe_post(request: Request) -> Response:
    w = web(request)
    form = await read_form(request)  # too large: the app's FormTooLarge handler answers 413
    if not w.tokens.check_form(text(form, "csrf", 500), "subscribe"):
        return w.expired_form()
    if not w.ip_limit.allow(client_ip(request)):
        return w.message(
            "Too many attempts", "Please wait a few minutes and try again.", status=429
        )
    if text(form, "website"):  # the honeypot: people never see that field
        return _sent_page(w)
    allowed = {t.slug for t in w.topics}
    values: dict[str, Any] = {
        "name": text(form, "name", 200),
        "email": text(form, "email"),
        "topics": [t for t in form.getlist("topics") if isinstance(t, str) and t in allowed],
    }
    errors: dict[str, str] = {}
    try:
        address = validate_email(values["email"], check_deliverability=False).normalized
    except EmailNotValidError:
        errors["email"] = "Enter an email address like name@example.org."
    if text(form, "consent") != "yes":
        errors["consent"] = "Tick this box to agree, or we cannot send you anything."
    if errors:
        return _form_page(w, text(form, "form", 100), values=values, errors=errors, status=400)
    ctx = consent.Context(
        via="web",
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        form=text(form, "form", 100) or "subscribe-page",
        consent_text=w.consent_text,
    )
    subscriber, confirm = await off_loop(
        sign_up,
        w.store,
        address,
        name=values["name"] or None,
        topics=values["topics"],
        ctx=ctx,
        now=w.now(),
    )
    if confirm and w.address_limit.allow(subscriber.email):
        await run_in_threadpool(send_confirmation, w, subscriber)
    return _sent_page(w)


def confirmation_message(w: Web, subscriber: Subscriber) -> Message:
    """The confirmation email for this subscriber, with its signed link."""
    link = w.tokens.confirm_token(subscriber.id, subscriber.email, subscriber.token)
    url = f"{w.config.organisation.public_url.rstrip('/')}/confirm?token={link}"
    return render_confirmation(w.config, w.env, url, subscriber.name, now=w.now())


def render_confirmation(
    config: PublisherConfig, env: Environment, confirm_url: str, name: str | None, *, now: datetime
) -> Message:
    """From templates/email/confirm.mjml and .txt (overridable); raises TemplateError."""
    org = config.organisation
    context = {
        "org": org,
        "colours": org.colours,
        "name": name or "there",
        "confirm_url": confirm_url,
        "days": CONFIRM_MAX_AGE // 86400,
        "subject": CONFIRM_SUBJECT.format(org=org.name),
    }
    html = compile_mjml(
        render_template(env, "email/confirm.mjml", context), template="email/confirm.mjml"
    )
    return Message(
        edition_id=0,
        campaign="confirmations",
        number=0,
        title=org.name,
        subject=str(context["subject"]),
        html=html,
        text=wrap_text(render_template(env, "email/confirm.txt", context)),
        from_email=org.from_email,
        from_name=org.from_name,
        reply_to=org.reply_to,
        public_url=org.public_url,
        unsubscribe_mailto=config.delivery.unsubscribe_mailto or org.from_email,
        date=now,
    )


def send_confirmation(w: Web, subscriber: Subscriber) -> None:
    """Errors are logged, never shown: the page must not tell who is on the list."""
    recipient = Recipient(
        subscriber.id,
        subscriber.email,
        subscriber.name,
        subscriber.token,
        w.config.organisation.public_url,
    )
    try:
        problem = (w.send_email or _default_send)(
            w.config, confirmation_message(w, subscriber), recipient
        )
    except PublisherError as exc:
        problem = str(exc)
    if problem:
        log.warning("confirmation email to subscriber %s not sent: %s", subscriber.id, problem)


def _default_send(config: PublisherConfig, message: Message, recipient: Recipient) -> str | None:
    from publisher.deliver.service import send_one

    return send_one(config, message, recipient)


def _confirm_target(w: Web, token: str) -> Subscriber | None:
    found = w.tokens.check_confirm(token)
    if found is None:
        return None
    subscriber = find_subscriber(w.store, id=found[0])
    if subscriber is None or fingerprint(f"{subscriber.email}|{subscriber.token}") != found[1]:
        return None  # erased, or another person's link
    return subscriber


def confirm_page(request: Request) -> Response:  # plain: Starlette runs it in a thread
    w, token = web(request), request.query_params.get("token", "")
    subscriber = _confirm_target(w, token)
    if subscriber is None:
        return w.invalid_link()
    if subscriber.status == "active":
        return _confirmed(w, subscriber)
    return w.page(
        "confirm.html",
        "Confirm your subscription",
        email=subscriber.email,
        token=token,
        csrf=w.tokens.form_token("confirm", token),
    )


async def confirm_post(request: Request) -> Response:
    w = web(request)
    form = await read_form(request)  # too large: the app's FormTooLarge handler answers 413
    return await off_loop(_confirm_post, request, w, form)


def _confirm_post(request: Request, w: Web, form: FormData) -> Response:
    token = text(form, "token", 500)
    if not w.tokens.check_form(text(form, "csrf", 500), "confirm", token):
        return w.expired_form()
    subscriber = _confirm_target(w, token)
    if subscriber is None:
        return w.invalid_link()
    if subscriber.status == PENDING:
        ctx = consent.Context(
            via="web", ip=client_ip(request), user_agent=request.headers.get("user-agent")
        )
        activate(w.store, subscriber, action="confirm", ctx=ctx, now=w.now())
    elif subscriber.status != "active":  # unsubscribed since: the old link does not undo it
        return w.invalid_link()
    return _confirmed(w, subscriber)


def _confirmed(w: Web, subscriber: Subscriber) -> Response:
    return w.message(
        "You are subscribed",
        f"Thank you: {subscriber.email} will receive our email.",
        link={"url": f"preferences?token={subscriber.token}", "label": "Choose your topics"},
    )


async def home(request: Request) -> Response:
    return RedirectResponse("subscribe", status_code=303)


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/subscribe", subscribe_page, methods=["GET"]),
    Route("/subscribe", subscribe_post, methods=["POST"]),
    Route("/confirm", confirm_page, methods=["GET"]),
    Route("/confirm", confirm_post, methods=["POST"]),
]
