"""Importing a CSV of people in /admin (issue 20): the upload is read as it is stored
(starlette spools it to a temporary file; rows are parsed one at a time by the CLI's
reader, publisher.subscribers.files), checked against the list and kept as a pending
import (publisher.store.imports); the preview shows every row's fate and the totals, and
nothing reaches the list until its owner presses "Confirm import", which writes exactly
that, once. The body is cut at 10 MiB + 64 KiB while it streams (publisher.web.bounds)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import IO

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.store import audit
from publisher.store.imports import (
    MAX_IMPORT_ROWS,
    ImportLine,
    ImportTooLarge,
    PendingImport,
    confirm_import,
    import_lines,
    pending_import,
    stage_import,
)
from publisher.subscribers.files import SubscriberFileError, csv_records, file_rows
from publisher.web.admin.auth import Admin, action, base_of, view
from publisher.web.admin.roster import MAX_NOTE, note_problem, staff_context
from publisher.web.bounds import UPLOAD_LIMITS
from publisher.web.context import client_ip, in_thread
from publisher.web.forms import text, upload_name

SHOWN = 2000  # rows in the preview table (the totals count them all)


def _upload_page(
    admin: Admin, errors: dict[str, str] | None = None, note: str = "", status: int = 200
) -> Response:
    return admin.page(
        "subscribers_import.html", "Import people", status=status, errors=errors or {},
        note=note, max_rows=MAX_IMPORT_ROWS,
    )  # fmt: skip


@view("editor")
@in_thread
def import_page(request: Request, admin: Admin) -> Response:
    return _upload_page(admin)


def _text_of(upload: IO[bytes]) -> io.TextIOWrapper:
    upload.seek(0)
    return io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")


def _count_records(upload: IO[bytes]) -> int:
    """Records after the header, counted in one cheap pass before anything is checked."""
    handle = _text_of(upload)
    reader = csv.reader(handle)
    try:
        return max(sum(1 for _ in reader) - 1, 0)
    except csv.Error as exc:  # e.g. a cell over csv's field limit: the file is refused
        raise SubscriberFileError(f"line:{reader.line_num}: invalid CSV: {exc}") from None
    finally:
        handle.detach()  # the upload stays open for the second pass


def _lines(handle: io.TextIOWrapper, name: str) -> Iterator[ImportLine]:
    for found in file_rows(csv_records(handle, name)):
        if found.row is None:
            yield ImportLine(found.line, found.email, outcome="skip", reason=found.problem)
        else:
            row = found.row
            yield ImportLine(found.line, row.email, row.name, row.topics, row.status)


def _stage(admin: Admin, upload: IO[bytes], filename: str, note: str) -> PendingImport:
    """SubscriberFileError, UnicodeDecodeError or ImportTooLarge when it cannot be kept."""
    w = admin.w
    if _count_records(upload) > MAX_IMPORT_ROWS:
        raise ImportTooLarge(f"more than {MAX_IMPORT_ROWS:,} rows")
    handle = _text_of(upload)
    try:
        return stage_import(
            w.store, _lines(handle, "line"), staff_id=admin.staff.id, note=note,
            filename=filename, now=w.now(),
        )  # fmt: skip
    finally:
        handle.detach()


@action("editor", files=1, form_bytes=UPLOAD_LIMITS["/admin/subscribers/import"])
@in_thread
def import_post(request: Request, admin: Admin, form: FormData) -> Response:
    note = text(form, "note", MAX_NOTE + 1)
    upload = form.get("file")
    errors: dict[str, str] = {}
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors["file"] = "Choose a CSV file (columns: email, name, topics)."
    if problem := note_problem(note):
        errors["note"] = problem
    if errors or not isinstance(upload, UploadFile):
        return _upload_page(admin, errors, note, status=400)
    try:
        staged = _stage(admin, upload.file, upload_name(upload, "upload.csv"), note)
    except SubscriberFileError as exc:
        where = re.sub(r"^line:(\d+): ", r"line \1: ", str(exc))
        errors["file"] = f"This file cannot be read as a list of people: {where}"
    except UnicodeDecodeError:
        errors["file"] = "This file is not UTF-8 text: save it as “CSV UTF-8” and try again."
    except ImportTooLarge:
        errors["file"] = (
            f"This file has more than {MAX_IMPORT_ROWS:,} rows: split it, or ask whoever runs "
            "the server to import it with `publisher subscribers import`."
        )
    if errors:
        return _upload_page(admin, errors, note, status=400)
    w = admin.w
    counts = ", ".join(f"{n} {k}" for k, n in staged.totals.items())
    audit.record(
        w.store, admin.staff.email, "import previewed", f"import #{staged.id}: {counts}",
        ip=client_ip(request), now=w.now(),
    )  # fmt: skip
    url = f"{base_of(request)}admin/subscribers/import/{staged.id}"
    return RedirectResponse(url, status_code=303)


@view("editor")
@in_thread
def preview_page(request: Request, admin: Admin) -> Response:
    w = admin.w
    staged = pending_import(w.store, request.path_params["id"], staff_id=admin.staff.id)
    if staged is None:
        return admin.message(
            "No such import", "It may have expired (after 2 hours) or be someone else's: "
            "upload the file again.", status=404,
        )  # fmt: skip
    lines = import_lines(w.store, staged.id, limit=SHOWN) if staged.result is None else []
    expired = staged.result is None and staged.expires_at <= w.now()
    return admin.page(
        "subscribers_preview.html", "Import preview" if staged.result is None else "Imported",
        staged=staged, lines=lines, shown=SHOWN, expired=expired,
        total=sum(staged.totals.values()),
    )  # fmt: skip


@action("editor")
@in_thread
def confirm_post(request: Request, admin: Admin, form: FormData) -> Response:
    w, import_id = admin.w, request.path_params["id"]
    ctx = staff_context(request, admin)
    report = confirm_import(w.store, import_id, staff_id=admin.staff.id, ctx=ctx, now=w.now())
    if report is None:
        return admin.message(
            "Nothing imported",
            "This import was confirmed already, has expired, or is not yours: nothing was "
            "written this time.",
            status=409,
        )
    audit.record(
        w.store, admin.staff.email, "import confirmed",
        f"import #{import_id}: {report.inserted} added, {report.updated} updated",
        ip=client_ip(request), now=w.now(),
    )  # fmt: skip
    return RedirectResponse(f"{base_of(request)}admin/subscribers/import/{import_id}", 303)
