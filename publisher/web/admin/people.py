"""Subscribers (counts, growth, search, one person's history, CSV export), the audit log
and the staff accounts."""

from __future__ import annotations

import csv
import io
from urllib.parse import quote
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.store import audit, people_queries, subscriber_record
from publisher.store.approvals import send_permissions
from publisher.store.staff import (
    POLICIES,
    ROLES,
    StaffError,
    account_address,
    editors_may_export,
    find_staff,
    list_staff,
    remove_staff,
    second_factor_policy,
    set_editors_may_export,
    set_second_factor_policy,
)
from publisher.store.staff_access import end_sessions, list_sessions
from publisher.store.subscribers import find_subscriber
from publisher.subscribers.consent import resubscribe_refusal
from publisher.support.screen import count, spreadsheet_safe
from publisher.web.admin.auth import Admin, action, base_of, view
from publisher.web.admin.charts import bar_chart
from publisher.web.admin.links import send_invitation
from publisher.web.admin.roster import offered_topics
from publisher.web.context import client_ip, in_thread
from publisher.web.forms import text


@view("viewer")
@in_thread
def subscribers_page(request: Request, admin: Admin) -> Response:
    w = admin.w
    statuses, topics = people_queries.subscriber_counts(w.store)
    zone = w.config.organisation.timezone  # the days are the organisation's, not UTC's
    growth = people_queries.growth(w.store, now=w.now(), zone=ZoneInfo(zone))
    labels = [f"{day:%m-%d}" for day, _, _ in growth]
    new, totals = [n for _, n, _ in growth], [t for _, _, t in growth]
    per_day = f"New subscribers per day ({zone})"
    charts = [
        (per_day, bar_chart("growth-new", per_day, labels, new), new),
        (
            "Subscribers in total",
            bar_chart("growth-total", "Subscribers in total", labels, totals),
            totals,
        ),
    ]
    query = request.query_params.get("q", "")[:200]
    found = people_queries.search_subscribers(w.store, query) if query.strip() else None
    return admin.page(
        "subscribers.html", "Subscribers", statuses=statuses, topics=topics, growth=growth,
        charts=charts, query=query, found=found, total=sum(statuses.values()),
        growth_days=[day for day, _, _ in growth],
        may_export=may_export(admin),
    )  # fmt: skip


def may_export(admin: Admin) -> bool:
    """Owners export; editors too once an owner allows it (the staff page)."""
    return admin.staff.may("owner") or (
        admin.staff.may("editor") and editors_may_export(admin.w.store)
    )


@view("viewer")
@in_thread
def subscriber_page(request: Request, admin: Admin) -> Response:
    w = admin.w
    subscriber = find_subscriber(w.store, id=int(request.path_params["id"]))
    if subscriber is None or subscriber.email.endswith("@erased.invalid"):
        return admin.page("message.html", "No such subscriber", status=404, paragraphs=[])
    return admin.page(
        "subscriber.html", subscriber.email, subscriber=subscriber,
        notice=request.query_params.get("notice", "")[:300],
        refusal=resubscribe_refusal(w.store, subscriber),
        choices=offered_topics(w.topics, subscriber),
        history=subscriber_record.history(w.store, subscriber.id),
        paused_until=subscriber_record.paused_until(w.store, subscriber.id, now=w.now()),
    )  # fmt: skip


@action("editor")
@in_thread
def export_post(request: Request, admin: Admin, form: FormData) -> Response:
    w = admin.w
    if not may_export(admin):
        return admin.refuse("Only owners may export subscribers, unless an owner allows editors.")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    rows = 0
    for row in people_queries.export_rows(w.store):
        writer.writerow([spreadsheet_safe(cell) for cell in row])
        rows += 1
    audit.record(
        w.store, admin.staff.email, "export", f"{rows - 1} subscribers", ip=client_ip(request),
        now=w.now(),
    )  # fmt: skip
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="subscribers.csv"'},
    )


