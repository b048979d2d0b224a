"""Broadcasts in /admin (issue 21): one-off emails such as action alerts. The list; the
editor (name, subject, preheader, a configured sender, the audience with its live count,
the Markdown body, picked items, a call to action), saved with the version it started
from (a stale save is refused, the text kept); the preview at desktop and phone width and
as text; a test send. Editors and owners write; viewers read. Sending, scheduling and
approval are broadcast_send.py's. Every change is audited."""

from __future__ import annotations

from typing import Any

from markupsafe import escape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from publisher.deliver import approval
from publisher.errors import PublisherError
from publisher.render.environment import render_template
from publisher.render.personalise import sample_copy
from publisher.render.preview import PREVIEW_TOKEN
from publisher.store import audit, broadcasts, ledger
from publisher.store.broadcasts import Audience, Broadcast
from publisher.store.item_search import ItemQuery, item_entry, search_items
from publisher.store.staff import list_staff
from publisher.web.admin.auth import Admin, action, to, view
from publisher.web.admin.broadcast_form import Form, audience_of, checked, form_from_post, form_of
from publisher.web.admin.campaigns import _sandboxed
from publisher.web.admin.posts import image_library
from publisher.web.bounds import UPLOAD_LIMITS
from publisher.web.context import client_ip, in_thread, off_loop, web
from publisher.web.forms import many, text

FORM_BYTES = UPLOAD_LIMITS["/admin/broadcasts"]
DONE = {
    "saved": "Saved.",
    "test": "The test was sent: its subject starts with [Test].",
    "scheduled": "Scheduled: it goes at its time unless you cancel it.",
    "cancelled": "The schedule was cancelled: it is a draft again.",
    "sending": "Sending now: this page shows how it went.",
    "resuming": "Resuming: whoever has it already does not get it again.",
    "asked": "Approval asked: another staff member with the send permission approves it here.",
    "approved": "Approved: it may go.",
    "refused": "Refused: it does not go; the reason is shown here. A changed version can be "
    "asked for approval again.",
}


def count_words(count: int) -> str:
    return "1 person" if count == 1 else f"{count:,} people"


def audience_words(audience: Audience) -> str:
    """ "people following labor, except housing": the audience as the confirmation says it."""
    who = f"people following {', '.join(audience.topics)}" if audience.topics else "everyone"
    return who + (f", except {', '.join(audience.exclude)}" if audience.exclude else "")


def reach_words(count: int, audience: Audience) -> str:
    """ "1,204 people following labor, except housing": the confirmation's words."""
    words = count_words(count)
    words += f" following {', '.join(audience.topics)}" if audience.topics else " (everyone)"
    return words + (f", except {', '.join(audience.exclude)}" if audience.exclude else "")


def reach(admin: Admin, audience: Audience) -> int:
    """Who it would reach now: the same query the send uses (store.audience_count)."""
    return broadcasts.audience_count(admin.w.store, audience, now=admin.w.now())


def topic_slugs(admin: Admin) -> list[str]:
    return [t.slug for t in admin.w.topics]


def _items(admin: Admin, form: Form) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(id, title) of the picked items that exist, and of the search's matches."""
    picked = []
    for item_id in form.items:
        entry = item_entry(admin.w.store, item_id)
        if entry is not None:
            picked.append((item_id, entry.item.title))
    found: list[tuple[str, str]] = []
    if form.search:
        query = ItemQuery(text=form.search, status="live", limit=20)
        found = [
            (e.item.id, e.item.title)
            for e in search_items(admin.w.store, query).entries
            if e.item.id not in form.items
        ]
    return picked, found


def editor(admin: Admin, form: Form, broadcast: Broadcast | None, **extra: Any) -> Response:
    """The editor page with `form` in it (a new broadcast's when `broadcast` is None)."""
    picked, found = _items(admin, form)
    title = f"Broadcast: {broadcast.draft.name}" if broadcast else "New broadcast"
    extra = {"conflict": None, "problems": {}, "notice": ""} | extra
    response = admin.page(
        "broadcast.html", title, status=extra.pop("status", 200), script=True,
        script_src="broadcasts/broadcast.js", form=form, broadcast=broadcast,
        senders=admin.w.config.sender_choices(), picked=picked, found=found,
        count=count_words(reach(admin, audience_of(form))), library=image_library(admin),
        action_url=f"admin/broadcasts/{broadcast.id}" if broadcast else "admin/broadcasts/new",
        **_sending(admin, broadcast), **extra,
    )  # fmt: skip
    response.headers["content-security-policy"] += "; connect-src 'self'"  # the live count
    return response


