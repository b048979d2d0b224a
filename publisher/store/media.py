"""Uploaded images (issue 20), kept in the store so every host of a several-host setup has
them: the bounded original and the email size (made by publisher.publish.images), their
meta, and where each is used.

The public address rule, which other parts rely on: `<public_url>/media/<file>`, `<file>`
being `<id>-<slug>.<ext>` for the bounded original and `<id>-<slug>-email.<ext>` for the
email size (`media_url`, `StoredImage.file`, `StoredImage.email_file`). An image is used by
a stored item (of any source, posts of the newsroom included) whose `image` or `body_html`
holds one of its addresses; an image in use cannot be deleted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError

from publisher.errors import PublisherError
from publisher.store import Store
from publisher.store.models import ItemRow, MediaRow
from publisher.support.slug import slugify

__all__ = [
    "FIRST_USES",
    "MEDIA_DIR",
    "ImageUse",
    "ImageFile",
    "MediaError",
    "NewImage",
    "StoredImage",
    "Usage",
    "delete_image",
    "get_image",
    "image_file",
    "image_usage",
    "list_images",
    "media_url",
    "save_image",
]

MEDIA_DIR = "media"  # under public_url, and under the project for static hosting
# a file name as it appears in an address: /media/<id>-<slug>[-email].<ext>
_ADDRESS = re.compile(r"/media/(\d+-[^/\"'\s<>()?#]+)")


class MediaError(PublisherError):
    """An image cannot be deleted (it is in use) or does not exist."""


def media_url(public_url: str, file: str) -> str:
    """The public address of a stored image's file (`StoredImage.file` or `.email_file`)."""
    return f"{public_url.rstrip('/')}/{MEDIA_DIR}/{file}"


@dataclass(frozen=True)
class NewImage:
    """What an upload became (see publisher.publish.images.clean_image)."""

    sha256: str  # of the upload as sent: the same file twice is one image
    name: str
    media_type: str
    extension: str
    width: int
    height: int
    data: bytes
    email_width: int
    email_height: int
    email_data: bytes
    alt: str
    uploaded_by: str


@dataclass(frozen=True)
class StoredImage:
    id: int
    name: str
    slug: str
    media_type: str
    width: int
    height: int
    size: int
    email_width: int
    email_height: int
    email_size: int
    alt: str
    uploaded_by: str
    uploaded_at: datetime
    sha256: str
    file: str  # <id>-<slug>.<ext>: the bounded original
    email_file: str  # <id>-<slug>-email.<ext>: 1,200 px wide at most


@dataclass(frozen=True)
class ImageFile:
    """One of an image's two files, with its bytes."""

    image: StoredImage
    file: str
    data: bytes
    email: bool


@dataclass(frozen=True)
class Usage:
    """A stored item that shows an image (its `image` field or its body)."""

    item_id: str
    title: str
    url: str
    source: str
    retired: bool


def _image(row: MediaRow) -> StoredImage:
    stem = f"{row.id}-{row.slug}"
    return StoredImage(
        row.id, row.name, row.slug, row.media_type, row.width, row.height, row.size,
        row.email_width, row.email_height, row.email_size, row.alt, row.uploaded_by,
        row.uploaded_at, row.sha256, f"{stem}.{row.extension}", f"{stem}-email.{row.extension}",
    )  # fmt: skip


def save_image(store: Store, image: NewImage, *, now: datetime) -> tuple[StoredImage, bool]:
    """Store an image; the same upload again (its sha256) gives the one stored already.
    Returns (image, created)."""
    found = _by_sha(store, image.sha256)
    if found is not None:
        return found, False
    slug = slugify(image.name.rsplit(".", 1)[0])[:60].strip("-") or "image"
    row = MediaRow(
        sha256=image.sha256, name=image.name[:200], slug=slug,
        media_type=image.media_type, extension=image.extension, width=image.width,
        height=image.height, size=len(image.data), email_width=image.email_width,
        email_height=image.email_height, email_size=len(image.email_data), alt=image.alt,
        uploaded_by=image.uploaded_by, uploaded_at=now, data=image.data,
        email_data=image.email_data,
    )  # fmt: skip
    try:
        with store.session() as session:
            session.add(row)
            session.flush()
            return _image(row), True
    except IntegrityError:  # the same upload, stored by another request meanwhile
        found = _by_sha(store, image.sha256)
        if found is None:
            raise
        return found, False


