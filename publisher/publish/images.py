"""Uploaded images made safe to publish (issue 20). Activists' photos must not reveal where
they were taken, and a file from anyone must not take the server down.

An upload is decoded with Pillow, JPEG, PNG, WebP or GIF only, judged by decoding, never by
its name or declared type; its declared size is checked before any pixel is decoded
(a PNG header claiming 100,000 x 100,000 is refused at once), as is the length of an
animation. The pixels are turned upright by the EXIF orientation, converted to sRGB, bounded
to MAX_SIDE and re-encoded from scratch, so nothing else of the file survives: no EXIF, GPS
position, XMP, comment or colour profile. A second copy EMAIL_WIDTH wide (never upscaled)
is made for email. Pure: bytes in, bytes out."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageOps, ImageSequence, UnidentifiedImageError

from publisher.errors import PublisherError

MAX_BYTES = 10 * 1024 * 1024  # an upload: "up to 10 MB"
# One frame: a 50-megapixel photo (what a phone's largest mode makes) decodes in ~150 MB;
# beyond it the file is refused before decoding. Pillow's own bomb check is set to the same.
MAX_PIXELS = 50_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
MAX_FRAMES = 300  # an animation: 10 seconds at 30 frames a second
MAX_ANIMATION_PIXELS = 40_000_000  # every frame together, decoded one at a time
MAX_SIDE = 2400  # the bounded original's longest side
EMAIL_WIDTH = 1200  # the email size (an email column is 600 px; 2x for sharp screens)

# Pillow's format -> (media type, file extension, the format written)
FORMATS = {
    "JPEG": ("image/jpeg", "jpg", "JPEG"),
    "MPO": ("image/jpeg", "jpg", "JPEG"),  # a camera's JPEG with extra pictures: the first
    "PNG": ("image/png", "png", "PNG"),
    "WEBP": ("image/webp", "webp", "WEBP"),
    "GIF": ("image/gif", "gif", "GIF"),
}
OPENED = ["JPEG", "PNG", "WEBP", "GIF"]  # the decoders tried (JPEG's opens MPO too)
NOT_AN_IMAGE = "This file is not a JPEG, PNG, WebP or GIF image"
DAMAGED = "This image is incomplete or damaged: upload the original file again"
SRGB = ImageCms.createProfile("sRGB")
ENCODING: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 85, "optimize": True, "progressive": True},
    "WEBP": {"quality": 85, "method": 4},
    "PNG": {"compress_level": 3},  # a photo saved as PNG: level 6 is 2.7x slower, no smaller
    "GIF": {"optimize": False},
}


class ImageError(PublisherError):
    """An upload that cannot become a published image; the message is for staff."""


@dataclass(frozen=True)
class Rendition:
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class CleanImage:
    """An upload re-encoded: the bounded original and the email size, same format."""

    media_type: str
    extension: str
    original: Rendition
    email: Rendition
    frames: int


def clean_image(data: bytes) -> CleanImage:
    """The upload decoded, checked and re-encoded; ImageError saying why otherwise."""
    if len(data) > MAX_BYTES:
        raise ImageError(f"This file is too large: {_mb(len(data))} (at most 10 MB)")
    with _opened(data) as image:
        if image.format not in FORMATS:
            raise ImageError(NOT_AN_IMAGE)
        media_type, extension, written = FORMATS[image.format]
        _check_size(image.size)
        frames = _frame_count(image)
        if frames > 1:
            original, email = _animation(image, written, frames)
        else:
            original, email = _still(image, written)
    return CleanImage(media_type, extension, original, email, frames)


@contextmanager
def _opened(data: bytes) -> Iterator[Image.Image]:
    """The image with its header read; every decoding failure becomes an ImageError."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_PIXELS and twice that: a refusal here too. (Not
            # thread-safe before Python 3.14: at worst this filter outlives the block, and
            # then means what it means here: an image over the limit is refused.)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=OPENED)
        with opened as image:
            yield image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageError(_too_many(int(declared.group(1)) if declared else None)) from None
    except UnidentifiedImageError:
        raise ImageError(NOT_AN_IMAGE) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        # Pillow's words for a truncated or corrupt stream, raised while decoding
        raise ImageError(DAMAGED) from exc


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _too_many(pixels: int | None) -> str:
    said = f"{pixels:,} pixels" if pixels else "more pixels than allowed"
    return f"This image is too large: {said} (at most {MAX_PIXELS:,})"


def _check_size(size: tuple[int, int]) -> None:
    """Refused from the declared size, before any pixel is decoded."""
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(DAMAGED)
    if width * height > MAX_PIXELS:
        raise ImageError(_too_many(width * height))


