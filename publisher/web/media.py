"""`GET /media/<file>`: the stored images, from the store (every host has them), with
long-lived caching (a file's bytes never change under its name: an image is re-uploaded
under a new id), an ETag, and a policy under which nothing in them could ever run."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from publisher.store.media import image_file
from publisher.web.context import in_thread, web

IMMUTABLE = "public, max-age=31536000, immutable"
# an image opened on its own: no script, no style, no plugin, no framing, sandboxed
MEDIA_CSP = "default-src 'none'; img-src 'self'; sandbox; frame-ancestors 'none'"


@in_thread
def media_file(request: Request) -> Response:
    w = web(request)
    found = image_file(w.store, request.path_params["file"][:300])
    if found is None:
        missing = w.message("Not found", "Nothing is published at this address.", status=404)
        missing.headers["cache-control"] = "no-store"
        return missing
    etag = f'"{found.image.sha256[:32]}-{"email" if found.email else "original"}"'
    headers = {
        "cache-control": IMMUTABLE,
        "etag": etag,
        "content-security-policy": MEDIA_CSP,
    }  # x-content-type-options: nosniff, on every answer (app.SecurityHeaders)
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(found.data, media_type=found.image.media_type, headers=headers)


ROUTES: list[BaseRoute] = [Route("/media/{file}", media_file, methods=["GET"])]

__all__ = ["IMMUTABLE", "MEDIA_CSP", "ROUTES"]
