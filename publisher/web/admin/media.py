"""Images (issue 20): `/admin/media` lists the stored images (thumbnail, alt text, size,
who uploaded them and when, where each is used, its two addresses); editors and owners
upload (multipart, bounded while streaming by publisher.web.bounds.UPLOAD_LIMITS) and delete
an image no item uses. Every upload is decoded and re-encoded (publisher.publish.images):
no location or other metadata is ever published."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from publisher.publish.images import MAX_BYTES, CleanImage, ImageError, clean_image
from publisher.publish.media import remove_image_files, write_image_files
from publisher.store import audit
from publisher.store.media import (
    MediaError,
    NewImage,
    delete_image,
    image_usage,
    list_images,
    media_url,
    save_image,
)
from publisher.web.admin.auth import Admin, action, to, view
from publisher.web.bounds import UPLOAD_LIMITS
from publisher.web.context import client_ip, in_thread
from publisher.web.forms import text, upload_name

UPLOAD_FORM_BYTES = UPLOAD_LIMITS["/admin/media"]
MAX_ALT = 1000


def size_words(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{max(1, size // 1000)} kB"


def _listing(admin: Admin, *, notice: str = "", problem: str = "", alt: str = "",
             status: int = 200) -> Response:  # fmt: skip
    w = admin.w
    public = w.config.organisation.public_url
    return admin.page(
        "media.html", "Images", status=status, notice=notice, problem=problem, alt=alt,
        images=list_images(w.store), usage=image_usage(w.store), size_words=size_words,
        address=lambda file: media_url(public, file),
    )  # fmt: skip


@view("viewer")
@in_thread
def media_page(request: Request, admin: Admin) -> Response:
    return _listing(admin, notice=request.query_params.get("notice", "")[:300])


def _new_image(data: bytes, clean: CleanImage, name: str, alt: str, by: str) -> NewImage:
    return NewImage(
        sha256=hashlib.sha256(data).hexdigest(), name=name, media_type=clean.media_type,
        extension=clean.extension, width=clean.original.width, height=clean.original.height,
        data=clean.original.data, email_width=clean.email.width,
        email_height=clean.email.height, email_data=clean.email.data, alt=alt, uploaded_by=by,
    )  # fmt: skip


@action("editor", files=1, form_bytes=UPLOAD_FORM_BYTES)
@in_thread
def upload_post(request: Request, admin: Admin, form: FormData) -> Response:
    w, upload, alt = admin.w, form.get("file"), text(form, "alt", MAX_ALT + 1)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _listing(admin, problem="Choose an image file to upload.", alt=alt, status=400)
    if not alt or len(alt) > MAX_ALT:
        problem = f"Describe the image for people who cannot see it (up to {MAX_ALT} characters)."
        return _listing(admin, problem=problem, alt=alt[:MAX_ALT], status=400)
    name, data = upload_name(upload, "image"), upload.file.read(MAX_BYTES + 1)
    try:
        clean = clean_image(data)
    except ImageError as exc:
        return _listing(admin, problem=f"{name} was not uploaded. {exc}.", alt=alt, status=400)
    image, created = save_image(
        w.store, _new_image(data, clean, name, alt, admin.staff.email), now=w.now()
    )
    write_image_files(w.config, w.store, image)
    if not created:
        notice = f"This image was uploaded already, as {image.name}: nothing was added."
        return to(request, f"admin/media?notice={quote(notice)}")
    audit.record(
        w.store, admin.staff.email, "image uploaded", image.file, ip=client_ip(request),
        now=w.now(),
    )  # fmt: skip
    notice = f"Uploaded {image.name}: {image.width} × {image.height} px, location data removed."
    return to(request, f"admin/media?notice={quote(notice)}")


@action("editor")
@in_thread
def delete_post(request: Request, admin: Admin, form: FormData) -> Response:
    w, number = admin.w, text(form, "image", 20)
    try:
        image = delete_image(w.store, int(number) if number.isdigit() else 0)
    except MediaError as exc:
        return _listing(admin, problem=str(exc), status=409)
    remove_image_files(w.config, image)
    audit.record(
        w.store, admin.staff.email, "image deleted", image.file, ip=client_ip(request),
        now=w.now(),
    )  # fmt: skip
    return to(request, f"admin/media?notice={quote(f'Deleted {image.name}.')}")


__all__ = ["delete_post", "media_page", "upload_post"]
