"""Staff sessions: a signed cookie (itsdangerous; HttpOnly, SameSite=Strict, Secure over
https, 12 hours) naming the account, bound to its password hash (changing or removing the
account ends its sessions) and to a random nonce the CSRF token of every form is tied to."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from publisher.store.staff import Staff, get_staff
from publisher.web.context import Web, web
from publisher.web.forms import FormTooLarge, read_form, text
from publisher.web.security import fingerprint

COOKIE = "publisher_staff"
SESSION_MAX_AGE = 12 * 3600
# the admin pages: no script; they frame only our own sandboxed previews
ADMIN_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' https: data:; frame-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class Sessions:
    def __init__(self, secret: str, clock: Callable[[], datetime]) -> None:
        class _Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock().timestamp())

        self._serializer = URLSafeTimedSerializer(secret, salt="staff-session", signer=_Signer)

    def issue(self, staff: Staff) -> tuple[str, str]:
        nonce = secrets.token_urlsafe(16)
        return str(
            self._serializer.dumps([staff.id, fingerprint(staff.password_hash), nonce])
        ), nonce

    def read(self, cookie: str | None) -> tuple[int, str, str] | None:
        try:
            data = self._serializer.loads(cookie or "", max_age=SESSION_MAX_AGE)
        except BadData:
            return None
        if isinstance(data, list) and len(data) == 3 and isinstance(data[0], int):
            return data[0], str(data[1]), str(data[2])
        return None


@dataclass
class Admin:
    """The request's web state, signed-in staff member and CSRF token."""

    w: Web
    staff: Staff
    nonce: str
    request: Request

    @property
    def csrf(self) -> str:
        return self.w.tokens.form_token("staff", self.nonce)

    def page(self, template: str, title: str, *, status: int = 200, **context: Any) -> Response:
        return render(self.request, template, title, status=status, admin=self, **context)

    def refuse(self, why: str) -> Response:
        return self.page("message.html", "Not allowed", status=403, paragraphs=[why])


def base_of(request: Request) -> str:
    """Relative links work under any prefix the proxy strips (/news/admin/...)."""
    return "../" * (request.url.path.count("/") - 1)


def render(
    request: Request, template: str, title: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    response = web(request).page(
        f"admin/{template}", title, status=status, base=base_of(request), **context
    )
    response.headers["content-security-policy"] = ADMIN_CSP
    return response


def signed_in(request: Request) -> Admin | None:
    w = web(request)
    sessions: Sessions = request.app.state.staff_sessions
    data = sessions.read(request.cookies.get(COOKIE))
    if data is None:
        return None
    staff = get_staff(w.store, data[0])
    if staff is None or fingerprint(staff.password_hash) != data[1]:
        return None
    return Admin(w, staff, data[2], request)


Handler = Callable[..., Awaitable[Response]]


def to_login(request: Request) -> Response:
    return RedirectResponse(base_of(request) + "admin/login", status_code=303)


def view(role: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A GET page for `role` and above; others are sent to log in, or refused."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            admin = signed_in(request)
            if admin is None:
                return to_login(request)
            if not admin.staff.may(role):
                return admin.refuse(f"Your role ({admin.staff.role}) may not see this page.")
            return await handler(request, admin)

        return endpoint

    return wrap


def action(role: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A POST for `role` and above, carrying the session's CSRF token, or refused (403)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            admin = signed_in(request)
            if admin is None:
                return to_login(request)
            try:
                form: FormData = await read_form(request)
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
