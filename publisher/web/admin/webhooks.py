"""Outgoing webhooks in /admin (issue 22): owners add an endpoint (URL, events), see its
signing secret once (and make a new one), turn it off and on, and on its page see every
delivery and attempt and replay one delivery or every failed one since a time. Every change
is in the audit log; the secret never is."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from publisher.deliver.webhooks import BACKOFF, WebhookUrlInvalid, check_url
from publisher.store import audit, webhook_queue, webhooks
from publisher.store.outbox import EVENTS
from publisher.store.webhooks import EndpointNotFound
from publisher.web.admin.auth import Admin, action, to, view
from publisher.web.context import client_ip, in_thread
from publisher.web.forms import many, text

__all__ = [
    "create_post",
    "delete_post",
    "edit_post",
    "endpoint_page",
    "replay_failed_post",
    "replay_post",
    "rotate_post",
    "switch_post",
    "webhooks_page",
]

# "failed since": choices of the replay form, (label, how far back)
SINCE = (
    ("the last hour", timedelta(hours=1)),
    ("the last 6 hours", timedelta(hours=6)),
    ("the last day", timedelta(days=1)),
    ("the last 3 days", timedelta(days=3)),
    ("the last week", timedelta(days=7)),
    ("the last 30 days", timedelta(days=30)),
)
EVENT_WORDS = {
    "subscriber.confirmed": "A person confirmed their subscription",
    "subscriber.unsubscribed": "A person unsubscribed",
    "subscriber.bounced": "Mail to a person bounced",
    "subscriber.complained": "A person marked our email as spam",
    "subscriber.erased": "A person's data was erased",
    "edition.sent": "An edition was sent (with counts)",
    "broadcast.sent": "A broadcast was sent (with counts)",
    "post.published": "A post was published",
}


def _list(admin: Admin, *, problem: str = "", values: dict | None = None,
          status: int = 200, notice: str = "") -> Response:  # fmt: skip
    return admin.page(
        "webhooks.html", "Webhooks", status=status, problem=problem, notice=notice,
        endpoints=webhooks.list_endpoints(admin.w.store), events=EVENTS, words=EVENT_WORDS,
        values=values or {"url": "", "description": "", "events": list(EVENTS)},
    )  # fmt: skip


@view("owner")
@in_thread
def webhooks_page(request: Request, admin: Admin) -> Response:
    return _list(admin, notice=request.query_params.get("notice", "")[:300])


def _fields(admin: Admin, form: FormData) -> tuple[dict, str | None]:
    """The form's values and what is wrong with them (None: nothing)."""
    values: dict[str, Any] = {
        "url": text(form, "url", 2001),
        "description": text(form, "description", 201)[:200],
        "events": [e for e in many(form, "events") if e in EVENTS],
    }
    try:
        allow = admin.w.config.webhooks.allow_private_addresses
        values["url"] = check_url(values["url"], allow_private=allow)
    except WebhookUrlInvalid as exc:
        return values, f"The address was not accepted: {exc}."
    if not values["events"]:
        return values, "Choose at least one event to send."
    return values, None


@action("owner")
@in_thread
def create_post(request: Request, admin: Admin, form: FormData) -> Response:
    w = admin.w
    values, problem = _fields(admin, form)
    if problem:
        return _list(admin, problem=problem, values=values, status=400)
    found, _ = webhooks.create_endpoint(
        w.store, values["url"], values["events"], description=values["description"],
        by=admin.staff.email, now=w.now(),
    )  # fmt: skip
    _audit(request, admin, "webhook added", found.id, _host(found.url))
    return to(request, f"admin/webhooks/{found.id}")  # where its secret is shown, once


def _endpoint(admin: Admin, endpoint_id: int, *, notice: str = "", problem: str = "",
              status: int = 200) -> Response:  # fmt: skip
    w = admin.w
    try:
        found = webhooks.get_endpoint(w.store, endpoint_id)
    except EndpointNotFound:
        return admin.message("No such webhook", "There is no webhook with this number.", status=404)
    return admin.page(
        "webhook.html", f"Webhook {found.url}", status=status, endpoint=found,
        secret=webhooks.take_unseen_secret(w.store, found.id) or "",
        notice=notice, problem=problem, events=EVENTS, words=EVENT_WORDS, since=SINCE,
        deliveries=webhook_queue.deliveries(w.store, found.id),
        attempts=webhook_queue.attempts(w.store, found.id), backoff=BACKOFF,
    )  # fmt: skip


