"""API keys (issue 22): owners make keys for the JSON API (a name, scopes or the public
sign-up kind, an optional expiry), see each key's secret ONCE on the page that made it
(only its hash is kept; it is never put in an address), see when each was last used, and
revoke them. Every change is audited."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from publisher.store import api_keys, audit
from publisher.web.admin.auth import Admin, action, to, view
from publisher.web.api.scopes import SCOPES, check_scopes
from publisher.web.context import client_ip, in_thread
from publisher.web.forms import text


def _listing(admin: Admin, *, status: int = 200, **extra: Any) -> Response:
    context = {"problem": "", "made": None, "token": "", "notice": "", "name": ""} | extra
    return admin.page(
        "api_keys.html", "API keys", status=status, keys=api_keys.list_keys(admin.w.store),
        scopes=SCOPES, now=admin.w.now(), **context,
    )  # fmt: skip


@view("owner")
@in_thread
def keys_page(request: Request, admin: Admin) -> Response:
    notice = {"revoked": "The key was revoked: it no longer works."}
    return _listing(admin, notice=notice.get(request.query_params.get("notice", ""), ""))


def _expiry(admin: Admin, value: str) -> datetime | None:
    """The end of the chosen day in the organisation's zone (ValueError: not a later day)."""
    if not value:
        return None
    zone = ZoneInfo(admin.w.config.organisation.timezone)
    moment = datetime.combine(date.fromisoformat(value), time(23, 59), zone)
    if moment <= admin.w.now():
        raise ValueError("Choose a day after today for the key to expire, or none.")
    return moment


@action("owner")
@in_thread
def create_post(request: Request, admin: Admin, form: FormData) -> Response:
    w, name = admin.w, text(form, "name", 101).strip()
    kind = "signup" if text(form, "kind") == "signup" else "scoped"
    chosen = [s for s in form.getlist("scopes") if isinstance(s, str)]
    try:
        if not name or len(name) > 100:
            raise ValueError("Give the key a name of up to 100 characters (what it is for).")
        scopes = check_scopes(kind, [] if kind == "signup" else chosen)
        expires = _expiry(admin, text(form, "expires", 20))
    except ValueError as exc:
        return _listing(admin, problem=str(exc), name=name[:100], status=400)
    key, token = api_keys.create_key(
        w.store, name, kind=kind, scopes=scopes, created_by=admin.staff.email, now=w.now(),
        expires_at=expires,
    )  # fmt: skip
    audit.record(
        w.store, admin.staff.email, "api key made", f"{key.name} ({key.prefix})",
        ip=client_ip(request), now=w.now(),
    )  # fmt: skip
    return _listing(admin, made=key, token=token)  # shown once: never stored, never redirected


@action("owner")
@in_thread
def revoke_post(request: Request, admin: Admin, form: FormData) -> Response:
    w, number = admin.w, text(form, "key", 20)
    key = api_keys.revoke_key(w.store, int(number) if number.isdigit() else 0, now=w.now())
    if key is None:
        return _listing(admin, problem="There is no such key.", status=404)
    audit.record(
        w.store, admin.staff.email, "api key revoked", f"{key.name} ({key.prefix})",
        ip=client_ip(request), now=w.now(),
    )  # fmt: skip
    return to(request, "admin/api-keys?notice=revoked")


__all__ = ["create_post", "keys_page", "revoke_post"]
