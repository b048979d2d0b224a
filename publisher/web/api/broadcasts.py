"""Broadcasts through the API (issue 22), through the same functions as /admin: a draft is
checked by the editor's own form checks (publisher.web.admin.broadcast_form.checked) and
saved over its version by store/broadcasts.py (a stale version is a 409); the preview, the
test and the send are publisher.deliver.broadcasts'.

Sending is the most consequential thing a key can do: it needs the `send` scope (a key's
send permission; a key can never approve) and honours the approval rule
(deliver/approval.py: 409 `approval-needed` until a second staff member approves this
version in /admin). Send now claims the broadcast before answering (of two requests, one
gets it: the other a 409), answers 202 with its address, and sends after the answer,
through the same function as the admin page (deliver.broadcasts.send_broadcast_now); the
broadcast's `status` and `counts` show how it went."""

from __future__ import annotations

import logging

from publisher.deliver import approval
from publisher.deliver.broadcast_preview import render_broadcast, send_test_broadcast
from publisher.deliver.broadcasts import RESUMABLE, resume_broadcast, send_broadcast_now
from publisher.errors import PublisherError
from publisher.render.personalise import sample_copy
from publisher.render.preview import PREVIEW_TOKEN
from publisher.store import Store, audit, broadcasts, ledger
from publisher.store.broadcasts import BroadcastDraft
from publisher.store.group import one_write
from publisher.store.item_search import item_entry
from publisher.store.staff import list_staff
from publisher.web.admin.broadcast_form import Form, checked
from publisher.web.api import broadcast_models as bm
from publisher.web.api import models
from publisher.web.api.framework import Call, Endpoint
from publisher.web.api.problems import Problem

log = logging.getLogger(__name__)


def _url(call: Call, broadcast_id: int) -> str:
    base = call.w.config.organisation.public_url.rstrip("/")
    return f"{base}/api/v1/broadcasts/{broadcast_id}"


def _out(call: Call, b: broadcasts.Broadcast) -> bm.Broadcast:
    d = b.draft
    counts = ledger.counts(call.w.store, b.edition_id) if b.edition_id is not None else {}
    return bm.Broadcast(
        id=b.id, url=_url(call, b.id), slug=b.slug, status=b.status,  # type: ignore[arg-type]
        version=b.version, name=d.name, subject=d.subject, preheader=d.preheader,
        sender=d.sender, topics=list(d.audience.topics), exclude=list(d.audience.exclude),
        body=d.body, items=list(d.items), cta_label=d.cta_label, cta_url=d.cta_url,
        send_at=b.send_at, edition_id=b.edition_id, counts={k: v for k, v in counts.items() if v},
        created_by=b.created_by, updated_by=b.updated_by, created_at=b.created_at,
        updated_at=b.updated_at,
    )  # fmt: skip


def _get(call: Call) -> broadcasts.Broadcast:
    found = broadcasts.get_broadcast(call.w.store, call.params["id"])
    if found is None:
        raise Problem(404, "not-found", "No broadcast with this id.")
    return found


def _draft(call: Call, body: bm.BroadcastIn) -> BroadcastDraft:
    """The body checked as the editor's form is (one place for the rules); 422 naming the
    fields at fault."""
    form = Form(
        name=body.name.strip(), subject=body.subject.strip(), preheader=body.preheader.strip(),
        sender=body.sender, topics=list(dict.fromkeys(body.topics)),
        exclude=list(dict.fromkeys(body.exclude)), body=body.body.replace("\r\n", "\n"),
        items=list(dict.fromkeys(body.items)), cta_label=(body.cta_label or "").strip(),
        cta_url=(body.cta_url or "").strip(),
    )  # fmt: skip
    known = {i for i in form.items if item_entry(call.w.store, i) is not None}
    draft, problems = checked(form, call.w.config, [t.slug for t in call.w.topics], known)
    if draft is None:
        errors = [{"location": "body", "field": f, "detail": d} for f, d in problems.items()]
        raise Problem(422, "invalid", " ".join(problems.values())[:500], errors=errors)
    return draft


def _audit(
    call: Call, action: str, b: broadcasts.Broadcast, more: str = "", *, store: Store | None = None
) -> None:
    """`store`: the one_write of the change it records (both stored, or neither)."""
    target = f"broadcast {b.id} ({b.draft.name}) version {b.version}{more}"[:300]
    audit.record(store or call.w.store, call.actor, action, target, ip=call.ip, now=call.now)