def _sending(admin: Admin, broadcast: Broadcast | None) -> dict[str, Any]:
    """What the page's send, test and approval parts need."""
    if broadcast is None:
        return {}
    from publisher.web.admin.broadcast_send import approval_context

    w = admin.w
    testers = sorted({s.email for s in list_staff(w.store)} | set(test_addresses(admin)))
    return {
        "may_send": approval.may_send(w.store, admin.staff), "testers": testers,
        "zone": w.config.organisation.timezone, "edition_link": broadcast.edition_id,
        "outcome": outcome(admin, broadcast), "audience": audience_words(broadcast.draft.audience),
        **approval_context(admin, broadcast), **preview_context(admin, broadcast),
    }  # fmt: skip


def test_addresses(admin: Admin) -> list[str]:
    """The configured test addresses (schedules.yaml `test_addresses`)."""
    return [str(a) for a in admin.w.config.test_addresses]


@view("viewer")
@in_thread
def broadcasts_page(request: Request, admin: Admin) -> Response:
    found = broadcasts.list_broadcasts(admin.w.store, limit=100)
    return admin.page(
        "broadcasts.html", "Broadcasts", broadcasts=found, audience_words=audience_words,
        outcomes={b.id: outcome(admin, b) for b in found if b.edition_id is not None},
    )  # fmt: skip


def outcome(admin: Admin, broadcast: Broadcast) -> str:
    """ "2 sent, 1 failed": its edition's ledger once its send started."""
    if broadcast.edition_id is None:
        return ""
    counts = ledger.counts(admin.w.store, broadcast.edition_id)
    shown = [f"{counts.get(s, 0):,} {s}" for s in ("sent", "uncertain", "failed") if counts.get(s)]
    waiting = sum(
        n for s, n in counts.items() if s not in ("sent", "uncertain", "failed", "skipped")
    )
    return ", ".join(shown + ([f"{waiting:,} waiting"] if waiting else [])) or "nobody yet"


@view("editor")
@in_thread
def new_page(request: Request, admin: Admin) -> Response:
    return editor(admin, Form(), None)


def _get(admin: Admin, broadcast_id: int) -> Broadcast | None:
    return broadcasts.get_broadcast(admin.w.store, broadcast_id)


def missing(admin: Admin) -> Response:
    return admin.message("No such broadcast", "There is no broadcast with this number.", status=404)


@view("viewer")
@in_thread
def broadcast_page(request: Request, admin: Admin) -> Response:
    broadcast = _get(admin, request.path_params["id"])
    if broadcast is None:
        return missing(admin)
    notice = DONE.get(request.query_params.get("done", ""), "")
    return editor(admin, form_of(broadcast), broadcast, notice=notice)


@action("editor", form_bytes=FORM_BYTES)
async def new_post(request: Request, admin: Admin, form: FormData) -> Response:
    return await off_loop(_save, request, admin, form, None)


@action("editor", form_bytes=FORM_BYTES)
async def save_post(request: Request, admin: Admin, form: FormData) -> Response:
    return await off_loop(_save, request, admin, form, request.path_params["id"])


