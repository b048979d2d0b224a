"""The stored images written beside the archive for static hosting (issue 20):
`<project>/media/<file>`, the files `publisher serve` also serves at /media/<file>. Written at
upload and whenever feeds or the archive are built (only the missing ones: an image's bytes
never change under its name)."""

from __future__ import annotations

import logging
from pathlib import Path

from publisher.config import PublisherConfig
from publisher.errors import PublisherError
from publisher.store import Store
from publisher.store.media import MEDIA_DIR, StoredImage, image_file, list_images
from publisher.support.files import write_atomic

log = logging.getLogger(__name__)


def media_folder(config: PublisherConfig) -> Path:
    return config.resolve(MEDIA_DIR)


def write_image_files(config: PublisherConfig, store: Store, image: StoredImage) -> int:
    """Both files of `image` that are missing under media/; how many were written."""
    folder, written = media_folder(config), 0
    for name in (image.file, image.email_file):
        path = folder / name
        if path.exists():
            continue
        found = image_file(store, name)
        if found is None:  # deleted meanwhile
            continue
        try:
            written += write_atomic(path, found.data)
        except OSError as exc:
            raise PublisherError(f"cannot write {path}: {exc.strerror}") from None
    return written


def write_media(config: PublisherConfig, store: Store) -> int:
    """Every stored image's files missing under media/ (another host uploaded them, or the
    folder was cleared); how many files were written."""
    return sum(write_image_files(config, store, image) for image in list_images(store))


def remove_image_files(config: PublisherConfig, image: StoredImage) -> None:
    """A deleted image's files (this host's copy; other hosts keep theirs until cleared)."""
    for name in (image.file, image.email_file):
        try:
            (media_folder(config) / name).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove %s: %s", name, exc.strerror)


__all__ = ["media_folder", "remove_image_files", "write_image_files", "write_media"]