def _settle(call: Call, store: Store, b: broadcasts.Broadcast) -> None:
    """After a change, in its one_write: an approval of an earlier version no longer
    counts (audited)."""
    if approval.approval_required(call.w.config, "broadcast"):
        current = approval.broadcast_version(store, b.id)
        if current is not None:
            approval.settle(store, current, now=call.now)


def create(call: Call) -> bm.Broadcast:
    draft = _draft(call, call.body)
    with one_write(call.w.store) as store:
        made = broadcasts.create_broadcast(store, draft, by=call.actor, now=call.now)
        _audit(call, "api: broadcast created", made, store=store)
    return _out(call, made)


def change(call: Call) -> bm.Broadcast:
    body: bm.BroadcastChange = call.body
    draft = _draft(call, body)
    found = _get(call)
    with one_write(call.w.store) as store:
        saved = broadcasts.update_broadcast(
            store, found.id, draft, version=body.version, by=call.actor, now=call.now
        )
        _settle(call, store, saved)
        _audit(call, "api: broadcast saved", saved, store=store)
    return _out(call, saved)


def read(call: Call) -> bm.Broadcast:
    return _out(call, _get(call))


def listing(call: Call) -> bm.BroadcastPage:
    """Newest first, keyset on the id: one made meanwhile is on no page already read."""
    query: bm.BroadcastQuery = call.query
    before = models.decode_cursor("broadcasts", query.cursor) or None
    found = broadcasts.list_broadcasts(call.w.store, limit=query.limit + 1, before=before)
    page = found[: query.limit]
    more = len(found) > query.limit
    cursor = models.encode_cursor("broadcasts", page[-1].id) if more and page else None
    return bm.BroadcastPage(items=[_out(call, b) for b in page], next_cursor=cursor)


def preview(call: Call) -> bm.BroadcastPreview:
    """As a sample person would get it now (the admin page's preview)."""
    rendered = render_broadcast(call.w.config, call.w.store, _get(call), now=call.now)
    public_url = call.w.config.organisation.public_url
    return bm.BroadcastPreview(
        subject=rendered.subject,
        preheader=rendered.preheader,
        html=sample_copy(rendered.html, public_url, PREVIEW_TOKEN),
        text=sample_copy(rendered.text, public_url, PREVIEW_TOKEN),
    )


def audience(call: Call) -> bm.AudienceCount:
    """Who it would reach now: the same count the send uses."""
    a = _get(call).draft.audience
    count = broadcasts.audience_count(call.w.store, a, now=call.now)
    return bm.AudienceCount(topics=list(a.topics), exclude=list(a.exclude), count=count)


def send_test(call: Call) -> bm.BroadcastTestAnswer:
    """A test of the saved version, subject marked [Test], to staff or configured test
    addresses only (never a subscriber's address typed into a key's request)."""
    body: bm.BroadcastTest = call.body
    b = _get(call)
    allowed = {s.email for s in list_staff(call.w.store)}
    allowed |= {str(a).lower() for a in call.w.config.test_addresses}
    chosen = list(dict.fromkeys(a.strip().lower() for a in body.to))
    refused = [a for a in chosen if a not in allowed]
    if refused:
        detail = f"Tests go to staff members or configured test_addresses only (not {refused[0]})."
        raise Problem(
            422, "invalid", detail, errors=[{"location": "body", "field": "to", "detail": detail}]
        )
    try:
        send_test_broadcast(call.w.config, call.w.store, b, chosen, now=call.now)
    except PublisherError as exc:
        raise Problem(502, "not-sent", str(exc)[:500]) from None
    _audit(call, "api: broadcast test", b, f" to {', '.join(chosen)}")
    return bm.BroadcastTestAnswer(to=chosen, subject=f"[Test] {b.draft.subject}")


def schedule(call: Call) -> bm.Broadcast:
    """To go at `send_at` (the daemon sends it then, if it may go then); a scheduled one
    is moved."""
    body: bm.BroadcastSchedule = call.body
    if body.send_at <= call.now:
        detail = "Give a time in the future."
        errors = [{"location": "body", "field": "send_at", "detail": detail}]
        raise Problem(422, "invalid", detail, errors=errors)
    found = _get(call)
    with one_write(call.w.store) as store:
        done = broadcasts.schedule_broadcast(
            store, found.id, body.send_at, version=body.version, by=call.actor, now=call.now
        )
        at = f" at {done.send_at:%Y-%m-%d %H:%M} UTC"
        _audit(call, "api: broadcast scheduled", done, at, store=store)
    return _out(call, done)