@view("editor")
@in_thread
def audit_page(request: Request, admin: Admin) -> Response:
    return admin.page("audit.html", "Audit log", entries=audit.recent(admin.w.store))


@view("owner")
@in_thread
def staff_page(request: Request, admin: Admin) -> Response:
    w = admin.w
    notice = request.query_params.get("notice", "")[:300]
    accounts = list_staff(w.store)
    sessions = {a.id: len(list_sessions(w.store, a.id, now=w.now())) for a in accounts}
    return admin.page(
        "staff.html", "Staff", accounts=accounts, roles=ROLES, notice=notice,
        sessions=sessions, policy=second_factor_policy(w.store), policies=POLICIES,
        editors_export=editors_may_export(w.store), senders=send_permissions(w.store),
    )  # fmt: skip


def _to_staff(request: Request, notice: str) -> Response:
    return RedirectResponse(
        f"{base_of(request)}admin/staff?notice={quote(notice)}", status_code=303
    )


@action("owner")
async def staff_invite(request: Request, admin: Admin, form: FormData) -> Response:
    """Owners invite; the invitee chooses their own password through the emailed link."""
    w, email, role = admin.w, text(form, "email"), text(form, "role", 20)
    try:
        problem = await send_invitation(w, email, role)
    except StaffError as exc:
        return _to_staff(request, f"Not invited: {exc}")
    target = f"{account_address(email)} as {role}"
    audit.record(
        w.store, admin.staff.email, "staff invited", target, ip=client_ip(request), now=w.now()
    )
    if problem:
        return _to_staff(request, f"The invitation of {target} could not be sent: {problem}")
    return _to_staff(request, f"Invited {target}: the link works for 3 days.")


@action("owner")
@in_thread
def staff_remove(request: Request, admin: Admin, form: FormData) -> Response:
    w = admin.w
    try:
        removed = remove_staff(w.store, text(form, "email"))
    except StaffError as exc:
        return _to_staff(request, f"Not removed: {exc}")
    audit.record(
        w.store, admin.staff.email, "staff removed", removed.email, ip=client_ip(request),
        now=w.now(),
    )  # fmt: skip
    return _to_staff(request, f"Removed {removed.email}.")


@action("owner")
async def staff_end_sessions(request: Request, admin: Admin, form: FormData) -> Response:
    """Owners end anyone's sessions (their own included: then they log in again)."""
    w = admin.w
    target = find_staff(w.store, text(form, "email"))
    if target is None:
        return _to_staff(request, "No such staff account.")
    ended = end_sessions(w.store, target.id)
    audit.record(
        w.store, admin.staff.email, "sessions ended", f"{target.email}: {ended}",
        ip=client_ip(request), now=w.now(),
    )  # fmt: skip
    return _to_staff(request, f"Ended {count(ended, 'session')} of {target.email}.")


@action("owner")
async def staff_policy(request: Request, admin: Admin, form: FormData) -> Response:
    w, policy = admin.w, text(form, "policy", 20)
    try:
        set_second_factor_policy(w.store, policy)
    except StaffError as exc:
        return _to_staff(request, f"Not changed: {exc}")
    audit.record(
        w.store, admin.staff.email, "second factor policy", policy, ip=client_ip(request),
        now=w.now(),
    )  # fmt: skip
    return _to_staff(request, f"Second factor required: {POLICY_WORDS[policy]}.")


POLICY_WORDS = {"off": "of nobody", "senders": "of editors and owners", "everyone": "of everyone"}


@action("owner")
@in_thread
def staff_export_policy(request: Request, admin: Admin, form: FormData) -> Response:
    w, allowed = admin.w, text(form, "editors_export", 10) == "yes"
    set_editors_may_export(w.store, allowed)
    audit.record(
        w.store, admin.staff.email, "export policy", "editors may export" if allowed else
        "owners only", ip=client_ip(request), now=w.now(),
    )  # fmt: skip
    return _to_staff(
        request, "Editors may now export subscribers." if allowed else "Only owners may export."
    )
