"""Log-in and log-out of the staff dashboard."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.store import audit
from publisher.store.staff import LockedOut, check_login
from publisher.web.admin.auth import (
    COOKIE,
    SESSION_MAX_AGE,
    Admin,
    Sessions,
    action,
    base_of,
    render,
)
from publisher.web.context import client_ip, off_loop, web
from publisher.web.forms import FormTooLarge, read_form, text


def _login_page(request: Request, error: str = "", status: int = 200) -> Response:
    w = web(request)
    return render(
        request, "login.html", "Staff log-in", status=status, error=error,
        csrf=w.tokens.form_token("staff-login"),
    )  # fmt: skip


async def login_page(request: Request) -> Response:
    return _login_page(request)


async def login_post(request: Request) -> Response:
    w, ip = web(request), client_ip(request)
    try:
        form = await read_form(request)
    except FormTooLarge:
        return _login_page(request, "That request was too large.", 413)
    if not w.tokens.check_form(text(form, "csrf", 500), "staff-login"):
        return _login_page(request, "The form was too old: please try again.", 403)
    email, password = text(form, "email"), text(form, "password", 1000)
    now = w.now()
    try:  # argon2 (~200 ms of CPU) off the event loop, one at a time
        staff = await off_loop(check_login, w.store, email, password, ip, now=now, hashing=True)
    except LockedOut:
        audit.record(w.store, email or "(empty)", "login refused (locked out)", ip=ip, now=now)
        return _login_page(
            request, "Too many failed attempts: log-in is locked for 15 minutes.", 429
        )
    if staff is None:
        audit.record(w.store, email or "(empty)", "failed login", ip=ip, now=now)
        return _login_page(request, "The address or the password is wrong.", 401)
    audit.record(w.store, staff.email, "login", ip=ip, now=now)
    sessions: Sessions = request.app.state.staff_sessions
    cookie, _nonce = sessions.issue(staff)
    response = RedirectResponse(base_of(request) + "admin/", status_code=303)
    # no Path: the browser scopes the cookie to this page's folder, /admin or the proxy's
    # /prefix/admin, never the whole host
    response.set_cookie(
        COOKIE, cookie, max_age=SESSION_MAX_AGE, path=None, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",  # behind a proxy: X-Forwarded-Proto
    )  # fmt: skip
    return response


@action("viewer")
async def logout(request: Request, admin: Admin, form: object) -> Response:
    audit.record(
        admin.w.store, admin.staff.email, "logout", ip=client_ip(request), now=admin.w.now()
    )
    response = RedirectResponse(base_of(request) + "admin/login", status_code=303)
    response.set_cookie(COOKIE, "", max_age=0, path=None, httponly=True, samesite="strict")
    return response