def cancel(call: Call) -> bm.Broadcast:
    """A scheduled broadcast back to a draft (its time forgotten); 409 when not scheduled."""
    found = _get(call)
    with one_write(call.w.store) as store:
        done = broadcasts.cancel_broadcast(store, found.id, by=call.actor, now=call.now)
        _audit(call, "api: broadcast cancelled", done, store=store)
    return _out(call, done)


def send(call: Call) -> bm.Broadcast:
    """Send now: checked (approval, what stops it going, it renders) and claimed before the
    answer; sent after it, exactly once per person (a stopped send is resumed in /admin).
    The same function as /admin's send now: deliver.broadcasts.send_broadcast_now."""
    body: bm.BroadcastVersion = call.body
    b, w = _get(call), call.w
    if b.status not in broadcasts.EDITABLE:
        raise Problem(409, "conflict", f"This broadcast is {b.status}: it cannot be sent now.")
    if body.version != b.version:
        raise Problem(
            409, "conflict", f"This broadcast changed meanwhile (now version {b.version})."
        )
    # what stops it going (approval, the draft, another request's claim first): a 409
    claimed, send_after = send_broadcast_now(
        w.config, w.store, b.id, by=call.actor, version=body.version, clock=w.now
    )
    _audit(call, "api: broadcast send", claimed)
    call.after = send_after
    return _out(call, claimed)


def resume(call: Call) -> bm.Broadcast:
    """Finish a send that stopped (a crash, a failure), after the answer: whoever has it
    already does not get it again (the ledger)."""
    b, w = _get(call), call.w
    if b.status not in RESUMABLE:
        raise Problem(409, "conflict", f"This broadcast is {b.status}: nothing to resume.")
    approval.require_approved(w.config, w.store, "broadcast", b.id)
    _audit(call, "api: broadcast resume", b)

    def work() -> None:
        try:
            resume_broadcast(w.config, w.store, b.id, by=call.actor, now=w.now())
        except PublisherError as exc:
            log.warning("broadcast %s not resumed: %s", b.id, exc)

    call.after = work
    return _out(call, b)


READ, WRITE, SEND, TAG = "campaigns:read", "campaigns:write", "send", "broadcasts"
ONE = "/broadcasts/{id}"
NOT_SENT = (("502", "the test could not be sent (the detail says to whom)"),)
ENDPOINTS = [
    Endpoint("GET", "/broadcasts", READ, listing, "List broadcasts, newest first", TAG,
             bm.BroadcastPage, query=bm.BroadcastQuery),
    Endpoint("POST", "/broadcasts", WRITE, create, "Write a broadcast (a draft)", TAG,
             bm.Broadcast, body=bm.BroadcastIn, status=201),
    Endpoint("GET", ONE, READ, read, "One broadcast: its draft, status and counts", TAG,
             bm.Broadcast),
    Endpoint("PUT", ONE, WRITE, change, "Save a broadcast over its version", TAG, bm.Broadcast,
             body=bm.BroadcastChange),
    Endpoint("GET", ONE + "/preview", READ, preview, "The broadcast as it would go out now",
             TAG, bm.BroadcastPreview),
    Endpoint("GET", ONE + "/audience", READ, audience, "How many people it would reach now",
             TAG, bm.AudienceCount),
    Endpoint("POST", ONE + "/test", WRITE, send_test,
             "Send a test to staff or configured test addresses", TAG, bm.BroadcastTestAnswer,
             body=bm.BroadcastTest, extra=NOT_SENT),
    Endpoint("POST", ONE + "/schedule", SEND, schedule, "Schedule a broadcast at a time", TAG,
             bm.Broadcast, body=bm.BroadcastSchedule),
    Endpoint("POST", ONE + "/cancel", SEND, cancel, "Cancel a schedule: a draft again", TAG,
             bm.Broadcast),
    Endpoint("POST", ONE + "/send", SEND, send,
             "Send now (after the answer); approval first when the rule asks for it", TAG,
             bm.Broadcast, body=bm.BroadcastVersion, status=202),
    Endpoint("POST", ONE + "/resume", SEND, resume,
             "Finish a send that stopped (nobody gets it twice), after the answer", TAG,
             bm.Broadcast, status=202),
]  # fmt: skip
