"""Sending a broadcast from /admin (issue 21): send now or schedule at a local time, both
through a final confirmation page naming how many people and which audience; cancel a
schedule; ask for and give the second staff member's approval. Sending is the most
consequential thing staff do, so every POST that starts or schedules a send checks the
send permission (`approval.require_may_send`) itself, the version confirmed is the
version sent, and the send path checks the approval rule again (`require_approved`).
Send now is claimed before the answer and runs after it, through the same function as the
API's (deliver.broadcasts.send_broadcast_now); the broadcast's page shows how it went.
All audited."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from publisher.deliver import approval
from publisher.errors import PublisherError
from publisher.store import approvals, audit, broadcasts
from publisher.store.broadcasts import Broadcast
from publisher.web.admin.auth import Admin, action, to
from publisher.web.admin.broadcast_form import parse_when
from publisher.web.admin.broadcasts import audience_words, count_words, missing, reach, reach_words
from publisher.web.admin.posts import zone_of
from publisher.web.context import client_ip, in_thread
from publisher.web.forms import text
from publisher.web.notices import later

log = logging.getLogger(__name__)


def approval_context(admin: Admin, broadcast: Broadcast) -> dict[str, Any]:
    """Whether the rule asks for a second approver, where this version stands (asked, by
    whom, approved or refused) and whether this staff member may approve it."""
    w = admin.w
    if not approval.approval_required(w.config, "broadcast"):
        return {"approval_on": False}
    current = approval.broadcast_version(w.store, broadcast.id)
    found = (
        approvals.find_approval(w.store, "broadcast", current.subject, current.version)
        if current
        else None
    )
    approved = found is not None and found.status == "approved"
    me = admin.staff.email
    may_approve = (
        not approved
        and approval.may_send(w.store, admin.staff)
        and me not in (found.requested_by if found else None, current.editor if current else None)
    )
    note = "" if approved else "a second staff member with the send permission approves it."
    return {
        "approval_on": True, "approved": approved, "approval": found,
        "approval_note": note, "may_approve": may_approve,
    }  # fmt: skip


def _checked(
    admin: Admin, form: FormData, broadcast_id: int
) -> tuple[Broadcast, datetime | None] | Response:
    """The broadcast as confirmed (its version unchanged since), the time asked for (None:
    now), or the page saying why not. The send permission is checked first, on every POST."""
    w = admin.w
    try:
        approval.require_may_send(w.store, admin.staff)
    except approval.MayNotSend as exc:
        return admin.refuse(f"{exc}.")
    broadcast = broadcasts.get_broadcast(w.store, broadcast_id)
    if broadcast is None:
        return missing(admin)
    if broadcast.status not in broadcasts.EDITABLE:
        return admin.message("Not sent", f"This broadcast is {broadcast.status}.", status=409)
    if text(form, "version", 20) != str(broadcast.version):
        return admin.message(
            "Not sent", "Someone changed this broadcast meanwhile: look at it again.",
            status=409,
        )  # fmt: skip
    if text(form, "when", 10) != "later":
        return broadcast, None
    moment = parse_when(text(form, "send_at", 40), zone_of(admin))
    if moment is None or moment <= w.now():
        return admin.message("Not scheduled", "Give a date and time in the future.", status=400)
    return broadcast, moment


@action("editor")
@in_thread
def confirm_post(request: Request, admin: Admin, form: FormData) -> Response:
    """The final question: "Send “Vote tomorrow” to 1,204 people following labor, except
    housing?", and the one button that does it."""
    found = _checked(admin, form, request.path_params["id"])
    if isinstance(found, Response):
        return found
    broadcast, moment = found
    if moment is None:  # send now: only what may go now (a schedule waits for it)
        try:
            approval.require_approved(admin.w.config, admin.w.store, "broadcast", broadcast.id)
        except approval.NotApproved as exc:
            return admin.message("Not sent", str(exc), status=409)
    context = approval_context(admin, broadcast)
    count = reach(admin, broadcast.draft.audience)
    return admin.page(
        "broadcast_confirm.html", "Confirm", broadcast=broadcast, send_at=moment,
        people=count_words(count), audience=audience_words(broadcast.draft.audience),
        reach_text=reach_words(count, broadcast.draft.audience),
        send_at_value=text(form, "send_at", 40), **context,
    )  # fmt: skip