def _save(request: Request, admin: Admin, posted: FormData, broadcast_id: int | None) -> Response:
    w, now, form = admin.w, admin.w.now(), form_from_post(posted)
    broadcast = _get(admin, broadcast_id) if broadcast_id else None
    if broadcast_id and broadcast is None:
        return missing(admin)
    if text(posted, "do", 20) in ("count", "search"):  # the no-script buttons: nothing saved
        return editor(admin, form, broadcast)
    known = {i for i in form.items if item_entry(w.store, i) is not None}
    draft, problems = checked(form, w.config, topic_slugs(admin), known)
    if draft is None:
        return editor(admin, form, broadcast, problems=problems, status=400)
    try:
        if broadcast is None:
            saved = broadcasts.create_broadcast(w.store, draft, by=admin.staff.email, now=now)
        else:
            version = int(form.version) if form.version.isdigit() else -1
            saved = broadcasts.update_broadcast(
                w.store, broadcast.id, draft, version=version, by=admin.staff.email, now=now
            )
    except broadcasts.BroadcastConflict as conflict:
        form.version = str(conflict.current.version)
        return editor(admin, form, conflict.current, conflict=conflict, status=409)
    except broadcasts.BroadcastLocked as exc:
        return editor(admin, form, broadcast, problems={"status": str(exc)}, status=409)
    from publisher.web.admin.broadcast_send import voided_by_edit

    voided_by_edit(admin, saved)
    target = f"broadcast {saved.id} ({saved.draft.name}) version {saved.version}"
    audit.record(
        w.store, admin.staff.email, "broadcast-save", target, ip=client_ip(request), now=now
    )
    return to(request, f"admin/broadcasts/{saved.id}?done=saved")


@view("editor")
@in_thread
def count_json(request: Request, admin: Admin) -> Response:
    """The live count: {"count": n, "text": "1,204 people"} for ?topics=…&exclude=…."""
    allowed = topic_slugs(admin)
    params = request.query_params
    topics = [t for t in params.getlist("topics")[:100] if t in allowed]
    exclude = [t for t in params.getlist("exclude")[:100] if t in allowed and t not in topics]
    count = reach(admin, Audience(tuple(topics), tuple(exclude)))
    return JSONResponse({"count": count, "text": count_words(count)})


def _rendered(admin: Admin, broadcast: Broadcast) -> Any:
    from publisher.deliver.broadcast_preview import render_broadcast

    return render_broadcast(admin.w.config, admin.w.store, broadcast, now=admin.w.now())


@view("viewer")
@in_thread
def preview_frame(request: Request, admin: Admin) -> Response:
    """The saved broadcast's HTML as a sample person gets it (framed at two widths)."""
    broadcast = _get(admin, request.path_params["id"])
    if broadcast is None:
        return _sandboxed("<p>No such broadcast.</p>")
    try:
        rendered = _rendered(admin, broadcast)
    except PublisherError as exc:
        return _sandboxed(f"<p>{escape(str(exc))}</p>")
    public_url = admin.w.config.organisation.public_url
    return _sandboxed(sample_copy(rendered.html, public_url, PREVIEW_TOKEN))


def preview_context(admin: Admin, broadcast: Broadcast) -> dict[str, Any]:
    try:
        rendered = _rendered(admin, broadcast)
    except PublisherError as exc:
        return {"preview_problem": str(exc)}
    public_url = admin.w.config.organisation.public_url
    return {"rendered": rendered, "text_part": sample_copy(rendered.text, public_url, "preview")}


@action("editor")
@in_thread
def test_post(request: Request, admin: Admin, form: FormData) -> Response:
    """A test of the saved version to staff members or configured test addresses."""
    from publisher.deliver.broadcast_preview import send_test_broadcast

    w = admin.w
    broadcast = _get(admin, request.path_params["id"])
    if broadcast is None:
        return missing(admin)
    allowed = {s.email for s in list_staff(w.store)} | set(test_addresses(admin))
    chosen = [a for a in many(form, "to")[:20] if a in allowed]
    if not chosen:
        return admin.message("No test sent", "Choose who gets the test.", status=400)
    try:
        send_test_broadcast(w.config, w.store, broadcast, chosen, now=w.now())
    except PublisherError as exc:
        return admin.message("The test did not go out", str(exc), status=502)
    target = f"broadcast {broadcast.id} version {broadcast.version} to {', '.join(chosen)}"
    audit.record(
        w.store, admin.staff.email, "broadcast-test", target, ip=client_ip(request), now=w.now()
    )
    return to(request, f"admin/broadcasts/{broadcast.id}?done=test")


async def script(request: Request) -> Response:
    body = render_template(web(request).env, "web/admin/broadcast.js", {})
    return Response(
        body, media_type="text/javascript", headers={"cache-control": "public, max-age=3600"}
    )


__all__ = [
    "audience_words",
    "broadcast_page",
    "broadcasts_page",
    "count_json",
    "count_words",
    "new_page",
    "new_post",
    "reach_words",
    "preview_frame",
    "save_post",
    "script",
    "test_post",
]
