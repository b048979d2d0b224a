"""Each staff member's own account (issue 19): their live sessions (end any of them),
changing their password (every other session ends), and the TOTP second factor: set up
with a QR code (SVG by segno, no script), confirmed with a first code, then ten single-use
recovery codes shown once."""

from __future__ import annotations

import base64
import io

import pyotp
import segno
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from publisher.store import audit
from publisher.store.passkeys import list_passkeys
from publisher.store.staff import (
    StaffError,
    check_totp,
    second_factor_policy,
    set_password,
    set_totp,
)
from publisher.store.staff_access import (
    end_session,
    list_sessions,
    new_recovery_codes,
    open_session,
)
from publisher.web.admin.auth import (
    COOKIE,
    SESSION_MAX_AGE,
    Admin,
    action,
    needs_second_factor,
    raw,
    sessions_of,
    set_cookie,
    to,
    view,
)
from publisher.web.admin.passkeys import registration
from publisher.web.context import client_ip
from publisher.web.forms import text

SETUP_MAX_AGE = 1800  # the QR code page may stay open half an hour
NOTICES = {
    "second-factor": "The owners require a second factor: set one up to use the dashboard.",
    "password": "Your password was changed; your other sessions were ended.",
    "ended": "That session was ended.",
    "totp-off": "The authenticator app was turned off.",
    "passkey": "The passkey was added.",
    "passkey-removed": "The passkey was removed.",
}


@view("viewer", enrol_ok=True)
async def account_page(request: Request, admin: Admin) -> Response:
    w = admin.w
    notice = NOTICES.get(request.query_params.get("notice", ""), "")
    options, challenge = registration(admin)
    return admin.page(
        "account.html", "Your account", notice=notice, script=True,
        sessions=list_sessions(w.store, admin.staff.id, now=w.now()),
        current=admin.session.id, passkeys=list_passkeys(w.store, admin.staff.id),
        options=options, challenge=challenge,
        required=needs_second_factor(second_factor_policy(w.store), admin.staff),
    )  # fmt: skip


@action("viewer", enrol_ok=True)
async def end_session_post(request: Request, admin: Admin, form: FormData) -> Response:
    w = admin.w
    if end_session(w.store, session_id=text(form, "session", 100), staff_id=admin.staff.id):
        audit.record(w.store, admin.staff.email, "session ended", admin.staff.email,
                     ip=client_ip(request), now=w.now())  # fmt: skip
    return to(request, "admin/account?notice=ended")


@action("viewer", enrol_ok=True)
async def password_post(request: Request, admin: Admin, form: FormData) -> Response:
    w, new = admin.w, raw(form, "new")
    if new != raw(form, "confirm"):
        return admin.message("Password not changed", "The two new passwords differ.", status=400)
    try:
        await run_in_threadpool(
            set_password, w.store, admin.staff.id, new, current=raw(form, "current")
        )
    except StaffError as exc:
        return admin.message("Password not changed", f"Not changed: {exc}.", status=400)
    now, ip = w.now(), client_ip(request)
    audit.record(w.store, admin.staff.email, "password changed", ip=ip, now=now)
    # every session ended with the old password; this browser gets a fresh one
    token = open_session(w.store, admin.staff.id, ip=ip,
                         user_agent=request.headers.get("user-agent"), now=now)  # fmt: skip
    response = to(request, "admin/account?notice=password")
    set_cookie(request, response, COOKIE, token, SESSION_MAX_AGE)
    return response


def qr_data_uri(uri: str) -> str:
    """The otpauth:// URI as an SVG QR code in a data: URI (the CSP allows data: images)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def _setup_page(admin: Admin, secret: str, error: str = "", status: int = 200) -> Response:
    org = admin.w.config.organisation.name
    uri = pyotp.TOTP(secret).provisioning_uri(name=admin.staff.email, issuer_name=org)
    signed = sessions_of(admin.request).sign("totp", admin.staff.id, admin.nonce, secret)
    return admin.page(
        "totp.html", "Set up an authenticator app", status=status, error=error,
        qr=qr_data_uri(uri), secret=secret, signed=signed,
    )  # fmt: skip


@action("viewer", enrol_ok=True)
async def totp_start(request: Request, admin: Admin, form: FormData) -> Response:
    return _setup_page(admin, pyotp.random_base32())


@action("viewer", enrol_ok=True)
async def totp_confirm(request: Request, admin: Admin, form: FormData) -> Response:
    w = admin.w
    data = sessions_of(request).read("totp", text(form, "signed", 1000), SETUP_MAX_AGE)
    if not data or data[0] != admin.staff.id or data[1] != admin.nonce:
        return admin.refuse("This set-up page was too old: start again.")
    secret = str(data[2])
    set_totp(w.store, admin.staff.id, secret)
    if not check_totp(w.store, admin.staff.id, text(form, "code", 20), now=w.now()):
        set_totp(w.store, admin.staff.id, None)
        return _setup_page(admin, secret, "That code is wrong: try the newest one.", 400)
    codes = new_recovery_codes(w.store, admin.staff.id)
    audit.record(w.store, admin.staff.email, "second factor added", "authenticator app",
                 ip=client_ip(request), now=w.now())  # fmt: skip
    return admin.page("codes.html", "Your recovery codes", codes=codes)


@action("viewer", enrol_ok=True)
async def codes_post(request: Request, admin: Admin, form: FormData) -> Response:
    if not admin.staff.has_second_factor:
        return to(request, "admin/account")
    codes = new_recovery_codes(admin.w.store, admin.staff.id)
    audit.record(admin.w.store, admin.staff.email, "recovery codes renewed",
                 ip=client_ip(request), now=admin.w.now())  # fmt: skip
    return admin.page("codes.html", "Your recovery codes", codes=codes)


@action("viewer", enrol_ok=True)
async def totp_off(request: Request, admin: Admin, form: FormData) -> Response:
    w = admin.w
    policy = second_factor_policy(w.store)
    if needs_second_factor(policy, admin.staff) and not admin.staff.has_passkey:
        return admin.refuse("The owners require a second factor for your account.")
    set_totp(w.store, admin.staff.id, None)
    audit.record(w.store, admin.staff.email, "second factor removed", "authenticator app",
                 ip=client_ip(request), now=w.now())  # fmt: skip
    return to(request, "admin/account?notice=totp-off")