def _frame_count(image: Image.Image) -> int:
    """Frames of an animation (1 for a still; an MPO's extra pictures are dropped), refused
    beyond MAX_FRAMES or MAX_ANIMATION_PIXELS in all. Counted only up to the bound: a GIF's
    frames are found by reading through them (a 10 MB GIF can hold 600,000 tiny ones)."""
    if image.format == "MPO" or not getattr(image, "is_animated", False):
        return 1
    width, height = image.size
    most = max(1, min(MAX_FRAMES, MAX_ANIMATION_PIXELS // (width * height)))
    frames = _count_up_to(image, most + 1)
    if frames > MAX_FRAMES:
        raise ImageError(f"This animation is too long: more than {MAX_FRAMES} frames")
    if frames > most:
        raise ImageError(
            f"This animation is too large: more than {most} frames of {width} x {height} "
            f"pixels (at most {MAX_ANIMATION_PIXELS:,} pixels in all)"
        )
    return frames


def _count_up_to(image: Image.Image, limit: int) -> int:
    """min(frames, limit); a WebP or PNG animation declares its count in its header."""
    if image.format != "GIF":
        return min(int(getattr(image, "n_frames", 1)), limit)
    count = 1
    try:
        while count < limit:  # reads (and decodes) at most `limit` bounded frames
            image.seek(count)
            count += 1
    except EOFError:
        pass
    finally:
        image.seek(0)
    return count


def _bounded(size: tuple[int, int], longest: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, longest / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _email_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    if width <= EMAIL_WIDTH:
        return size
    return EMAIL_WIDTH, max(1, round(height * EMAIL_WIDTH / width))


def _pixels(image: Image.Image, written: str) -> Image.Image:
    """Upright, in sRGB, in a mode the format writes; a new image with no metadata."""
    if image.format in ("JPEG", "MPO"):  # decode at 1/2, 1/4 or 1/8 when that is enough
        image.draft(image.mode, _bounded(image.size, MAX_SIDE))
    image.load()
    upright = ImageOps.exif_transpose(image) or image
    alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    mode = "RGBA" if alpha and written != "JPEG" else "L" if upright.mode in ("L", "1") else "RGB"
    clean = _to_srgb(upright, mode)
    clean.info = {}  # whatever the decoder kept (EXIF, XMP, comments, profile) is dropped
    return clean


def _to_srgb(image: Image.Image, mode: str) -> Image.Image:
    """The pixels in sRGB (a Display P3 or Adobe RGB photo keeps its colours without its
    profile); a profile that cannot be read is ignored."""
    icc = image.info.get("icc_profile")
    if icc and mode != "L":
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                image.convert("RGBA" if mode == "RGBA" else image.mode), source, SRGB,
                outputMode=mode,
            )  # fmt: skip
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    return image.convert(mode)


def _still(image: Image.Image, written: str) -> tuple[Rendition, Rendition]:
    clean = _pixels(image, written)
    original = clean.resize(
        _bounded(clean.size, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0
    )
    email = original.resize(_email_size(original.size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return _encode([original], written), _encode([email], written)


def _animation(image: Image.Image, written: str, frames: int) -> tuple[Rendition, Rendition]:
    """Every frame decoded in turn (bounded by MAX_ANIMATION_PIXELS), both sizes kept."""
    size = _bounded(image.size, MAX_SIDE)
    email_size = _email_size(size)
    big: list[Image.Image] = []
    small: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        durations.append(int(frame.info.get("duration", 100)))
        rgba = frame.convert("RGBA")
        big.append(rgba.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))
        small.append(rgba.resize(email_size, Image.Resampling.LANCZOS, reducing_gap=3.0))
    loop = int(image.info.get("loop", 0))
    return (
        _encode(big, written, durations=durations, loop=loop),
        _encode(small, written, durations=durations, loop=loop),
    )


def _encode(
    frames: list[Image.Image], written: str, *, durations: list[int] | None = None, loop: int = 0
) -> Rendition:
    """Written from the pixels only: no exif, icc_profile, xmp or comment is passed."""
    first = frames[0]
    options: dict[str, object] = dict(ENCODING[written])
    if len(frames) > 1:
        options |= {"save_all": True, "append_images": frames[1:], "duration": durations}
        options |= {"loop": loop} | ({"disposal": 2} if written == "GIF" else {})
    buffer = io.BytesIO()
    first.save(buffer, written, **options)
    return Rendition(buffer.getvalue(), first.width, first.height)


__all__ = [
    "EMAIL_WIDTH",
    "MAX_BYTES",
    "MAX_FRAMES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "NOT_AN_IMAGE",
    "CleanImage",
    "ImageError",
    "Rendition",
    "clean_image",
]
