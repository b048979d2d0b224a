"""The welcome email in /admin (issue 21): its configuration, a preview as a sample person
gets it, and how many were sent, are in doubt or failed. Seeing it changes nothing: the
preview renders without storing a version (a version is stored when one is sent)."""

from __future__ import annotations

from typing import Any

from markupsafe import escape
from starlette.requests import Request
from starlette.responses import Response

from publisher.deliver.welcome import latest_edition, render
from publisher.errors import PublisherError
from publisher.render.personalise import sample_copy
from publisher.render.preview import PREVIEW_TOKEN
from publisher.store.welcome import welcome_counts
from publisher.web.admin.auth import Admin, view
from publisher.web.admin.campaigns import _sandboxed
from publisher.web.context import in_thread


@view("viewer")
@in_thread
def welcome_page(request: Request, admin: Admin) -> Response:
    w = admin.w
    context: dict[str, Any] = {"welcome": w.config.welcome, "counts": welcome_counts(w.store)}
    if w.config.welcome is not None:
        context["latest"] = latest_edition(w.config, w.store)
        try:
            rendered = render(w.config, w.store)
        except PublisherError as exc:  # a broken template: say so, show the rest
            context["problem"] = str(exc)
        else:
            assert rendered is not None
            public_url = w.config.organisation.public_url
            context["text_part"] = sample_copy(rendered.text, public_url, PREVIEW_TOKEN)
    return admin.page("welcome.html", "Welcome email", **context)


@view("viewer")
@in_thread
def welcome_preview(request: Request, admin: Admin) -> Response:
    w = admin.w
    try:
        rendered = render(w.config, w.store)
    except PublisherError as exc:
        return _sandboxed(f"<p>{escape(str(exc))}</p>")
    if rendered is None:
        return _sandboxed("<p>No welcome email is configured.</p>")
    return _sandboxed(sample_copy(rendered.html, w.config.organisation.public_url, PREVIEW_TOKEN))
