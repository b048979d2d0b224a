"""Reading subscriber files: a CSV (header: email,name,topics[,status]) or a JSON list of
objects (or {"subscribers": [...]}). Each bad row is reported (where, why) and skipped; a
file that cannot be read at all, or has the wrong shape, is one SubscriberFileError. JSON
goes through publisher.support.bounded like every other document the project reads.
Storing the rows is publisher.store.subscribers.import_subscribers."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from publisher.config.models import control_characters
from publisher.errors import PublisherError
from publisher.store.subscribers import STATUSES, SubscriberInput, normalise_email, topic_slug
from publisher.support import bounded

__all__ = ["MAX_FILE", "MAX_NAME", "SubscriberFileError", "read_subscriber_file"]

MAX_NAME = 200  # characters; a display name, not a paragraph
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


def _parse_row(data: dict[str, Any], where: str) -> SubscriberInput:
    try:
        email = normalise_email(_text(data.get("email"), "email"))
        status = _text(data.get("status"), "status").strip().lower() or None
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r} (allowed: {', '.join(STATUSES)})")
        return SubscriberInput(
            email, _clean_name(data.get("name")), _split_topics(data.get("topics")), status
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _json_records(path: Path, text: str) -> list[tuple[str, object]]:
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
    return [(f"{path}: entry {i + 1}", r) for i, r in enumerate(records)]


def _csv_records(path: Path, text: str) -> list[tuple[str, object]]:
    """Rows with the line each starts on. Records are split on line breaks only as CSV
    does (a quoted name may hold one: the row is then reported, not glued together)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fieldnames = reader.fieldnames
        if not fieldnames or "email" not in fieldnames:
            raise SubscriberFileError(f"{path}:1: the CSV header needs an 'email' column")
        records: list[tuple[str, object]] = []
        start = reader.line_num + 1
        for record in reader:
            records.append((f"{path}:{start}", record))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise SubscriberFileError(f"{path}:{reader.line_num}: invalid CSV: {exc}") from None
    return records


def read_subscriber_file(path: Path) -> tuple[list[SubscriberInput], list[str]]:
    """Rows of a CSV (header: email,name,topics[,status]) or JSON list; problems per row."""
    try:
        if path.stat().st_size > MAX_FILE:
            raise SubscriberFileError(f"{path}: larger than {MAX_FILE // 2**20} MB")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriberFileError(f"{path}: cannot read subscribers: {exc}") from None
    if path.suffix.lower() == ".json":
        numbered = _json_records(path, text)
    else:
        numbered = _csv_records(path, text)
    rows, problems, seen = [], [], set()
    for where, record in numbered:
        try:
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected an object with 'email'")
            if None in record:  # csv.DictReader puts extra cells under the key None
                raise ValueError(f"{where}: more cells than the header has columns")
            row = _parse_row(record, where)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if row.email in seen:
            problems.append(f"{where}: duplicate address {row.email} (first one kept)")
            continue
        seen.add(row.email)
        rows.append(row)
    return rows, problems
