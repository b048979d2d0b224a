"""The staff dashboard under /admin of `publisher serve` (issue 13): staff log in (argon2
hashes, server-side sessions, a TOTP second factor, CSRF token tied to the session on every
form, throttling; issue 19);
viewers see, editors also preview, test-send, pause and resume, owners also manage staff
and export subscribers. Every action goes into the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from publisher.render.environment import render_template
from publisher.web.admin import (
    account,
    approvals,
    broadcast_send,
    broadcasts,
    campaigns,
    imports,
    items,
    links,
    login,
    media,
    passkeys,
    people,
    posts,
    roster,
    steer,
    webhooks,
    welcome,
)
from publisher.web.admin import api_keys as keys
from publisher.web.admin import curation as curate
from publisher.web.admin.auth import Sessions
from publisher.web.context import web

__all__ = ["ROUTES", "Sessions"]


async def stylesheet(request: Request) -> Response:
    w = web(request)
    css = render_template(w.env, "web/admin/admin.css", {"colours": w.config.organisation.colours})
    return Response(css, media_type="text/css", headers={"cache-control": "public, max-age=3600"})


ROUTES: list[BaseRoute] = [
    Route("/admin/admin.css", stylesheet, methods=["GET"]),
    Route("/admin/login", login.login_page, methods=["GET"]),
    Route("/admin/login", login.login_post, methods=["POST"]),
    Route("/admin/passkey.js", passkeys.script, methods=["GET"]),
    Route("/admin/login/second-factor", login.second_factor_post, methods=["POST"]),
    Route("/admin/login/passkey", login.passkey_post, methods=["POST"]),
    Route("/admin/account/passkey", passkeys.register_post, methods=["POST"]),
    Route("/admin/account/passkey/remove", passkeys.remove_post, methods=["POST"]),
    Route("/admin/logout", login.logout, methods=["POST"]),
    Route("/admin/account", account.account_page, methods=["GET"]),
    Route("/admin/account/password", account.password_post, methods=["POST"]),
    Route("/admin/account/sessions/end", account.end_session_post, methods=["POST"]),
    Route("/admin/account/totp", account.totp_start, methods=["POST"]),
    Route("/admin/account/totp/confirm", account.totp_confirm, methods=["POST"]),
    Route("/admin/account/totp/off", account.totp_off, methods=["POST"]),
    Route("/admin/account/codes", account.codes_post, methods=["POST"]),
    Route("/admin/invitation", links.invitation_page, methods=["GET"]),
    Route("/admin/invitation", links.invitation_post, methods=["POST"]),
    Route("/admin/reset", links.reset_page, methods=["GET"]),
    Route("/admin/reset", links.reset_post, methods=["POST"]),
    Route("/admin/reset/new", links.reset_new_page, methods=["GET"]),
    Route("/admin/reset/new", links.reset_new_post, methods=["POST"]),
    Route("/admin/", campaigns.overview_page, methods=["GET"]),
    Route("/admin/campaigns/{name}", campaigns.campaign_page, methods=["GET"]),
    Route("/admin/campaigns/{name}/preview", campaigns.preview_frame, methods=["GET"]),
    Route("/admin/campaigns/{name}/pause", campaigns.pause_post, methods=["POST"]),
    Route("/admin/campaigns/{name}/resume", campaigns.resume_post, methods=["POST"]),
    Route("/admin/campaigns/{name}/test", campaigns.test_post, methods=["POST"]),
    *[
        Route(
            f"/admin/campaigns/{{name}}/{verb}", getattr(curate, f"{verb}_post"), methods=["POST"]
        )
        for verb in ("note", "subject", "pin", "unpin", "exclude", "move", "clear")
    ],
    Route("/admin/editions/{id:int}", campaigns.edition_page, methods=["GET"]),
    Route("/admin/editions/{id:int}/email", campaigns.edition_email, methods=["GET"]),
    Route("/admin/subscribers", people.subscribers_page, methods=["GET"]),
    Route("/admin/subscribers/export", people.export_post, methods=["POST"]),
    Route("/admin/subscribers/{id:int}", people.subscriber_page, methods=["GET"]),
    Route("/admin/audit", people.audit_page, methods=["GET"]),
    Route("/admin/staff", people.staff_page, methods=["GET"]),
    Route("/admin/staff/invite", people.staff_invite, methods=["POST"]),
    Route("/admin/staff/remove", people.staff_remove, methods=["POST"]),
    Route("/admin/staff/sessions/end", people.staff_end_sessions, methods=["POST"]),
    Route("/admin/staff/policy", people.staff_policy, methods=["POST"]),
    Route("/admin/posts", posts.posts_page, methods=["GET"]),
    Route("/admin/posts/editor.js", posts.script, methods=["GET"]),
    Route("/admin/posts/new", posts.new_page, methods=["GET"]),
    Route("/admin/posts/new", posts.new_post, methods=["POST"]),
    Route("/admin/posts/preview", posts.preview_post, methods=["POST"]),
    Route("/admin/posts/held", posts.held_post, methods=["POST"]),
    Route("/admin/posts/{id:int}", posts.post_page, methods=["GET"]),
    Route("/admin/posts/{id:int}", posts.save_post, methods=["POST"]),
    Route("/admin/posts/{id:int}/revisions", posts.revisions_page, methods=["GET"]),
    Route(
        "/admin/posts/{id:int}/revisions/{rev:int}/restore", posts.restore_post, methods=["POST"]
    ),
    Route("/admin/media", media.media_page, methods=["GET"]),
    Route("/admin/media/upload", media.upload_post, methods=["POST"]),
    Route("/admin/media/delete", media.delete_post, methods=["POST"]),
    Route("/admin/welcome", welcome.welcome_page, methods=["GET"]),
    Route("/admin/welcome/preview", welcome.welcome_preview, methods=["GET"]),
    Route("/admin/items", items.items_page, methods=["GET"]),
    Route("/admin/items/retire", items.retire_post, methods=["POST"]),
    Route("/admin/items/unretire", items.unretire_post, methods=["POST"]),
    Route("/admin/items/topics", items.topics_post, methods=["POST"]),
    Route("/admin/items/{id:path}", items.item_page, methods=["GET"]),
    Route("/admin/staff/export-policy", people.staff_export_policy, methods=["POST"]),
    Route("/admin/subscribers/new", roster.new_page, methods=["GET"]),
    Route("/admin/subscribers/new", roster.new_post, methods=["POST"]),
    Route("/admin/subscribers/{id:int}/edit", roster.edit_post, methods=["POST"]),
    Route("/admin/subscribers/{id:int}/unsubscribe", roster.unsubscribe_post, methods=["POST"]),
    Route("/admin/subscribers/{id:int}/resubscribe", roster.resubscribe_post, methods=["POST"]),
    Route("/admin/subscribers/import", imports.import_page, methods=["GET"]),
    Route("/admin/subscribers/import", imports.import_post, methods=["POST"]),
    Route("/admin/subscribers/import/{id:int}", imports.preview_page, methods=["GET"]),
    Route("/admin/subscribers/import/{id:int}/confirm", imports.confirm_post, methods=["POST"]),
    *[  # broadcasts (issue 21)
        Route("/admin/broadcasts", broadcasts.broadcasts_page, methods=["GET"]),
        Route("/admin/broadcasts/broadcast.js", broadcasts.script, methods=["GET"]),
        Route("/admin/broadcasts/count", broadcasts.count_json, methods=["GET"]),
        Route("/admin/broadcasts/new", broadcasts.new_page, methods=["GET"]),
        Route("/admin/broadcasts/new", broadcasts.new_post, methods=["POST"]),
        Route("/admin/broadcasts/{id:int}", broadcasts.broadcast_page, methods=["GET"]),
        Route("/admin/broadcasts/{id:int}", broadcasts.save_post, methods=["POST"]),
        Route("/admin/broadcasts/{id:int}/preview", broadcasts.preview_frame, methods=["GET"]),
        Route("/admin/broadcasts/{id:int}/test", broadcasts.test_post, methods=["POST"]),
        *[
            Route(
                f"/admin/broadcasts/{{id:int}}/{verb}",
                getattr(broadcast_send, f"{verb}_post"),
                methods=["POST"],
            )
            for verb in "confirm send schedule cancel ask approve refuse resume".split()
        ],
    ],
    Route("/admin/approvals", approvals.approvals_page, methods=["GET"]),
    Route("/admin/campaigns/{name}/approve", approvals.approve_edition_post, methods=["POST"]),
    Route("/admin/campaigns/{name}/refuse", approvals.refuse_edition_post, methods=["POST"]),
    Route("/admin/staff/send-permission", approvals.send_permission_post, methods=["POST"]),
    *steer.ROUTES,
    Route("/admin/webhooks", webhooks.webhooks_page, methods=["GET"]),
    Route("/admin/webhooks/new", webhooks.create_post, methods=["POST"]),
    Route("/admin/webhooks/{id:int}", webhooks.endpoint_page, methods=["GET"]),
    *[
        Route(
            f"/admin/webhooks/{{id:int}}/{verb}",
            getattr(webhooks, f"{name}_post"),
            methods=["POST"],
        )
        for verb, name in (
            ("edit", "edit"),
            ("switch", "switch"),
            ("rotate", "rotate"),
            ("replay", "replay"),
            ("replay-failed", "replay_failed"),
            ("delete", "delete"),
        )
    ],
    Route("/admin/api-keys", keys.keys_page, methods=["GET"]),
    Route("/admin/api-keys", keys.create_post, methods=["POST"]),
    Route("/admin/api-keys/revoke", keys.revoke_post, methods=["POST"]),
]
