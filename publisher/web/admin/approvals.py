"""Approval in /admin (issue 21): the Approvals page (what waits, linking to where it is
approved), approving a campaign's next or held edition on its campaign page, and the send
permission an owner grants to an editor on the staff page. The rules are
publisher/deliver/approval.py's; this module only reads forms and says what happened."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.compose.edition import Edition
from publisher.deliver import approval
from publisher.errors import PublisherError
from publisher.render.email import RenderedEdition
from publisher.schedule.steering import preview_edition
from publisher.store import approvals
from publisher.store.curation import get_curation
from publisher.store.staff import Staff, find_staff
from publisher.web.admin.auth import Admin, action, base_of, view
from publisher.web.context import Web, client_ip, in_thread
from publisher.web.forms import text

Prepared = tuple[Edition, RenderedEdition] | None


def _current(
    w: Web, campaign: str, prepared: Prepared
) -> tuple[approval.Version | None, approval.Held | None]:
    """What an approval on the campaign page is for: the edition composed and not sent
    (held, or approved and about to go), else the next edition's preview."""
    held = approval.composed_edition(w.store, campaign)
    if held is not None:
        return held.version, held
    if prepared is None:
        return None, None
    editor = get_curation(w.store, campaign).changed_by
    return approval.edition_version(prepared[0], prepared[1].subject, editor=editor), None


def edition_context(w: Web, campaign: str, prepared: Prepared, staff: Staff) -> dict[str, Any]:
    """What the campaign page's approval part shows (nothing while the rule is off)."""
    if not approval.approval_required(w.config, "edition"):
        return {}
    current, held = _current(w, campaign, prepared)
    state = None
    if current is not None:
        state = approvals.find_approval(w.store, "edition", campaign, current.version)
    may = approval.may_send(w.store, staff) and current is not None
    mine = current is not None and staff.email == current.editor
    return {"approval": {"current": current, "held": held, "state": state, "may": may and not mine}}


def held_words(held: approval.Held) -> str:
    """What the overview says of a held edition: it waits, or who refused it and why."""
    state = held.state
    if state is not None and state.status == "refused":
        return f"{held.version.label} was refused by {state.decided_by}: {state.reason}"
    return f"{held.version.label} waits for approval"


def overview_alerts(w: Web) -> list[tuple[str, str]]:
    """(text, link) of each edition that waits for approval, for the overview's alerts."""
    return [
        (held_words(h), f"admin/campaigns/{h.version.subject}#approval")
        for h in approval.held_editions(w.config, w.store)
    ]


def _to(request: Request, path: str, notice: str) -> Response:
    # Post/Redirect/Get: a reload never repeats the action; the notice rides in the query
    url = f"{base_of(request)}admin/{path}?notice={quote(notice)}"
    return RedirectResponse(url, status_code=303)


def _seen(request: Request, admin: Admin, form: FormData, back: str) -> approval.Version | Response:
    """The version of the campaign's edition the staff member saw (the form's), or the
    answer saying why there is none (no such campaign, nothing to decide, it changed)."""
    w, name = admin.w, request.path_params["name"]
    if not any(c.name == name for c in w.config.campaigns):
        return admin.message("No such campaign", name, status=404)
    try:
        prepared = preview_edition(w.config, w.store, name, now=w.now())
    except PublisherError as exc:
        return _to(request, back, f"The next edition cannot be made: {exc}")
    current, _held = _current(w, name, prepared)
    if current is None:
        return _to(request, back, "Nothing new: there is no edition to decide on.")
    if text(form, "version", 64) != current.version:
        return _to(request, back, "The edition changed since you looked: check it again.")
    return current


@action("editor")
@in_thread
def approve_edition_post(request: Request, admin: Admin, form: FormData) -> Response:
    """Approve the version of the edition the approver saw (a change since: look again)."""
    w, back = admin.w, f"campaigns/{request.path_params['name']}"
    current = _seen(request, admin, form, back)
    if isinstance(current, Response):
        return current
    try:
        approval.approve(w.store, current, admin.staff, now=w.now(), ip=client_ip(request))
    except (approval.MayNotSend, approval.SelfApproval) as exc:
        return _to(request, back, f"Not approved: {exc}")
    return _to(request, back, f"Approved {current.label}: it goes at its slot as it is now.")


@action("editor")
@in_thread
def refuse_edition_post(request: Request, admin: Admin, form: FormData) -> Response:
    """Refuse the version of the edition the reviewer saw, saying why: it stays held
    (nothing goes out) until someone approves it or a changed version."""
    w, name = admin.w, request.path_params["name"]
    back = "approvals" if text(form, "back", 10) == "approvals" else f"campaigns/{name}"
    current = _seen(request, admin, form, back)
    if isinstance(current, Response):
        return current
    reason = " ".join(text(form, "reason", 500).split())
    if not reason:
        return _to(request, back, f"Not refused: say why {current.label} is refused.")
    try:
        approval.refuse(
            w.store, current, admin.staff, now=w.now(), ip=client_ip(request), reason=reason
        )
    except (approval.MayNotSend, approval.SelfApproval) as exc:
        return _to(request, back, f"Not refused: {exc}")
    return _to(request, back, f"Refused {current.label}: it is not sent. Reason: {reason}")


@view("viewer")
@in_thread
def approvals_page(request: Request, admin: Admin) -> Response:
    w = admin.w
    return admin.page(
        "approvals.html",
        "Approvals",
        held=approval.held_editions(w.config, w.store),
        waiting=approvals.waiting_approvals(w.store),
        rule=w.config.approval,
        may=approval.may_send(w.store, admin.staff),
        notice=request.query_params.get("notice", "")[:300],
    )


@action("owner")
@in_thread
def send_permission_post(request: Request, admin: Admin, form: FormData) -> Response:
    """An owner grants or takes an editor's permission to send."""
    w, allowed = admin.w, text(form, "allow", 5) == "yes"
    target = find_staff(w.store, text(form, "email"))
    if target is None:
        return _to(request, "staff", "No such staff account.")
    try:
        approval.set_send_permission(
            w.store, target, allowed, by=admin.staff.email, now=w.now(), ip=client_ip(request)
        )
    except approval.PermissionRefused as exc:
        return _to(request, "staff", f"Not changed: {exc}")
    if allowed:
        return _to(request, "staff", f"{target.email} may now send.")
    return _to(request, "staff", f"{target.email} may no longer send.")
