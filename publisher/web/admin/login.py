"""Log-in (password, then the second factor if the account has one) and log-out.

The log-in form's CSRF token is bound to a random cookie of this browser, so a form fetched
elsewhere cannot log this browser into another account. Argon2 runs in a worker thread:
wrong passwords posted at once do not stall the event loop (/healthz and every page)."""

from __future__ import annotations

import unicodedata

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from publisher.store import audit
from publisher.store.staff import (
    LockedOut,
    Staff,
    StaffError,
    account_address,
    check_login,
    check_totp,
    get_staff,
)
from publisher.store.staff_access import (
    end_session,
    open_session,
    prune_access,
    use_recovery_code,
)
from publisher.web.admin.auth import (
    COOKIE,
    DEVICE_COOKIE,
    DEVICE_MAX_AGE,
    LOGIN_COOKIE,
    SESSION_MAX_AGE,
    Admin,
    action,
    cookie_path,
    device_of,
    new_nonce,
    raw,
    render,
    sessions_of,
    set_cookie,
    to,
)
from publisher.web.admin.passkeys import authentication, check_assertion
from publisher.web.context import client_ip, off_loop, web
from publisher.web.forms import FormTooLarge, read_form, text
from publisher.web.limits import allow_staff_code
from publisher.web.security import fingerprint

PENDING_MAX_AGE = 300  # the second-factor step must follow the password within 5 minutes
LOCKED = "Too many failed attempts: log-in is paused for 15 minutes from here."


def actor_of(email: str) -> str:
    """What the audit log names for an attempt: the address, or a placeholder for anything
    that is not one (a password typed into the address field must not be kept)."""
    try:
        return account_address(email)
    except StaffError:
        return "(not an address)" if email else "(empty)"


def _login_page(
    request: Request,
    error: str = "",
    status: int = 200,
    template: str = "login.html",
    staff: Staff | None = None,
    **extra: str,
) -> Response:
    w = web(request)
    nonce = request.cookies.get(LOGIN_COOKIE) or new_nonce()
    options, challenge = authentication(request, nonce, staff)
    response = render(
        request, template, "Staff log-in", status=status, error=error, script=True,
        csrf=w.tokens.form_token("staff-login", nonce), options=options, challenge=challenge,
        passkey=staff is None or staff.has_passkey, **extra,
    )  # fmt: skip
    set_cookie(request, response, LOGIN_COOKIE, nonce, 3 * 3600)
    return response


async def login_page(request: Request) -> Response:
    notice = {"reset": "Your password was changed: log in with the new one.",
              "invited": "Your account is ready: log in."}  # fmt: skip
    return _login_page(request, notice=notice.get(request.query_params.get("notice", ""), ""))


async def _login_form(request: Request, too_old: str) -> tuple[FormData, str] | Response:
    """The posted log-in form and the nonce its CSRF token is bound to (the browser's
    log-in cookie), or the page that refuses it: too large (413) or too old (403)."""
    try:
        form = await read_form(request)
    except FormTooLarge:
        return _login_page(request, "That request was too large.", 413)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not web(request).tokens.check_form(
        text(form, "csrf", 500), "staff-login", nonce
    ):
        return _login_page(request, too_old, 403)
    return form, nonce


async def login_post(request: Request) -> Response:
    w, ip = web(request), client_ip(request)
    read = await _login_form(request, "The form was too old: please try again.")
    if isinstance(read, Response):
        return read
    form, nonce = read
    email, password, now = text(form, "email"), raw(form, "password"), w.now()
    try:
        staff = await off_loop(
            check_login,
            w.store,
            email,
            password,
            ip,
            now=now,
            device=device_of(request, email),
            hashing=True,
        )
    except LockedOut:
        audit.record(w.store, actor_of(email), "login refused (too many failures)", ip=ip,
                     now=now, aggregate=True)  # fmt: skip
        return _login_page(request, LOCKED, 429)
    if staff is None:
        audit.record(w.store, actor_of(email), "failed login", ip=ip, now=now, aggregate=True)
        return _login_page(request, "The address or the password is wrong.", 401)
    if staff.has_second_factor:
        pending = sessions_of(request).sign(
            "pending", staff.id, fingerprint(staff.password_hash), nonce
        )
        return _login_page(request, template="second_factor.html", staff=staff, pending=pending)
    return _signed_in(request, staff)


