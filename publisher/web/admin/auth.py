"""Staff sessions (issue 19): the cookie (HttpOnly, SameSite=Strict, Secure over https)
holds a random token whose digest names a row of the store's staff_sessions; log-out, a
password change, an owner or the account's removal deletes the row, and a copied cookie is
dead with it. Every form's CSRF token is tied to the session's token.

`Sessions` signs what the browser carries between steps: the known-device cookie (the
lock-out exemption of an account's usual browser), the half-done log-in waiting for its
second factor, and a TOTP secret being set up."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from publisher.store.staff import Staff, second_factor_policy
from publisher.store.staff_access import SESSION_LIFETIME, StaffSession, session_of
from publisher.web.context import Web, web
from publisher.web.forms import MAX_FORM_BYTES, FormTooLarge, read_form, text
from publisher.web.security import fingerprint

COOKIE = "publisher_staff"
DEVICE_COOKIE = "publisher_device"
LOGIN_COOKIE = "publisher_login"  # binds the log-in form's CSRF token to this browser
SESSION_MAX_AGE = int(SESSION_LIFETIME.total_seconds())
DEVICE_MAX_AGE = 400 * 86400
# the admin pages: no script but the passkey one; they frame only our own sandboxed previews
ADMIN_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' https: data:; frame-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class Sessions:
    """Signed, expiring values of the staff pages (time from the injected clock)."""

    def __init__(self, secret: str, clock: Callable[[], datetime]) -> None:
        class _Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock().timestamp())

        self._serializer = URLSafeTimedSerializer(secret, salt="staff", signer=_Signer)

    def sign(self, purpose: str, *values: str | int) -> str:
        return str(self._serializer.dumps([purpose, *values]))

    def read(self, purpose: str, value: str | None, max_age: int) -> list[Any] | None:
        try:
            data = self._serializer.loads(value or "", max_age=max_age)
        except BadData:
            return None
        if isinstance(data, list) and data and data[0] == purpose:
            return data[1:]
        return None


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.staff_sessions
    return sessions


def needs_second_factor(policy: str, staff: Staff) -> bool:
    """The owners' policy: "everyone", or "senders" (those who may send: editors, owners)."""
    return policy == "everyone" or (policy == "senders" and staff.may("editor"))


@dataclass
class Admin:
    """The request's web state, signed-in staff member and session."""

    w: Web
    staff: Staff
    nonce: str  # the session's token: the CSRF binding
    request: Request
    session: StaffSession

    @functools.cached_property
    def csrf(self) -> str:
        # signed once a request: a campaign page has a form per listed item (hundreds)
        return self.w.tokens.form_token("staff", self.nonce)

    def page(
        self, template: str, title: str, *, status: int = 200, script: bool = False,
        **context: Any,
    ) -> Response:  # fmt: skip
        return render(
            self.request, template, title, status=status, script=script, admin=self, **context
        )

    def refuse(self, why: str) -> Response:
        return self.page("message.html", "Not allowed", status=403, paragraphs=[why])

    def message(self, title: str, *paragraphs: str, status: int = 200) -> Response:
        return self.page("message.html", title, status=status, paragraphs=list(paragraphs))


def base_of(request: Request) -> str:
    """Relative links work under any prefix the proxy strips (/news/admin/...)."""
    return "../" * (request.url.path.count("/") - 1)


def render(
    request: Request,
    template: str,
    title: str,
    *,
    status: int = 200,
    script: bool = False,
    **context: Any,
) -> HTMLResponse:
    """An admin page; `script`: it loads passkey.js, the only script /admin allows."""
    response = web(request).page(
        f"admin/{template}", title, status=status, base=base_of(request), script=script,
        **context,
    )  # fmt: skip
    policy = ADMIN_CSP + ("; script-src 'self'" if script else "")
    response.headers["content-security-policy"] = policy
    return response