@action("editor")
@in_thread
def send_post(request: Request, admin: Admin, form: FormData) -> Response:
    """Send now: claimed before the answer (what stops it going is said here), sent after
    it; the page then shows it sending, then sent or failed. The same function as the
    API's send now: deliver.broadcasts.send_broadcast_now."""
    from publisher.deliver.broadcasts import send_broadcast_now

    found = _checked(admin, form, request.path_params["id"])
    if isinstance(found, Response):
        return found
    broadcast, w, by = found[0], admin.w, admin.staff.email
    try:
        claimed, send_after = send_broadcast_now(
            w.config, w.store, broadcast.id, by=by, version=broadcast.version, clock=w.now
        )
    except PublisherError as exc:  # not approved, cannot go, or another request has it
        return admin.message("Not sent", str(exc), status=409)
    target = f"broadcast {claimed.id} ({claimed.draft.name}) version {broadcast.version}"
    audit.record(w.store, by, "broadcast-send", target, ip=client_ip(request), now=w.now())
    response = to(request, f"admin/broadcasts/{claimed.id}?done=sending")
    response.background = later(w, send_after)
    return response


@action("editor")
@in_thread
def resume_post(request: Request, admin: Admin, form: FormData) -> Response:
    """Finish a send that stopped (a crash, a failure): as `publisher broadcast send
    --resume`, nobody who has it gets it again. After the answer, like send now."""
    from publisher.deliver.broadcasts import RESUMABLE, resume_broadcast

    w, by = admin.w, admin.staff.email
    try:
        approval.require_may_send(w.store, admin.staff)
    except approval.MayNotSend as exc:
        return admin.refuse(f"{exc}.")
    broadcast = broadcasts.get_broadcast(w.store, request.path_params["id"])
    if broadcast is None:
        return missing(admin)
    if broadcast.status not in RESUMABLE:
        return admin.message(
            "Nothing to resume", f"This broadcast is {broadcast.status}.", status=409
        )
    target = f"broadcast {broadcast.id} ({broadcast.draft.name})"
    audit.record(w.store, by, "broadcast-resume", target, ip=client_ip(request), now=w.now())

    def work() -> None:
        try:
            resume_broadcast(w.config, w.store, broadcast.id, by=by, now=w.now())
        except PublisherError as exc:  # the page shows the broadcast's status
            log.warning("broadcast %s not resumed: %s", broadcast.id, exc)

    response = to(request, f"admin/broadcasts/{broadcast.id}?done=resuming")
    response.background = later(w, work)
    return response


@action("editor")
@in_thread
def schedule_post(request: Request, admin: Admin, form: FormData) -> Response:
    found = _checked(admin, form, request.path_params["id"])
    if isinstance(found, Response):
        return found
    broadcast, moment = found
    if moment is None:
        return admin.message("Not scheduled", "Give a date and time in the future.", status=400)
    w = admin.w
    try:
        done = broadcasts.schedule_broadcast(
            w.store, broadcast.id, moment, version=broadcast.version, by=admin.staff.email,
            now=w.now(),
        )  # fmt: skip
    except (broadcasts.BroadcastConflict, broadcasts.BroadcastLocked) as exc:
        return admin.message("Not scheduled", str(exc), status=409)
    target = f"broadcast {done.id} ({done.draft.name}) at {moment:%Y-%m-%d %H:%M} UTC"
    audit.record(
        w.store, admin.staff.email, "broadcast-schedule", target, ip=client_ip(request),
        now=w.now(),
    )  # fmt: skip
    return to(request, f"admin/broadcasts/{done.id}?done=scheduled")