def _by_sha(store: Store, sha256: str) -> StoredImage | None:
    with store.session() as session:
        row = session.scalars(select(MediaRow).where(MediaRow.sha256 == sha256)).first()
        return _image(row) if row else None


def get_image(store: Store, image_id: int) -> StoredImage | None:
    """An image's meta (no bytes)."""
    with store.session() as session:
        row = session.get(MediaRow, image_id)
        return _image(row) if row else None


def image_file(store: Store, file: str) -> ImageFile | None:
    """The image file named `file` exactly (`<id>-<slug>.<ext>` or its `-email` size), with
    its bytes; None for any other name."""
    number = file.split("-", 1)[0]
    if not number.isdigit() or len(number) > 12:
        return None
    with store.session() as session:
        row = session.get(MediaRow, int(number))
        if row is None:
            return None
        image = _image(row)
        if file == image.file:
            return ImageFile(image, file, row.data, email=False)
        if file == image.email_file:
            return ImageFile(image, file, row.email_data, email=True)
        return None


def list_images(store: Store) -> list[StoredImage]:
    """Every image's meta (no bytes), newest first."""
    query = select(MediaRow).order_by(MediaRow.uploaded_at.desc(), MediaRow.id.desc())
    with store.session() as session:
        return [_image(r) for r in session.scalars(query)]


@dataclass(frozen=True)
class ImageUse:
    """How many stored items show an image, and the newest few of them."""

    count: int
    first: tuple[Usage, ...]


FIRST_USES = 10  # the items /admin/media names per image: the rest are counted


# built once; newest first, so the items named are the newest
_MENTIONS = (
    select(
        ItemRow.id, ItemRow.title, ItemRow.url, ItemRow.source, ItemRow.retired_at,
        ItemRow.image, ItemRow.body_html,
    )
    .where(or_(ItemRow.image.like("%/media/%"), ItemRow.body_html.like("%/media/%")))
    .order_by(ItemRow.published.desc(), ItemRow.id)
)  # fmt: skip


def image_usage(store: Store, *, first: int = FIRST_USES) -> dict[int, ImageUse]:
    """Image id -> how many stored items (retired ones too) have one of its addresses in
    their `image` or `body_html`, whatever the host before `/media/`, and the `first`
    newest of them. One pass over the items that mention /media/ at all (no index can
    serve a search inside bodies): the page stays bounded, the pass grows with them."""
    files: dict[str, int] = {}
    for image in list_images(store):
        files[image.file] = files[image.email_file] = image.id
    counts: dict[int, int] = {}
    named: dict[int, list[Usage]] = {}
    if files:
        with store.engine.connect() as connection:  # Core: a row per item, thousands
            for item_id, title, url, source, retired, picture, body in connection.execute(
                _MENTIONS
            ):
                found = _ADDRESS.findall(picture or "") + _ADDRESS.findall(body or "")
                for image_id in {files[f] for f in found if f in files}:
                    counts[image_id] = counts.get(image_id, 0) + 1
                    users = named.setdefault(image_id, [])
                    if len(users) < first:
                        users.append(Usage(item_id, title, url, source, retired is not None))
    return {i: ImageUse(n, tuple(named[i])) for i, n in counts.items()}


def delete_image(store: Store, image_id: int) -> StoredImage:
    """Delete an image no stored item uses; MediaError otherwise (an item, even a retired
    one, may be in a sent edition whose archive page shows the image)."""
    image = get_image(store, image_id)
    if image is None:
        raise MediaError("There is no such image.")
    use = image_usage(store, first=3).get(image_id)
    if use is not None:
        titles = ", ".join(f"“{u.title}”" for u in use.first)
        more = f" and {use.count - 3} more" if use.count > 3 else ""
        raise MediaError(f"This image is used by {titles}{more}: it was not deleted.")
    with store.session() as session:
        session.execute(delete(MediaRow).where(MediaRow.id == image_id))
    return image
