"""Emailed staff links (issue 19): an owner invites someone (the invitee chooses their own
password through the link), and anyone can ask for a password reset of their account. Each
link works once and expires (store/staff_access.py). The reset answer is the same whether
the address has an account or not. The emails go through the configured backend, like the
sign-up confirmation; a failure is logged (never the link) and shown to the owner."""

from __future__ import annotations

import html
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher.deliver.base import Message, Recipient
from publisher.errors import PublisherError
from publisher.store import audit
from publisher.store.staff import StaffError, find_staff
from publisher.store.staff_access import (
    INVITATION_LIFETIME,
    RESET_LIFETIME,
    accept_invitation,
    create_link,
    peek_link,
    reset_password,
)
from publisher.web.admin.auth import raw, render, to
from publisher.web.context import Web, client_ip, web
from publisher.web.forms import FormTooLarge, read_form, text
from publisher.web.limits import allow_staff_reset

log = logging.getLogger("publisher.web")


def staff_message(w: Web, subject: str, paragraphs: list[str], url: str) -> Message:
    org = w.config.organisation
    body = "\n\n".join([*paragraphs, url])
    page = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    link = html.escape(url, quote=True)
    return Message(
        edition_id=0, campaign="staff", number=0, title=org.name, subject=subject,
        html=f"<html><body>{page}<p><a href=\"{link}\">{link}</a></p></body></html>",
        text=body, from_email=org.from_email, from_name=org.from_name, reply_to=org.reply_to,
        public_url=org.public_url,
        unsubscribe_mailto=w.config.delivery.unsubscribe_mailto or org.from_email,
        date=w.now(),
    )  # fmt: skip


def _send(w: Web, message: Message, to_email: str) -> str | None:
    recipient = Recipient(0, to_email, None, "", w.config.organisation.public_url)
    try:
        if w.send_email is not None:
            return w.send_email(w.config, message, recipient)
        from publisher.deliver.outside_ledger import send_one

        return send_one(w.config, message, recipient)
    except PublisherError as exc:
        return str(exc)


def link_url(w: Web, path: str, token: str) -> str:
    return f"{w.config.organisation.public_url.rstrip('/')}/admin/{path}?token={token}"


async def send_invitation(w: Web, email: str, role: str) -> str | None:
    """Create the invitation and email it; the problem if it could not be sent."""
    token = create_link(w.store, "invite", email, role=role, now=w.now())
    days = INVITATION_LIFETIME.days
    org = w.config.organisation.name
    message = staff_message(
        w, f"You are invited to the {org} staff dashboard",
        [f"You are invited to the {org} staff dashboard as {role}.",
         f"Open this link within {days} days to choose your password. It works once."],
        link_url(w, "invitation", token),
    )  # fmt: skip
    problem = await run_in_threadpool(_send, w, message, email)
    if problem:
        log.warning("staff invitation not sent: %s", problem)
    return problem


# --- the invitee and the reset pages ---------------------------------------------------------


def _password_page(
    request: Request, purpose: str, token: str, error: str = "", status: int = 200
) -> Response:
    w = web(request)
    link = peek_link(w.store, token, purpose, now=w.now())
    if link is None:
        return render(
            request, "message.html", "This link does not work", status=404,
            paragraphs=["It expired or was used already. Ask an owner for a new invitation, "
                        "or ask for a new password reset link."],
        )  # fmt: skip
    title = "Choose your password" if purpose == "invite" else "Choose a new password"
    return render(
        request, "set_password.html", title, status=status, error=error, email=link.email,
        token=token, purpose=purpose, csrf=w.tokens.form_token(f"staff-{purpose}", token),
    )  # fmt: skip


async def invitation_page(request: Request) -> Response:
    return _password_page(request, "invite", request.query_params.get("token", "")[:200])


async def reset_new_page(request: Request) -> Response:
    return _password_page(request, "reset", request.query_params.get("token", "")[:200])


async def _set_password(request: Request, purpose: str) -> Response:
    w = web(request)
    try:
        form = await read_form(request)
    except FormTooLarge:
        return to(request, "admin/login")
    token = text(form, "token", 200)
    if not w.tokens.check_form(text(form, "csrf", 500), f"staff-{purpose}", token):
        return _password_page(request, purpose, token, "The form was too old: try again.", 403)
    password = raw(form, "password")
    if password != raw(form, "confirm"):
        return _password_page(request, purpose, token, "The two passwords differ.", 400)
    use = accept_invitation if purpose == "invite" else reset_password
    try:
        staff = await run_in_threadpool(use, w.store, token, password, now=w.now())
    except StaffError as exc:
        return _password_page(request, purpose, token, f"Not changed: {exc}.", 400)
    what = "invitation accepted" if purpose == "invite" else "password reset"
    audit.record(w.store, staff.email, what, staff.role, ip=client_ip(request), now=w.now())
    return to(request, "admin/login?notice=" + ("invited" if purpose == "invite" else "reset"))


async def invitation_post(request: Request) -> Response:
    return await _set_password(request, "invite")


async def reset_new_post(request: Request) -> Response:
    return await _set_password(request, "reset")


def _reset_form(request: Request, notice: str = "", status: int = 200) -> Response:
    w = web(request)
    return render(
        request, "reset.html", "Forgot your password?", status=status, notice=notice,
        csrf=w.tokens.form_token("staff-reset-ask"),
    )  # fmt: skip


async def reset_page(request: Request) -> Response:
    return _reset_form(request)


async def reset_post(request: Request) -> Response:
    w = web(request)
    try:
        form = await read_form(request)
    except FormTooLarge:
        return _reset_form(request, "That request was too large.", 413)
    if not w.tokens.check_form(text(form, "csrf", 500), "staff-reset-ask"):
        return _reset_form(request, "The form was too old: please try again.", 403)
    staff = find_staff(w.store, text(form, "email"))
    if staff is not None and allow_staff_reset(w.store, staff.email, now=w.now()):
        token = create_link(w.store, "reset", staff.email, now=w.now())
        minutes = int(RESET_LIFETIME.total_seconds() // 60)
        message = staff_message(
            w, f"Reset your {w.config.organisation.name} staff password",
            ["Someone (we hope you) asked to reset your staff dashboard password.",
             f"Open this link within {minutes} minutes to choose a new one. It works once. "
             "If it was not you, ignore this email: nothing changes."],
            link_url(w, "reset/new", token),
        )  # fmt: skip
        if problem := await run_in_threadpool(_send, w, message, staff.email):
            log.warning("staff password reset email not sent: %s", problem)
        audit.record(w.store, staff.email, "password reset asked", ip=client_ip(request),
                     now=w.now(), aggregate=True)  # fmt: skip
    return _reset_form(
        request,
        "If this address has a staff account, an email with a link is on its way. "
        f"The link works once, for {int(RESET_LIFETIME.total_seconds() // 60)} minutes.",
    )