def _signed_in(request: Request, staff: Staff) -> Response:
    w, ip, now = web(request), client_ip(request), web(request).now()
    prune_access(w.store, now=now)  # every log-in sweeps what no longer counts
    token = open_session(
        w.store, staff.id, ip=ip, user_agent=request.headers.get("user-agent"), now=now
    )
    audit.record(w.store, staff.email, "login", ip=ip, now=now)
    response = to(request, "admin/")
    set_cookie(request, response, COOKIE, token, SESSION_MAX_AGE)
    device = sessions_of(request).sign("device", fingerprint(staff.email), new_nonce())
    set_cookie(request, response, DEVICE_COOKIE, device, DEVICE_MAX_AGE)
    response.delete_cookie(LOGIN_COOKIE, path=cookie_path(request))
    return response


def _check_code(request: Request, staff_id: int, code: str) -> bool:
    w = web(request)
    code = unicodedata.normalize("NFKC", code)
    if check_totp(w.store, staff_id, code, now=w.now()):
        return True
    return use_recovery_code(w.store, staff_id, code, now=w.now())


async def second_factor_post(request: Request) -> Response:
    w, ip = web(request), client_ip(request)
    read = await _login_form(request, "The form was too old: please log in again.")
    if isinstance(read, Response):
        return read
    form, nonce = read
    pending = text(form, "pending", 1000)
    staff = _pending_staff(request, pending, nonce)
    if staff is None:
        return _login_page(request, "The form was too old: please log in again.", 403)
    # every code counts, right or wrong, before it is checked: in the store, so every
    # `publisher serve` process (and a restart) shares the account's 5 per 5 minutes
    allowed = allow_staff_code(w.store, staff.id, now=w.now())
    if not allowed or not _check_code(request, staff.id, text(form, "code")):
        audit.record(w.store, staff.email, "failed second factor", ip=ip, now=w.now(),
                     aggregate=True)  # fmt: skip
        return _login_page(
            request, "That code is wrong or was used already.", 401,
            template="second_factor.html", staff=staff, pending=pending,
        )  # fmt: skip
    return _signed_in(request, staff)


def _pending_staff(request: Request, pending: str, nonce: str) -> Staff | None:
    """The account whose password this browser gave for the step now due, if still valid."""
    data = sessions_of(request).read("pending", pending, PENDING_MAX_AGE)
    if not data or len(data) != 3 or data[2] != nonce:
        return None
    staff = get_staff(web(request).store, int(data[0]))
    if staff is None or fingerprint(staff.password_hash) != data[1]:
        return None
    return staff


async def passkey_post(request: Request) -> Response:
    """A passkey log-in: alone (from the log-in page), or as the step after a password
    (then only a passkey of that account)."""
    w, ip = web(request), client_ip(request)
    read = await _login_form(request, "The form was too old: please try again.")
    if isinstance(read, Response):
        return read
    form, nonce = read
    pending = text(form, "pending", 1000)
    expected = _pending_staff(request, pending, nonce) if pending else None
    staff = check_assertion(request, form, nonce)
    if staff is None or (pending and (expected is None or expected.id != staff.id)):
        audit.record(w.store, expected.email if expected else "(passkey)", "failed passkey",
                     ip=ip, now=w.now(), aggregate=True)  # fmt: skip
        return _login_page(request, "That passkey was not accepted.", 401)
    return _signed_in(request, staff)


@action("viewer", enrol_ok=True)
async def logout(request: Request, admin: Admin, form: object) -> Response:
    end_session(admin.w.store, token=admin.nonce)  # the cookie is dead, wherever copied
    audit.record(
        admin.w.store, admin.staff.email, "logout", ip=client_ip(request), now=admin.w.now()
    )
    response = to(request, "admin/login")
    response.delete_cookie(COOKIE, path=cookie_path(request), httponly=True, samesite="strict")
    return response
