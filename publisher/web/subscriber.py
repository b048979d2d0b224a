"""A subscriber's own pages, reached with the token of their emails: unsubscribe (GET page,
RFC 8058 one-click POST), the preference centre, download my data, delete me.

Link scanners in mail gateways open every link: a GET only ever shows a page; changes need
a POST (one-click, or a form carrying a valid signed form token). Unsubscribing gives the
person a new token, so an old or forwarded email's links open nothing after it (a repeated
one-click still answers). "Download my data" does not answer with the data: a newsletter's
token may be in anyone's hands (forwarded), so it mails a fresh link, valid for an hour and
bound to the current token, to the address itself.

A link of an email also carries which edition it came from (`e`, publisher.support.marks,
signed for that person): an unsubscribe or a preference change made through it is counted
for that edition, once per person (the edition page's numbers, on every backend)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from publisher.render import subscriber_url
from publisher.store import consent, subscriber_record
from publisher.store.numbers import link_key, record_page_event
from publisher.store.subscribers import Subscriber, find_subscriber
from publisher.subscribers.consent import activate, erase, export_data, unsubscribe
from publisher.support.marks import MARK_MAX, read_mark, well_formed
from publisher.web.context import Web, client_ip, off_loop, web
from publisher.web.forms import name_problem, read_form, text
from publisher.web.notices import DATA_MAX_AGE, mail_later
from publisher.web.security import fingerprint

PAUSE_WEEKS = {"2": 2, "4": 4, "8": 8}
STATUS_TEXT = {
    "active": "you receive our email",
    "pending": "waiting for you to confirm your subscription",
    "unsubscribed": "you are unsubscribed and receive nothing",
    "bounced": "stopped, because messages to this address bounced",
    "complained": "stopped, because a message was reported as spam",
}


def _ctx(request: Request, via: str) -> consent.Context:
    return consent.Context(
        via=via, ip=client_ip(request), user_agent=request.headers.get("user-agent")
    )


def _lookup(w: Web, token: str) -> Subscriber | None:
    if not token or len(token) > 200:
        return None
    found = find_subscriber(w.store, token=token)
    return found if found and not found.email.endswith("@erased.invalid") else None


def _mark(request: Request, form: FormData | None = None) -> str:
    """The edition mark of the link (query) or of the page's form, if it has a mark's form
    (only such a mark is carried on into the page's links and forms)."""
    return well_formed(request.query_params.get("e") or (text(form, "e", MARK_MAX) if form else ""))


def _credit(w: Web, subscriber_id: int, mark: str, kind: str) -> None:
    """Count the change for the edition whose link it came through, if the mark is that
    edition's for this very person (anything else counts nothing, and changes nothing)."""
    if not mark:
        return
    edition_id = read_mark(link_key(w.store, now=w.now()), mark, subscriber_id)
    if edition_id is not None:
        record_page_event(w.store, edition_id, subscriber_id, kind, now=w.now())


def _unsubscribed_page(w: Web, subscriber: Subscriber) -> HTMLResponse:
    """With the person's current token only (an empty one, from a retired link: none)."""
    token = subscriber.token
    link = {"url": f"preferences?token={token}", "label": "Changed your mind?"} if token else None
    return w.message(
        "You are unsubscribed", f"We will send no more email to {subscriber.email}.", link=link
    )


def unsubscribe_page(request: Request) -> Response:  # plain: Starlette runs it in a thread
    w, token, mark = web(request), request.query_params.get("token", ""), _mark(request)
    subscriber = _lookup(w, token)
    if subscriber is None:
        return w.invalid_link()
    if subscriber.status != "active" and subscriber.status != "pending":
        return _unsubscribed_page(w, subscriber)
    return w.page(
        "unsubscribe.html",
        "Unsubscribe",
        email=subscriber.email,
        token=token,
        csrf=w.tokens.form_token("unsubscribe", token),
        mark=mark,
        preferences_url=f"preferences?token={token}" + (f"&e={mark}" if mark else ""),
    )


async def unsubscribe_post(request: Request) -> Response:
    """RFC 8058: `List-Unsubscribe=One-Click` in the body unsubscribes at once, with no
    cookie, session or form token, and answers 200 without a redirect; idempotent."""
    w = web(request)
    form = await read_form(request)  # too large: the app's FormTooLarge handler answers 413
    token = request.query_params.get("token") or text(form, "token", 200)
    one_click = text(form, "List-Unsubscribe") == "One-Click"
    if not one_click and not w.tokens.check_form(text(form, "csrf", 500), "unsubscribe", token):
        return w.expired_form()
    if not token or len(token) > 200:
        return w.invalid_link()
    ctx = _ctx(request, "one-click" if one_click else "web")
    subscriber = await off_loop(_unsubscribe, w, token, _mark(request, form), ctx)
    return w.invalid_link() if subscriber is None else _unsubscribed_page(w, subscriber)


def _unsubscribe(w: Web, token: str, mark: str, ctx: consent.Context) -> Subscriber | None:
    """The one-click transaction, then the count for the edition the link came from (a
    repeat counts once: record_page_event), in one trip off the event loop."""
    subscriber = consent.unsubscribe_token(w.store, token, ctx=ctx, now=w.now())
    if subscriber is not None and subscriber.status == "unsubscribed":
        _credit(w, subscriber.id, mark, "unsubscribe")
    return subscriber


def _preferences(
    w: Web, subscriber: Subscriber, notice: str | None = None, mark: str = ""
) -> HTMLResponse:
    until = subscriber_record.paused_until(w.store, subscriber.id, now=w.now())
    status_text = STATUS_TEXT.get(subscriber.status, subscriber.status)
    if until and subscriber.status == "active":
        status_text = f"paused until {until.date().isoformat()}"
    return w.page(
        "preferences.html",
        "Your email preferences",
        notice=notice,
        email=subscriber.email,
        name=subscriber.name or "",
        sub_status=subscriber.status,
        status_text=status_text,
        chosen=subscriber.topics,
        paused_until=until.date().isoformat() if until else None,
        token=subscriber.token,
        mark=mark,
        csrf=w.tokens.form_token("preferences", subscriber.token),
    )


def preferences_page(request: Request) -> Response:  # plain: Starlette runs it in a thread
    w = web(request)
    subscriber = _lookup(w, request.query_params.get("token", ""))
    if subscriber is None:
        return w.invalid_link()
    return _preferences(w, subscriber, mark=_mark(request))


async def preferences_post(request: Request) -> Response:
    w = web(request)
    form = await read_form(request)  # too large: the app's FormTooLarge handler answers 413
    return await off_loop(_preferences_post, request, w, form)


def _preferences_post(request: Request, w: Web, form: FormData) -> Response:
    token = text(form, "token", 200)
    if not w.tokens.check_form(text(form, "csrf", 500), "preferences", token):
        return w.expired_form()
    subscriber = _lookup(w, token)
    if subscriber is None:
        return w.invalid_link()
    action, ctx, now = text(form, "action", 20), _ctx(request, "web"), w.now()
    mark = _mark(request, form)
    if action == "save" and subscriber.status == "active":
        problem = name_problem(text(form, "name", 200))
        if problem:
            return _preferences(w, subscriber, f"Nothing was changed. {problem}", mark)
        _save(w, subscriber, form, ctx, now)
        _credit(w, subscriber.id, mark, "preferences")
        notice = "Your preferences are saved."
    elif action == "unsubscribe":
        if unsubscribe(w.store, subscriber.id, ctx=ctx, now=now):
            _credit(w, subscriber.id, mark, "unsubscribe")
        notice = "You are unsubscribed from everything."
    elif action == "resubscribe" and subscriber.status != "active":
        activate(w.store, subscriber, action="resubscribe", ctx=ctx, now=now)
        notice = "Welcome back: you are subscribed again."
    elif action == "export":
        answer = _preferences(
            w,
            subscriber,
            f"We emailed a link to {subscriber.email}: it downloads your data for the next "
            f"{DATA_MAX_AGE // 60} minutes.",
        )
        answer.background = mail_later(w, subscriber, "data")
        return answer
    elif action == "erase" and text(form, "confirm") == "yes":
        erase(w.store, subscriber, now=now)
        return w.message(
            "Your data is deleted",
            "We deleted your address, name, preferences and history. We keep only a one-way "
            "fingerprint of the address so that it is never added back without your consent.",
        )
    else:
        return _preferences(w, subscriber, "Nothing was changed.")
    refreshed = find_subscriber(w.store, id=subscriber.id) or subscriber
    return _preferences(w, refreshed, notice, mark)


def _save(
    w: Web, subscriber: Subscriber, form: FormData, ctx: consent.Context, now: datetime
) -> None:
    allowed = {t.slug for t in w.topics}
    topics = [t for t in form.getlist("topics") if isinstance(t, str) and t in allowed]
    name = text(form, "name", 200) or None
    consent.update_preferences(w.store, subscriber.id, name=name, topics=topics, ctx=ctx, now=now)
    pause = text(form, "pause", 10)
    if pause == "0":
        consent.pause(w.store, subscriber.id, None, ctx=ctx, now=now)
    elif pause in PAUSE_WEEKS:
        until = now + timedelta(weeks=PAUSE_WEEKS[pause])
        consent.pause(w.store, subscriber.id, until, ctx=ctx, now=now)


async def my_data(request: Request) -> Response:
    """The link of the "download my data" email: everything kept, as a JSON download. Only
    reads: a link scanner opening it gives the data to the person's own mail provider."""
    w = web(request)
    found = w.tokens.check_link("data", request.query_params.get("token"), DATA_MAX_AGE)
    subscriber = find_subscriber(w.store, ref=found[0]) if found and found[0] else None
    if found is None or subscriber is None:
        return w.invalid_link()
    if fingerprint(f"{subscriber.email}|{subscriber.token}") != found[1]:
        return w.invalid_link()  # unsubscribed or erased since: a new token
    data = export_data(w.store, subscriber, now=w.now())
    data["preferences_url"] = subscriber_url(
        w.config.organisation.public_url, "preferences", subscriber.token
    )
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-data.json"'},
    )


ROUTES = [
    Route("/unsubscribe", unsubscribe_page, methods=["GET"]),
    Route("/unsubscribe", unsubscribe_post, methods=["POST"]),
    Route("/preferences", preferences_page, methods=["GET"]),
    Route("/preferences", preferences_post, methods=["POST"]),
    Route("/my-data", my_data, methods=["GET"]),
]
