"""Reading subscriber files: a CSV (header: email,name,topics[,status]) or a JSON list of
objects (or {"subscribers": [...]}). Each bad row is reported (where, why) and skipped; a
file that cannot be read at all, or has the wrong shape, is one SubscriberFileError. JSON
goes through publisher.support.bounded like every other document the project reads.
Storing the rows is publisher.store.subscribers.import_subscribers; import_subscriber_file
reads the configured `subscribers.file` and stores it."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from publisher.config.models import control_characters
from publisher.errors import PublisherError
from publisher.store.subscribers import (
    STATUSES,
    SubscriberInput,
    import_subscribers,
    normalise_email,
    topic_slug,
)
from publisher.support import bounded

if TYPE_CHECKING:
    from datetime import datetime

    from publisher.config import PublisherConfig
    from publisher.store import Store

__all__ = [
    "MAX_FILE",
    "MAX_NAME",
    "MAX_TOPIC",
    "FileRow",
    "SubscriberFileError",
    "csv_records",
    "file_rows",
    "import_subscriber_file",
    "read_subscriber_file",
]

MAX_NAME = 200  # characters; a display name, not a paragraph
# characters of one topic as written, the API's bound too: a longer one is refused (the row
# reported), not cut, so two long topics are never merged into one slug
MAX_TOPIC = 100
MAX_FILE = 200 * 1024 * 1024  # bytes: a subscriber file bigger than this is a mistake


class SubscriberFileError(PublisherError):
    """The subscribers file cannot be read at all (rows with problems are only skipped)."""


def _text(value: object, what: str) -> str:
    """A text cell; JSON may hold anything there (a number is accepted, a list is not)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"'{what}' must be text, got {type(value).__name__}")
    return str(value)


def _split_topics(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        parts = [_text(p, "topics") for p in value]
    else:
        parts = re.split(r"[;|,]", _text(value, "topics"))
    too_long = next((p.strip() for p in parts if len(p.strip()) > MAX_TOPIC), None)
    if too_long is not None:
        raise ValueError(f"topic longer than {MAX_TOPIC} characters: {too_long[:40]!r}...")
    return tuple(sorted({slug for p in parts if (slug := topic_slug(p))}))


def _clean_name(value: object) -> str | None:
    """A display name goes into the To header: a control character (CR/LF would start a
    header of its own) makes the row a problem, reported and skipped, never cleaned up."""
    name = _text(value, "name").strip()
    bad = control_characters(name)
    if bad:
        raise ValueError(f"name contains control characters ({', '.join(bad)})")
    if len(name) > MAX_NAME:
        raise ValueError(f"name is longer than {MAX_NAME} characters")
    return name or None


def _parse_row(data: dict[str, Any]) -> SubscriberInput:
    """One record as a row; ValueError says what is wrong with it."""
    email = normalise_email(_text(data.get("email"), "email"))
    status = _text(data.get("status"), "status").strip().lower() or None
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r} (allowed: {', '.join(STATUSES)})")
    return SubscriberInput(
        email, _clean_name(data.get("name")), _split_topics(data.get("topics")), status
    )


@dataclass(frozen=True)
class FileRow:
    """One record of a subscriber file: where it is (`line`: the CSV line it starts on, or
    the JSON entry's number; `where`: the same for a message), the row read from it, or the
    problem that has it skipped (without the `where`)."""

    line: int
    where: str
    email: str  # as written (a bad address is shown as it was)
    row: SubscriberInput | None
    problem: str | None


def _json_records(path: Path, text: str) -> list[tuple[str, int, object]]:
    """A JSON list of objects, or {"subscribers": [...]}; any other shape is an error."""
    try:
        data = bounded.load_json(text)
    except json.JSONDecodeError as exc:
        raise SubscriberFileError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except bounded.LimitError:
        raise SubscriberFileError(
            f"{path}: invalid JSON: nested too deeply (more than {bounded.MAX_DEPTH} levels)"
        ) from None
    records = data.get("subscribers") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise SubscriberFileError(
            f'{path}: expected a list of subscribers or {{"subscribers": [...]}}, '
            f"got {type(records).__name__ if records is not None else 'null'}"
        )
    return [(f"{path}: entry {i + 1}", i + 1, r) for i, r in enumerate(records)]


def csv_records(handle: TextIO, name: str) -> Iterator[tuple[str, int, object]]:
    """Rows with the line each starts on, read as they come (a file of any size is never
    held whole). Records are split on line breaks only as CSV does (a quoted name may hold
    one: the row is then reported, not glued together)."""
    reader = csv.DictReader(handle)
    try:
        fieldnames = reader.fieldnames
        if not fieldnames or "email" not in fieldnames:
            raise SubscriberFileError(f"{name}:1: the CSV header needs an 'email' column")
        start = reader.line_num + 1
        for record in reader:
            yield f"{name}:{start}", start, record
            start = reader.line_num + 1
    except csv.Error as exc:
        raise SubscriberFileError(f"{name}:{reader.line_num}: invalid CSV: {exc}") from None


def file_rows(records: Iterable[tuple[str, int, object]]) -> Iterator[FileRow]:
    """Every record read and checked, duplicates of an earlier row's address reported."""
    seen: set[str] = set()
    for where, line, record in records:
        raw = record.get("email") if isinstance(record, dict) else None
        shown = raw if isinstance(raw, str) else ""
        try:
            if not isinstance(record, dict):
                raise ValueError("expected an object with 'email'")
            if None in record:  # csv.DictReader puts extra cells under the key None
                raise ValueError("more cells than the header has columns")
            row = _parse_row(record)
        except ValueError as exc:
            yield FileRow(line, where, shown, None, str(exc))
            continue
        if row.email in seen:
            problem = f"duplicate address {row.email} (first one kept)"
            yield FileRow(line, where, shown, None, problem)
            continue
        seen.add(row.email)
        yield FileRow(line, where, shown, row, None)


def read_subscriber_file(path: Path) -> tuple[list[SubscriberInput], list[str]]:
    """Rows of a CSV (header: email,name,topics[,status]) or JSON list; problems per row."""
    try:
        if path.stat().st_size > MAX_FILE:
            raise SubscriberFileError(f"{path}: larger than {MAX_FILE // 2**20} MB")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriberFileError(f"{path}: cannot read subscribers: {exc}") from None
    if path.suffix.lower() == ".json":
        numbered: Iterable[tuple[str, int, object]] = _json_records(path, text)
    else:
        numbered = csv_records(io.StringIO(text, newline=""), str(path))
    rows, problems = [], []
    for found in file_rows(numbered):
        if found.row is None:
            problems.append(f"{found.where}: {found.problem}")
        else:
            rows.append(found.row)
    return rows, problems


def import_subscriber_file(config: PublisherConfig, store: Store, *, now: datetime) -> list[str]:
    """Upsert `subscribers.file` (if configured) into the store; never re-subscribes anyone.
    The pipeline calls it before anything is composed (`run --once`, the daemon's collect)."""
    if not config.subscribers.file:
        return []
    path = config.resolve(config.subscribers.file)
    try:
        rows, problems = read_subscriber_file(path)
    except SubscriberFileError as exc:  # one bad file: the run goes on with who is stored
        return [f"subscribers: skipped {exc}; the subscribers already stored are kept"]
    result = import_subscribers(store, rows, now=now)
    notes = [f"subscribers: {result.inserted} new, {result.updated} updated from {path.name}"]
    if result.suppressed:
        notes.append(f"subscribers: {result.suppressed} suppressed addresses not re-added")
    return notes + [f"subscribers: skipped {problem}" for problem in problems]