@action("editor")
@in_thread
def cancel_post(request: Request, admin: Admin, form: FormData) -> Response:
    """A scheduled broadcast back to a draft (cancelling never sends: any editor may)."""
    w, broadcast_id = admin.w, request.path_params["id"]
    try:
        done = broadcasts.cancel_broadcast(w.store, broadcast_id, by=admin.staff.email, now=w.now())
    except broadcasts.BroadcastNotFound:
        return missing(admin)
    except broadcasts.BroadcastLocked as exc:
        return admin.message("Not cancelled", str(exc), status=409)
    target = f"broadcast {done.id} ({done.draft.name})"
    audit.record(
        w.store, admin.staff.email, "broadcast-cancel", target, ip=client_ip(request),
        now=w.now(),
    )  # fmt: skip
    return to(request, f"admin/broadcasts/{done.id}?done=cancelled")


def _version(admin: Admin, form: FormData, broadcast_id: int) -> approval.Version | Response:
    """The approval version of the broadcast as the page showed it, or why not."""
    broadcast = broadcasts.get_broadcast(admin.w.store, broadcast_id)
    current = approval.broadcast_version(admin.w.store, broadcast_id)
    if broadcast is None or current is None:
        return missing(admin)
    if text(form, "version", 20) != str(broadcast.version):
        return admin.message(
            "Nothing done", "Someone changed this broadcast meanwhile: look at it again.",
            status=409,
        )  # fmt: skip
    return current


@action("editor")
@in_thread
def ask_post(request: Request, admin: Admin, form: FormData) -> Response:
    """Ask a second staff member to approve the saved version (anyone who edits may ask)."""
    current = _version(admin, form, request.path_params["id"])
    if isinstance(current, Response):
        return current
    w = admin.w
    approval.ask(w.store, current, admin.staff, now=w.now(), ip=client_ip(request))
    return to(request, f"admin/broadcasts/{current.subject}?done=asked")


@action("editor")
@in_thread
def approve_post(request: Request, admin: Admin, form: FormData) -> Response:
    """Approve the saved version: the send permission, and not the one who asked for it or
    changed it last (approval.approve refuses, audited)."""
    current = _version(admin, form, request.path_params["id"])
    if isinstance(current, Response):
        return current
    w = admin.w
    try:
        approval.approve(w.store, current, admin.staff, now=w.now(), ip=client_ip(request))
    except (approval.MayNotSend, approval.SelfApproval) as exc:
        return admin.refuse(f"Not approved: {exc}")
    return to(request, f"admin/broadcasts/{current.subject}?done=approved")


@action("editor")
@in_thread
def refuse_post(request: Request, admin: Admin, form: FormData) -> Response:
    """Refuse the saved version, saying why (the send permission; not the one who asked):
    it does not go; the page shows who refused it and why, and an edit makes a new version
    to ask about again."""
    current = _version(admin, form, request.path_params["id"])
    if isinstance(current, Response):
        return current
    reason = " ".join(text(form, "reason", 500).split())
    if not reason:
        return admin.message("Not refused", "Say why it is refused.", status=400)
    w = admin.w
    try:
        approval.refuse(
            w.store, current, admin.staff, now=w.now(), ip=client_ip(request), reason=reason
        )
    except (approval.MayNotSend, approval.SelfApproval) as exc:
        return admin.refuse(f"Not refused: {exc}")
    return to(request, f"admin/broadcasts/{current.subject}?done=refused")


def voided_by_edit(admin: Admin, broadcast: Broadcast) -> None:
    """After a save: an approval of an earlier version no longer counts (audited)."""
    w = admin.w
    if approval.approval_required(w.config, "broadcast"):
        current = approval.broadcast_version(w.store, broadcast.id)
        if current is not None:
            approval.settle(w.store, current, now=w.now())


__all__ = [
    "resume_post",
    "approve_post",
    "refuse_post",
    "ask_post",
    "voided_by_edit",
    "approval_context",
    "cancel_post",
    "confirm_post",
    "schedule_post",
    "send_post",
]
