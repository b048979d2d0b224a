"""Reading posted forms safely: size-limited, urlencoded or multipart, no files kept."""

from __future__ import annotations

import unicodedata
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

MAX_FORM_BYTES = 64 * 1024
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class FormTooLarge(Exception):
    pass


async def read_form(request: Request, *, limit: int = MAX_FORM_BYTES, files: int = 0) -> FormData:
    """The posted form, at most `limit` bytes; `files`: how many uploaded files it may hold
    (the newsroom's uploads; their body limits are publisher.web.bounds.UPLOAD_LIMITS)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise FormTooLarge
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        # the common case (browsers, one-click): the standard library parses it faster
        body = await request.body()
        if len(body) > limit:
            raise FormTooLarge
        pairs: list[tuple[str, str | UploadFile]] = []
        pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return FormData(pairs[:100])
    # multipart (some mail providers' one-click; the newsroom's uploads): a file part is
    # bounded by `limit` through the body limit, every other part by the form's limit
    return await request.form(max_files=files, max_fields=100, max_part_size=MAX_FORM_BYTES)


def upload_name(upload: UploadFile, default: str) -> str:
    """An uploaded file's own name, as shown and kept: no folders, no control characters, at
    most 200 characters (`default` when nothing is left)."""
    name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:200] or default


def text(form: FormData, name: str, limit: int = 320) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def many(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str)]


def name_problem(value: str) -> str | None:
    """Why a person's name cannot be kept, or None. A line break or other control character
    would break every email header the name is written into (the `To:` display name)."""
    # Cf is allowed but for the bidirectional overrides: Persian names need U+200C (ZWNJ)
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in BIDI for c in value):
        return "Use letters, spaces and punctuation only: no line breaks or control characters."
    return None