@view("owner")
@in_thread
def endpoint_page(request: Request, admin: Admin) -> Response:
    notice = request.query_params.get("notice", "")[:300]
    return _endpoint(admin, request.path_params["id"], notice=notice)


def _host(url: str) -> str:
    """What the audit log says of a URL: its host (a path or query may hold a receiver's
    own secret, as chat webhooks' do)."""
    return httpx.URL(url).host


def _done(request: Request, endpoint_id: int, notice: str) -> Response:
    return to(request, f"admin/webhooks/{endpoint_id}?notice={quote(notice)}")


def _audit(request: Request, admin: Admin, what: str, endpoint_id: int, detail: str = "") -> None:
    target = f"webhook {endpoint_id}" + (f": {detail}" if detail else "")
    audit.record(
        admin.w.store, admin.staff.email, what, target, ip=client_ip(request), now=admin.w.now()
    )


@action("owner")
@in_thread
def edit_post(request: Request, admin: Admin, form: FormData) -> Response:
    endpoint_id = request.path_params["id"]
    values, problem = _fields(admin, form)
    if problem:
        return _endpoint(admin, endpoint_id, problem=problem, status=400)
    try:
        webhooks.update_endpoint(
            admin.w.store, endpoint_id, url=values["url"], events=values["events"],
            description=values["description"],
        )  # fmt: skip
    except EndpointNotFound:
        return admin.message("No such webhook", "There is no webhook with this number.", status=404)
    _audit(request, admin, "webhook changed", endpoint_id, _host(values["url"]))
    return _done(request, endpoint_id, "Saved.")


@action("owner")
@in_thread
def switch_post(request: Request, admin: Admin, form: FormData) -> Response:
    endpoint_id, on = request.path_params["id"], text(form, "enabled", 3) == "yes"
    try:
        webhooks.set_enabled(admin.w.store, endpoint_id, on, now=admin.w.now())
    except EndpointNotFound:
        return admin.message("No such webhook", "There is no webhook with this number.", status=404)
    _audit(request, admin, "webhook turned on" if on else "webhook turned off", endpoint_id)
    return _done(request, endpoint_id, "Turned on: waiting events go out." if on else "Turned off.")


@action("owner")
@in_thread
def rotate_post(request: Request, admin: Admin, form: FormData) -> Response:
    endpoint_id = request.path_params["id"]
    try:
        webhooks.rotate_secret(admin.w.store, endpoint_id)
    except EndpointNotFound:
        return admin.message("No such webhook", "There is no webhook with this number.", status=404)
    _audit(request, admin, "webhook secret renewed", endpoint_id)
    return to(request, f"admin/webhooks/{endpoint_id}")  # the new secret shown there, once


@action("owner")
@in_thread
def replay_post(request: Request, admin: Admin, form: FormData) -> Response:
    endpoint_id, number = request.path_params["id"], text(form, "delivery", 20)
    delivery_id = int(number) if number.isdigit() else 0
    if not webhook_queue.replay(admin.w.store, endpoint_id, delivery_id, now=admin.w.now()):
        return _endpoint(
            admin, endpoint_id, problem="That delivery is being sent right now.", status=409
        )
    _audit(request, admin, "webhook replayed", endpoint_id, f"delivery {delivery_id}")
    return _done(request, endpoint_id, f"Delivery {delivery_id} will be sent again shortly.")


@action("owner")
@in_thread
def replay_failed_post(request: Request, admin: Admin, form: FormData) -> Response:
    endpoint_id, chosen = request.path_params["id"], text(form, "since", 40)
    back = dict(SINCE).get(chosen)
    if back is None:
        return _endpoint(admin, endpoint_id, problem="Choose how far back.", status=400)
    now = admin.w.now()
    count = webhook_queue.replay_failed_since(admin.w.store, endpoint_id, now - back, now=now)
    _audit(request, admin, "webhook failures replayed", endpoint_id, f"{count} since {chosen}")
    return _done(request, endpoint_id, f"{count} failed deliveries will be sent again shortly.")


@action("owner")
@in_thread
def delete_post(request: Request, admin: Admin, form: FormData) -> Response:
    endpoint_id = request.path_params["id"]
    webhooks.delete_endpoint(admin.w.store, endpoint_id)
    _audit(request, admin, "webhook removed", endpoint_id)
    return to(request, f"admin/webhooks?notice={quote('The webhook was removed.')}")