def cookie_path(request: Request) -> str:
    """The staff cookies' Path: the dashboard's folder under the prefix the app is mounted
    at (`publisher serve --root-path /news`: /news/admin), never the whole host."""
    return request.scope.get("root_path", "").rstrip("/") + "/admin"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Strict; Secure over https (behind a proxy: X-Forwarded-Proto),
    except the log-in form's binding, which opens nothing by itself."""
    response.set_cookie(
        name, value, max_age=max_age, path=cookie_path(request), httponly=True, samesite="strict",
        secure=request.url.scheme == "https" and name != LOGIN_COOKIE,
    )  # fmt: skip


def signed_in(request: Request) -> Admin | None:
    w = web(request)
    token = request.cookies.get(COOKIE, "")
    found = session_of(w.store, token, now=w.now()) if token else None
    if found is None:
        return None
    return Admin(w, found[0], token, request, found[1])


Handler = Callable[..., Awaitable[Response]]


def to(request: Request, path: str) -> Response:
    return RedirectResponse(base_of(request) + path, status_code=303)


def to_login(request: Request) -> Response:
    return to(request, "admin/login")


def _gate(request: Request, role: str, enrol_ok: bool) -> Admin | Response:
    admin = signed_in(request)
    if admin is None:
        return to_login(request)
    if not enrol_ok and not admin.staff.has_second_factor:
        if needs_second_factor(second_factor_policy(admin.w.store), admin.staff):
            return to(request, "admin/account?notice=second-factor")
    return admin


def view(
    role: str, *, enrol_ok: bool = False
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A GET page for `role` and above; others are sent to log in, or refused. Staff the
    owners' policy requires a second factor of are sent to set one up first."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            admin = _gate(request, role, enrol_ok)
            if not isinstance(admin, Admin):
                return admin
            if not admin.staff.may(role):
                return admin.refuse(f"Your role ({admin.staff.role}) may not see this page.")
            return await handler(request, admin)

        return endpoint

    return wrap


def action(
    role: str, *, enrol_ok: bool = False, form_bytes: int = MAX_FORM_BYTES, files: int = 0
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A POST for `role` and above, carrying the session's CSRF token, or refused (403).
    `form_bytes`, `files`: a form bigger than 64 KiB or carrying uploads (the route's
    prefix must be in publisher.web.bounds.UPLOAD_LIMITS too)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            admin = _gate(request, role, enrol_ok)
            if not isinstance(admin, Admin):
                return admin
            try:
                form: FormData = await read_form(request, limit=form_bytes, files=files)
            except FormTooLarge:
                return admin.refuse("That request was too large.")
            if not admin.w.tokens.check_form(text(form, "csrf", 500), "staff", admin.nonce):
                return admin.refuse(
                    "This form was too old or did not come from this dashboard: nothing was "
                    "changed. Go back, reload the page and try again."
                )
            if not admin.staff.may(role):
                return admin.refuse(f"Your role ({admin.staff.role}) may not do this.")
            return await handler(request, admin, form)

        return endpoint

    return wrap


def raw(form: FormData, name: str, limit: int = 1000) -> str:
    """A password exactly as typed (no stripping: surrounding spaces are part of it)."""
    value = form.get(name)
    return value[: limit + 1] if isinstance(value, str) else ""


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def device_of(request: Request, email: str) -> str | None:
    """The known-device token of this browser for this account, if it has one."""
    data = sessions_of(request).read("device", request.cookies.get(DEVICE_COOKIE), DEVICE_MAX_AGE)
    if data and len(data) == 2 and data[0] == fingerprint(email.strip().lower()):
        return str(data[1])
    return None


__all__ = [
    "ADMIN_CSP",
    "COOKIE",
    "DEVICE_COOKIE",
    "DEVICE_MAX_AGE",
    "LOGIN_COOKIE",
    "SESSION_MAX_AGE",
    "Admin",
    "Sessions",
    "action",
    "base_of",
    "device_of",
    "needs_second_factor",
    "new_nonce",
    "raw",
    "render",
    "sessions_of",
    "set_cookie",
    "cookie_path",
    "signed_in",
    "to",
    "to_login",
    "view",
]
