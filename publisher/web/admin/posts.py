"""Posts written in /admin (issue 20): the list, the editor with its side-by-side preview
(the Preview button without script; live with editor.js), revisions and their diffs,
refused stale saves, and a save whose session has ended (the text is kept, not lost).
Editors and owners write; viewers read. Every save is audited and reaches the items at
once (pipeline.publish_posts), so the next digest's preview shows it."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from publisher.items import KINDS
from publisher.pipeline import publish_posts
from publisher.render.environment import render_template
from publisher.sources.newsroom import post_url, preview_html
from publisher.store import audit, posts
from publisher.store.media import list_images, media_url
from publisher.web.admin.auth import COOKIE, Admin, action, render, signed_in, to, view
from publisher.web.admin.post_form import (
    Draft,
    as_text,
    checked,
    diff_lines,
    draft_from_form,
    draft_of,
    local,
)
from publisher.web.bounds import UPLOAD_LIMITS
from publisher.web.context import Topic, client_ip, in_thread, off_loop, web
from publisher.web.forms import FormTooLarge, read_form, text

FORM_BYTES = UPLOAD_LIMITS["/admin/posts"]
DONE = {
    "draft": "Saved as a draft.",
    "published": "Published: it is in the next digest's preview and the feeds now.",
    "scheduled": "Scheduled: it goes live at its date.",
    "retired": "Retired: it no longer appears anywhere.",
    "restored": "The earlier version was restored (as a new version).",
}
# what each button asks for: a status ("publish" becomes "scheduled" for a future date)
BUTTONS = {"draft": "draft", "publish": "published", "unpublish": "draft", "retire": "retired"}


def zone_of(admin: Admin) -> ZoneInfo:
    return ZoneInfo(admin.w.config.organisation.timezone)


def image_library(admin: Admin) -> list[tuple[str, str]]:
    """The uploaded images offered in the "Image" field: (email-size address, label); the
    email size (1,200 px wide at most) is what digests, feeds and the post page show."""
    public_url = admin.w.config.organisation.public_url
    return [
        (media_url(public_url, image.email_file), f"{image.name}: {image.alt}"[:200])
        for image in list_images(admin.w.store)[:LIBRARY_MAX]
    ]


LIBRARY_MAX = 200  # the newest uploads; any other is typed or pasted as its address


def editor(admin: Admin, draft: Draft, post: posts.Post | None, **extra: Any) -> Response:
    """The editor page with `draft` in the form (a new post's when `post` is None)."""
    zone, now = zone_of(admin), admin.w.now()
    fields, _ = checked(draft, zone, now)
    configured = [t.slug for t in admin.w.topics]
    topics = admin.w.topics + [Topic(s, s) for s in draft.topics if s not in configured]
    title = f"Edit: {post.fields.title}" if post else "Write a post"
    extra = {"conflict": None, "changes": [], "conflict_from": None, "preview": None} | extra
    response = admin.page(
        "post.html", title, status=extra.pop("status", 200), script=True,
        script_src="posts/editor.js", draft=draft, post=post, kinds=KINDS, topics_offered=topics,
        schedule=bool(fields and fields.date > now), now_local=local(now, zone),
        problems=extra.pop("problems", {}),
        action_url=f"admin/posts/{post.id}" if post else "admin/posts/new",
        library=image_library(admin), **extra,
    )  # fmt: skip
    response.headers["content-security-policy"] += "; connect-src 'self'"  # the live preview
    return response


@view("viewer")
@in_thread
def posts_page(request: Request, admin: Admin) -> Response:
    wanted = request.query_params.get("status", "")
    wanted = wanted if wanted in posts.STATUSES else ""
    found = posts.list_posts(admin.w.store, status=wanted or None)
    return admin.page("posts.html", "Posts", posts=found, wanted=wanted, statuses=posts.STATUSES)


@view("editor")
async def new_page(request: Request, admin: Admin) -> Response:
    draft = Draft(author=admin.staff.email, date=local(admin.w.now(), zone_of(admin)))
    return editor(admin, draft, None)


@view("viewer")
@in_thread
def post_page(request: Request, admin: Admin) -> Response:
    try:
        post = posts.get_post(admin.w.store, request.path_params["id"])
    except posts.PostNotFound:
        return admin.message("No such post", "There is no post with this number.", status=404)
    done = DONE.get(request.query_params.get("done", ""), "")
    if not admin.staff.may("editor"):
        body = Markup(preview_html(post.fields.body, public_url(admin), post.slug))
        return admin.page("post_view.html", post.fields.title, post=post, body=body)
    return editor(admin, draft_of(post, zone_of(admin)), post, notice=done)


def public_url(admin: Admin) -> str:
    return admin.w.config.organisation.public_url


def post_action(handler: Any) -> Any:
    """An editor's POST carrying a post's text: when the staff session has ended while the
    browser still holds its cookie, the text is shown back (nothing written anywhere) with
    a way to log in again and return to the editor with it."""
    gated = action("editor", form_bytes=FORM_BYTES)(handler)

    async def endpoint(request: Request) -> Response:
        if request.cookies.get(COOKIE) and await off_loop(signed_in, request) is None:
            return await session_ended(request)
        return await gated(request)

    return endpoint


async def session_ended(request: Request) -> Response:
    try:
        form = await read_form(request, limit=FORM_BYTES)
    except FormTooLarge:
        return render(request, "message.html", "Too large", status=413, paragraphs=[])
    draft = draft_from_form(form)
    post_id = text(form, "post", 20)
    return render(
        request, "post_held.html", "Your session has ended", status=401, draft=draft,
        values=draft.values(), post_id=post_id if post_id.isdigit() else "",
    )  # fmt: skip


async def held_post(request: Request) -> Response:
    """Back from logging in again: the editor with the text posted before, nothing saved.
    Still logged out: the same page again, so the text is never lost."""
    if request.cookies.get(COOKIE) and await off_loop(signed_in, request) is None:
        return await session_ended(request)
    return await _held_editor(request)


@view("editor")
async def _held_editor(request: Request, admin: Admin) -> Response:
    # It writes nothing, so it needs no form token; the session cookie is SameSite=Strict,
    # so no other site can post here in a signed-in browser.
    try:
        form = await read_form(request, limit=FORM_BYTES)
    except FormTooLarge:
        return admin.refuse("That request was too large.")
    return await off_loop(_held, admin, form)


def _held(admin: Admin, form: FormData) -> Response:
    draft, post_id, post = draft_from_form(form), text(form, "post", 20), None
    if post_id.isdigit():
        try:
            post = posts.get_post(admin.w.store, int(post_id))
        except posts.PostNotFound:
            pass
    note = "Your text from before you logged in again is back. Nothing is saved yet: save it."
    return editor(admin, draft, post, notice=note)


@post_action
async def new_post(request: Request, admin: Admin, form: FormData) -> Response:
    return await off_loop(_save, request, admin, form, None)


@post_action
async def save_post(request: Request, admin: Admin, form: FormData) -> Response:
    return await off_loop(_save, request, admin, form, request.path_params["id"])


def _save(request: Request, admin: Admin, form: FormData, post_id: int | None) -> Response:
    w, now, draft = admin.w, admin.w.now(), draft_from_form(form)
    try:
        post = posts.get_post(w.store, post_id) if post_id else None
    except posts.PostNotFound:
        return admin.message("No such post", "There is no post with this number.", status=404)
    button = text(form, "do", 20)
    fields, problems = checked(draft, zone_of(admin), now)
    if button == "preview" or fields is None:
        preview = Markup(preview_html(draft.body, public_url(admin), draft.slug))
        code = 200 if fields is not None else 400
        return editor(admin, draft, post, preview=preview, problems=problems, status=code)
    status = BUTTONS.get(button, "draft")
    if status == "published" and fields.date > now:
        status = "scheduled"
    try:
        saved = _store_save(admin, post, fields, status, draft.version)
    except posts.PostConflict as conflict:
        return _conflict(admin, draft, conflict)
    except posts.PostInvalid as exc:
        return editor(admin, draft, post, problems={"post": str(exc)}, status=400)
    publish_posts(w.config, w.store, now=now, pages=True)
    target = f"post {saved.id} ({saved.slug}) version {saved.version}: {saved.status}"
    audit.record(w.store, admin.staff.email, "post-save", target, ip=client_ip(request), now=now)
    return to(request, f"admin/posts/{saved.id}?done={saved.status}")


def _store_save(
    admin: Admin, post: posts.Post | None, fields: posts.PostFields, status: str, version: str
) -> posts.Post:
    w, by = admin.w, admin.staff.email
    if post is None:
        return posts.create_post(w.store, fields, status=status, by=by, now=w.now())
    started = int(version) if version.isdigit() else -1
    return posts.save_post(
        w.store, post.id, fields, version=started, status=status, by=by, now=w.now()
    )


def _conflict(admin: Admin, draft: Draft, conflict: posts.PostConflict) -> Response:
    """The other person's change (their version against the one this editor started
    from) above the form, which keeps this editor's text at the current version."""
    current = conflict.current
    revisions = posts.post_revisions(admin.w.store, current.id)
    started = next((r for r in revisions if r.version == conflict.started_from), None)
    before = as_text(started.fields, started.status) if started else []
    changes = diff_lines(before, as_text(current.fields, current.status))
    draft.version = str(current.version)
    return editor(
        admin,
        draft,
        current,
        conflict=current,
        conflict_from=conflict.started_from,
        changes=changes,
        status=409,
    )


@action("editor", form_bytes=FORM_BYTES)
async def preview_post(request: Request, admin: Admin, form: FormData) -> Response:
    """The live preview's fragment: the body as readers will get it (sanitised HTML)."""
    body = form.get("body")
    fragment = await off_loop(
        preview_html, body if isinstance(body, str) else "", public_url(admin),
        text(form, "slug", 200),
    )  # fmt: skip
    return HTMLResponse(fragment, headers={"content-security-policy": "default-src 'none'"})


async def script(request: Request) -> Response:
    body = render_template(web(request).env, "web/admin/editor.js", {})
    return Response(
        body, media_type="text/javascript",
        headers={"cache-control": "public, max-age=3600"},
    )  # fmt: skip


@view("viewer")
@in_thread
def revisions_page(request: Request, admin: Admin) -> Response:
    try:
        post = posts.get_post(admin.w.store, request.path_params["id"])
        revisions = posts.post_revisions(admin.w.store, post.id)
    except posts.PostNotFound:
        return admin.message("No such post", "There is no post with this number.", status=404)
    shown = []
    for index, revision in enumerate(revisions):
        older = revisions[index + 1] if index + 1 < len(revisions) else None
        before = as_text(older.fields, older.status) if older else []
        shown.append((revision, diff_lines(before, as_text(revision.fields, revision.status))))
    return admin.page(
        "post_revisions.html", f"Revisions: {post.fields.title}", post=post, revisions=shown
    )


@action("editor")
@in_thread
def restore_post(request: Request, admin: Admin, form: FormData) -> Response:
    w, now, post_id = admin.w, admin.w.now(), request.path_params["id"]
    version = text(form, "version", 20)
    try:
        post = posts.restore_revision(
            w.store, post_id, request.path_params["rev"], version=int(version or -1),
            by=admin.staff.email, now=now,
        )  # fmt: skip
    except posts.PostNotFound:
        return admin.message("No such post", "There is no such post or version.", status=404)
    except posts.PostConflict:
        return admin.message(
            "Not restored", "Someone saved this post meanwhile: look at its revisions again.",
            status=409,
        )  # fmt: skip
    except ValueError:
        return admin.refuse("That form was not complete.")
    publish_posts(w.config, w.store, now=now, pages=True)
    target = f"post {post.id} version {post.version}: restored"
    audit.record(w.store, admin.staff.email, "post-restore", target, ip=client_ip(request), now=now)
    return to(request, f"admin/posts/{post.id}?done=restored")


def link_of(admin: Admin, post: posts.Post) -> str:
    return post.fields.external_url or post_url(public_url(admin), post.slug)


__all__ = [
    "held_post",
    "new_page",
    "new_post",
    "post_page",
    "posts_page",
    "preview_post",
    "restore_post",
    "revisions_page",
    "save_post",
    "script",
]
