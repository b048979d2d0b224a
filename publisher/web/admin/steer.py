"""Steering a digest from its campaign page (issue 21): send the next edition now (after a
page that names the edition, the number of people and the audience), skip or move the next
slot once, undo that, resume an interrupted or failed send, and resend uncertain batches
after a page that explains what that means. Everything here needs the send permission
(publisher/deliver/approval.py), is checked again on every POST, and goes in the audit log.

A send runs in a thread of this web process through the same path as `publisher send`
(pipeline.send_edition: the ledger's exactly-once per person), so the page never waits for
a big list; the campaign page shows its progress from the ledger. A web process that dies
mid-send leaves the edition 'sending': Resume finishes it, as `publisher send --resume`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from publisher.config.models import CampaignConfig
from publisher.deliver import approval
from publisher.errors import PublisherError
from publisher.schedule import steering
from publisher.schedule.slots import campaign_zone
from publisher.store import audit, dashboard
from publisher.web.admin.auth import Admin, action, base_of, view
from publisher.web.context import Web, client_ip, in_thread
from publisher.web.forms import text

log = logging.getLogger(__name__)

STARTED = ("sending", "paused", "failed")  # publisher.deliver.service.STARTED
LEFTOVER = ("failed", "pending", "inflight", "requested")  # what a resume sends again
_SENDS: dict[str, threading.Thread] = {}  # campaign -> the send this process is running
_LOCK = threading.Lock()


def sending_here(name: str) -> bool:
    with _LOCK:
        thread = _SENDS.get(name)
        return thread is not None and thread.is_alive()


def context(
    admin: Admin, campaign: CampaignConfig, newest: list[dashboard.EditionLine] | None = None
) -> dict[str, Any]:
    """What the campaign page's steering block (_steer.html) shows; `newest`: the page's
    own first page of editions (newest first), so the ledger is not counted twice."""
    w, now = admin.w, admin.w.now()
    out: dict[str, Any] = {
        "steer_may_send": approval.may_send(w.store, admin.staff),
        "steer_sending": sending_here(campaign.name),
        "steer_zone": campaign_zone(w.config, campaign).key,
    }
    found = (
        newest
        if newest is not None
        else dashboard.campaign_editions(w.store, campaign.name, limit=1)[0]
    )
    line = found[0] if found else None
    out["steer_line"] = line
    out["steer_resumable"] = line is not None and (
        line.status in STARTED or any(line.counts.get(s, 0) for s in LEFTOVER)
    )
    out["steer_uncertain"] = line.uncertain if line else 0
    if campaign.cadence:
        try:
            out["steer_next"] = steering.next_slot(w.config, w.store, campaign.name, now=now)
        except PublisherError:  # a cadence that never fires again: nothing to skip or move
            pass
    return out


def _back(request: Request, name: str, notice: str) -> Response:
    return RedirectResponse(
        f"{base_of(request)}admin/campaigns/{name}?notice={quote(notice)}#steer", status_code=303
    )


def _campaign(admin: Admin, request: Request) -> CampaignConfig | None:
    name = request.path_params["name"]
    return next((c for c in admin.w.config.campaigns if c.name == name), None)


def _allowed(admin: Admin, request: Request) -> CampaignConfig | Response:
    """The campaign, when this staff member may send; else the refusal to answer with."""
    campaign = _campaign(admin, request)
    if campaign is None:
        return admin.message("No such campaign", request.path_params["name"], status=404)
    try:
        approval.require_may_send(admin.w.store, admin.staff)
    except PublisherError as exc:
        return admin.refuse(f"{exc}. Nothing was sent or changed.")
    return campaign


def _audit(admin: Admin, request: Request, verb: str, target: str) -> None:
    w = admin.w
    audit.record(w.store, admin.staff.email, verb, target, ip=client_ip(request), now=w.now())


# --- sending in the background ---------------------------------------------------------------


def _start(admin: Admin, name: str, edition_id: int, what: str, **options: object) -> bool:
    """Send `edition_id` in a thread (False: this process is sending the campaign already)."""
    w, by = admin.w, admin.staff.email
    with _LOCK:
        running = _SENDS.get(name)
        if running is not None and running.is_alive():
            return False
        thread = threading.Thread(
            target=_send, args=(w, by, name, edition_id, what, options), name=f"send-{name}",
            daemon=True,
        )  # fmt: skip
        _SENDS[name] = thread
        thread.start()
    return True


def _send(w: Web, by: str, name: str, edition_id: int, what: str, options: dict) -> None:
    from publisher.pipeline import send_edition

    try:
        approval.require_approved(w.config, w.store, "edition", edition_id)  # right before
        note = send_edition(w.config, w.store, edition_id, now=w.now(), **options).note
    except PublisherError as exc:
        note = f"stopped: {exc}"
    except Exception:  # noqa: BLE001 - a thread's error must reach the audit log, not vanish
        log.exception("%s of %s failed", what, name)
        note = "stopped by an unexpected error (see the server's log); Resume finishes it"
    audit.record(w.store, by, f"{what} finished", f"{name}: {note}"[:500], ip=None, now=w.now())


def _guarded(admin: Admin, request: Request, run: Callable[[CampaignConfig], Response]) -> Response:
    allowed = _allowed(admin, request)
    if isinstance(allowed, Response):
        return allowed
    try:
        return run(allowed)
    except PublisherError as exc:
        return _back(request, allowed.name, f"Nothing was done: {exc}")


# --- send now ---------------------------------------------------------------------------------


def _audience_words(audience: list[str]) -> str:
    return "following " + ", ".join(audience) if audience else "subscribed"


@view("viewer")
@in_thread
def send_now_page(request: Request, admin: Admin) -> Response:
    def page(campaign: CampaignConfig) -> Response:
        w = admin.w
        found = steering.next_to_send(w.config, w.store, campaign.name, now=w.now())
        if found is None:
            return _back(request, campaign.name, "Nothing new: there is no edition to send.")
        question = (
            f"Send {found.title} #{found.number} to {found.reach:,} "
            f"{'person' if found.reach == 1 else 'people'} {_audience_words(found.audience)}?"
        )
        return admin.page(
            "steer_send.html", f"Send {campaign.name} now", campaign=campaign,
            found=found, question=question,
        )  # fmt: skip

    return _guarded(admin, request, page)


@action("viewer")
@in_thread
def send_now_post(request: Request, admin: Admin, form: FormData) -> Response:
    def send(campaign: CampaignConfig) -> Response:
        w, number = admin.w, text(form, "number", 12)
        if not number.isdigit():
            return _back(request, campaign.name, "Nothing was sent: confirm on the send page.")
        if sending_here(campaign.name):
            return _back(request, campaign.name, "A send of this campaign is already running.")
        edition_id = steering.edition_to_send(
            w.config, w.store, campaign.name, int(number), now=w.now()
        )
        approval.require_approved(w.config, w.store, "edition", edition_id)
        _start(admin, campaign.name, edition_id, "send now")
        _audit(admin, request, "send now", f"{campaign.name} #{number}")
        return _back(
            request, campaign.name,
            f"Sending #{number} now. This page shows its progress: reload it to follow.",
        )  # fmt: skip

    return _guarded(admin, request, send)


# --- resume, resend uncertain -----------------------------------------------------------------


@action("viewer")
@in_thread
def resume_post(request: Request, admin: Admin, form: FormData) -> Response:
    return _guarded(admin, request, lambda campaign: _resume(request, admin, campaign, False))


def _resume(request: Request, admin: Admin, campaign: CampaignConfig, uncertain: bool) -> Response:
    from publisher.deliver import resumable_edition

    w = admin.w
    if sending_here(campaign.name):
        return _back(request, campaign.name, "A send of this campaign is already running.")
    edition_id = resumable_edition(w.store, campaign.name, resend_uncertain=uncertain)
    approval.require_approved(w.config, w.store, "edition", edition_id)
    what = "resend uncertain" if uncertain else "resume"
    _start(admin, campaign.name, edition_id, what, resend_uncertain=uncertain)
    _audit(admin, request, what, f"{campaign.name} edition {edition_id}")
    said = "Resending the uncertain batches" if uncertain else "Resuming the send"
    return _back(request, campaign.name, f"{said}. Reload this page to follow it.")


@view("viewer")
@in_thread
def uncertain_page(request: Request, admin: Admin) -> Response:
    def page(campaign: CampaignConfig) -> Response:
        found, _ = dashboard.campaign_editions(admin.w.store, campaign.name, limit=1)
        line = found[0] if found else None
        if line is None or not line.uncertain:
            return _back(request, campaign.name, "No batch of the latest edition is uncertain.")
        return admin.page(
            "steer_uncertain.html", f"Resend uncertain: {campaign.name} #{line.number}",
            campaign=campaign, line=line, backend=admin.w.config.delivery.backend,
        )  # fmt: skip

    return _guarded(admin, request, page)


@action("viewer")
@in_thread
def uncertain_post(request: Request, admin: Admin, form: FormData) -> Response:
    def resend(campaign: CampaignConfig) -> Response:
        if text(form, "checked", 10) != "yes":
            return _back(
                request, campaign.name,
                "Nothing was resent: tick that you checked the provider's activity first.",
            )  # fmt: skip
        return _resume(request, admin, campaign, True)

    return _guarded(admin, request, resend)


# --- the next slot: skip, move, undo ------------------------------------------------------------


@action("viewer")
@in_thread
def skip_post(request: Request, admin: Admin, form: FormData) -> Response:
    def skip(campaign: CampaignConfig) -> Response:
        w = admin.w
        change = steering.skip_next(
            w.config, w.store, campaign.name, by=admin.staff.email, now=w.now()
        )
        said = steering.describe(change, w.config)
        _audit(admin, request, "skip slot", f"{campaign.name} {said}")
        return _back(request, campaign.name, f"Skipped: {said}. The slot after it is normal.")

    return _guarded(admin, request, skip)


@action("viewer")
@in_thread
def move_post(request: Request, admin: Admin, form: FormData) -> Response:
    def move(campaign: CampaignConfig) -> Response:
        w = admin.w
        to = steering.local_time(w.config, campaign.name, text(form, "to", 40))
        change = steering.move_next(
            w.config, w.store, campaign.name, to, by=admin.staff.email, now=w.now()
        )
        said = steering.describe(change, w.config)
        _audit(admin, request, "move slot", f"{campaign.name} {said}")
        return _back(request, campaign.name, f"Moved: {said}.")

    return _guarded(admin, request, move)


@action("viewer")
@in_thread
def undo_post(request: Request, admin: Admin, form: FormData) -> Response:
    def undo(campaign: CampaignConfig) -> Response:
        w = admin.w
        try:
            slot = datetime.fromisoformat(text(form, "slot", 40))
        except ValueError:
            return _back(request, campaign.name, "Nothing was undone: no slot was named.")
        if slot.tzinfo is None:
            return _back(request, campaign.name, "Nothing was undone: no slot was named.")
        change = steering.undo(w.config, w.store, campaign.name, slot, now=w.now())
        said = steering.describe(change, w.config)
        _audit(admin, request, "undo slot change", f"{campaign.name} {said}")
        return _back(
            request, campaign.name, f"Undone: the slot runs at its own time again ({said})."
        )

    return _guarded(admin, request, undo)


ROUTES = [
    Route("/admin/campaigns/{name}/send-now", send_now_page, methods=["GET"]),
    Route("/admin/campaigns/{name}/send-now", send_now_post, methods=["POST"]),
    Route("/admin/campaigns/{name}/send/resume", resume_post, methods=["POST"]),
    Route("/admin/campaigns/{name}/send/uncertain", uncertain_page, methods=["GET"]),
    Route("/admin/campaigns/{name}/send/uncertain", uncertain_post, methods=["POST"]),
    Route("/admin/campaigns/{name}/slot/skip", skip_post, methods=["POST"]),
    Route("/admin/campaigns/{name}/slot/move", move_post, methods=["POST"]),
    Route("/admin/campaigns/{name}/slot/undo", undo_post, methods=["POST"]),
]
