"""Sign-up with double opt-in: the form (embeddable in an iframe on the organisation's
site), the pending subscriber with its consent record, the confirmation email, the confirm
page.

The answer to a sign-up is the same, in the same time, whether the address is new, pending,
already subscribed, opted out or suppressed (nobody can learn who is on the list): the
confirmation is mailed after the answer has gone out (publisher/web/notices.py), and only
to new or pending addresses. A bot that fills the hidden field is told the same and nothing
is stored. Sign-ups are limited per client, per network and in total, confirmation emails
per mailbox (publisher/web/limits.py, counted in the store). A post from another site's
page is refused (its Origin), unless it is the organisation's website embedding the form.
Confirmation links name the subscriber by an opaque reference and open a page with a
button: mail gateways open links to scan them, and must not confirm anyone."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from publisher.render.environment import render_template
from publisher.store import consent
from publisher.store.subscribers import PENDING, Subscriber, find_subscriber
from publisher.subscribers.consent import activate, sign_up
from publisher.web.context import Web, client_ip, off_loop, web
from publisher.web.forms import name_problem, read_form, text
from publisher.web.limits import allow_client
from publisher.web.notices import later, mail
from publisher.web.proof import challenge_json, solved
from publisher.web.security import CONFIRM_MAX_AGE, fingerprint

log = logging.getLogger("publisher.web")
# the app's policy (publisher/web/app.py) with our own script, for the proof of work only
PROOF_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' https:; form-action 'self'; "
    "base-uri 'none'; script-src 'self'; frame-ancestors 'self' {website}"
)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_site(w: Web, request: Request) -> bool:
    """False for a form posted from another site's page. Browsers say where a post comes
    from in `Sec-Fetch-Site`; our own pages (framed on the organisation's site or not) post
    `same-origin`. A post from another page passes only if its `Origin` is ours or the
    organisation's website (a copy of the form there). `Origin` alone cannot tell our own
    pages apart: with their `Referrer-Policy: no-referrer` browsers send `Origin: null`, so a
    browser too old for `Sec-Fetch-Site` is let through on it. A client sending neither
    header is no browser (it cannot carry a visitor's browser along) and still needs a valid
    form token."""
    origin, fetch_site = request.headers.get("origin"), request.headers.get("sec-fetch-site")
    org = w.config.organisation
    if origin is not None and origin.lower() in {_origin(org.public_url), _origin(org.website)}:
        return True
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    return origin is None or origin == "null"


def _form_page(
    w: Web,
    form_name: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    proof = w.config.subscribers.proof_of_work
    page = w.page(
        "subscribe.html",
        f"Subscribe to {w.config.organisation.name}",
        status=status,
        csrf=w.tokens.form_token("subscribe"),
        form_name=form_name,
        values=values or {"name": "", "email": ""},
        errors=errors or {},
        chosen=(values or {}).get("topics", ()),
        consent_text=w.consent_text,
        altcha=challenge_json(w) if proof else None,
    )
    if proof:
        website = w.config.organisation.website.rstrip("/")
        page.headers["content-security-policy"] = PROOF_CSP.format(website=website)
    return page


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


def _read_values(w: Web, form: Any) -> tuple[dict[str, Any], dict[str, str], str]:
    """The posted values, the errors to show by field, and the normalised address."""
    allowed = {t.slug for t in w.topics}
    values: dict[str, Any] = {
        "name": text(form, "name", 200),
        "email": text(form, "email"),
        "topics": [t for t in form.getlist("topics") if isinstance(t, str) and t in allowed],
    }
    errors: dict[str, str] = {}
    address = ""
    try:
        address = validate_email(values["email"], check_deliverability=False).normalized
    except EmailNotValidError:
        errors["email"] = "Enter an email address like name@example.org."
    problem = name_problem(values["name"])
    if problem:
        errors["name"] = problem
    if text(form, "consent") != "yes":
        errors["consent"] = "Tick this box to agree, or we cannot send you anything."
    if w.config.subscribers.proof_of_work and not solved(
        w, text(form, "altcha", 2000), now=w.now()
    ):
        errors["altcha"] = "Your browser did not finish its check. Please submit the form again."
    return values, errors, address


async def subscribe_post(request: Request) -> Response:
    w = web(request)
    form = await read_form(request)  # too large: the app's FormTooLarge handler answers 413
    if not same_site(w, request) or not w.tokens.check_form(text(form, "csrf", 500), "subscribe"):
        return w.expired_form()
    if text(form, "website"):  # the honeypot: people never see that field
        return _sent_page(w)
    values, errors, address = _read_values(w, form)
    if errors:
        return _form_page(w, text(form, "form", 100), values=values, errors=errors, status=400)
    if not allow_client(w.store, client_ip(request), now=w.now()):
        return w.message(
            "Too many attempts", "Please wait a few minutes and try again.", status=429
        )
    ctx = consent.Context(
        via="web",
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        form=text(form, "form", 100) or "subscribe-page",
        consent_text=w.consent_text,
    )
    answer = _sent_page(w)
    # everything that depends on who the address is happens after the answer has gone out
    answer.background = later(w, lambda: _record(w, address, values, ctx))
    return answer


def _record(w: Web, address: str, values: dict[str, Any], ctx: consent.Context) -> None:
    """The sign-up stored, and the confirmation mailed when it may be."""
    subscriber, confirm = sign_up(
        w.store, address, name=values["name"] or None, topics=values["topics"], ctx=ctx, now=w.now()
    )
    if confirm and subscriber is not None:
        mail(w, subscriber, "confirm")


def _confirm_target(w: Web, token: str) -> tuple[Subscriber | None, bool, bool]:
    """The subscriber a confirmation link names, whether the link is still theirs (it is
    bound to their token, which confirming rotates), and whether it is a staff-requested
    comeback (a "reconfirm" link mailed to someone who had unsubscribed: see
    publisher/web/admin/roster.py). (None, False, False) for a bad link."""
    comeback = False
    found = w.tokens.check_link("confirm", token, CONFIRM_MAX_AGE)
    if found is None:
        found, comeback = w.tokens.check_link("reconfirm", token, CONFIRM_MAX_AGE), True
    if found is None or not found[0]:
        return None, False, False
    subscriber = find_subscriber(w.store, ref=found[0])
    if subscriber is None:
        return None, False, False  # erased (a new reference), or never ours
    current = fingerprint(f"{subscriber.email}|{subscriber.token}") == found[1]
    return subscriber, current, comeback


def _waiting(subscriber: Subscriber, comeback: bool) -> bool:
    """Whether the person may confirm: a pending sign-up, or someone who unsubscribed and
    was mailed a comeback link (bound to their token since: nothing older opens it)."""
    return subscriber.status == PENDING or (comeback and subscriber.status == "unsubscribed")


def _already_confirmed(w: Web) -> Response:
    """A used link of a confirmed subscriber: no address, no link (it may be forwarded)."""
    return w.message("You are subscribed", "This subscription is already confirmed.")


def confirm_page(request: Request) -> Response:  # plain: Starlette runs it in a thread
    w, token = web(request), request.query_params.get("token", "")
    subscriber, current, comeback = _confirm_target(w, token)
    if subscriber is None or (not current and subscriber.status != "active"):
        return w.invalid_link()
    if subscriber.status == "active":
        return _already_confirmed(w)
    if not _waiting(subscriber, comeback):  # unsubscribed since: the old link does not undo it
        return w.invalid_link()
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
    subscriber, current, comeback = _confirm_target(w, token)
    if subscriber is not None and subscriber.status == "active":
        return _already_confirmed(w)  # a second press, or a link used before
    if subscriber is None or not current or not _waiting(subscriber, comeback):
        return w.invalid_link()
    ctx = consent.Context(
        via="web", ip=client_ip(request), user_agent=request.headers.get("user-agent")
    )
    changed = activate(w.store, subscriber, action="confirm", ctx=ctx, now=w.now())
    confirmed = find_subscriber(w.store, id=subscriber.id) or subscriber  # its new token
    answer = w.message(
        "You are subscribed",
        f"Thank you: {confirmed.email} will receive our email.",
        link={"url": f"preferences?token={confirmed.token}", "label": "Choose your topics"},
    )
    if changed and w.config.welcome is not None:  # once per person: the ledger decides
        answer.background = later(w, lambda: _welcome(w, subscriber.id))
    return answer


def _welcome(w: Web, subscriber_id: int) -> None:
    from publisher.deliver.welcome import resume_welcomes, send_welcome

    send_welcome(w.config, w.store, subscriber_id, now=w.now())
    resume_welcomes(w.config, w.store, now=w.now())  # what a stopped process left


async def proof_script(request: Request) -> Response:
    w = web(request)
    script = render_template(w.env, "web/altcha.js", {})
    return Response(script, media_type="text/javascript", headers={"cache-control": "no-cache"})


async def home(request: Request) -> Response:
    return RedirectResponse("subscribe", status_code=303)


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/subscribe", subscribe_page, methods=["GET"]),
    Route("/subscribe", subscribe_post, methods=["POST"]),
    Route("/altcha.js", proof_script, methods=["GET"]),
    Route("/confirm", confirm_page, methods=["GET"]),
    Route("/confirm", confirm_post, methods=["POST"]),
]
