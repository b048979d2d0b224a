"""Dates as RSS and Atom entries write them: feedparser's reading first; a date it cannot
read ('Seg, 24 Set 2018', Portuguese) by dateparser in the feed's language (the
organisation's when the feed names none); a date that is only a day ('2026-12-04',
'Fri, 04 Dec 2026') means that day in the organisation's zone."""

from __future__ import annotations

import calendar
import functools
import re
import threading
import time
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from dateparser.date import DateDataParser

from publisher.sources.base import day_start

# Absolute dates only, every part given: a relative one ('ontem') or one missing its year
# would be read against the real clock, which a source never reads.
_SETTINGS: Any = {
    "PARSERS": ["custom-formats", "absolute-time"],
    "REQUIRE_PARTS": ["day", "month", "year"],
    "TIMEZONE": "UTC",  # a date without an offset is UTC, as feedparser reads it
    "TO_TIMEZONE": "UTC",
    "RETURN_AS_TIMEZONE_AWARE": True,
}
_LOCK = threading.Lock()
_HAS_TIME = re.compile(r"\d:\d\d|T\d\d")

When = tuple[datetime, date | None]  # the moment, and the day when only a day was given


def entry_dates(entry: Any, zone: tzinfo, language: str | None) -> tuple[When, datetime | None]:
    """(published, its day if date-only) and updated; ValueError when neither is readable."""
    published = entry_date(entry, "published", zone, language)
    updated = entry_date(entry, "updated", zone, language)
    first = published or updated
    if first is None:
        raw = dict.get(entry, "published") or dict.get(entry, "updated")
        shown = f" ('{str(raw)[:60]}')" if raw else ""
        raise ValueError(f"entry has no (readable) date{shown}")
    return first, updated[0] if updated else None


def entry_date(entry: Any, key: str, zone: tzinfo, language: str | None) -> When | None:
    # dict.get: feedparser's own lookup maps published and updated onto each other, warning.
    raw = dict.get(entry, key)
    stamp = dict.get(entry, f"{key}_parsed")
    moment = from_struct(stamp) if stamp else foreign_date(raw, language)
    if moment is None:
        return None
    if isinstance(raw, str) and not _HAS_TIME.search(raw) and moment.time() == datetime.min.time():
        day = moment.date()
        return day_start(day, zone), day
    return moment, None


def foreign_date(raw: object, language: str | None) -> datetime | None:
    """A date feedparser could not read, read by dateparser in the feed's language (else
    the organisation's); None when neither is a language dateparser knows."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    parser = _parser((language or "").split("-")[0].strip().lower())
    if parser is None:
        return None
    with _LOCK:  # one parser per language, shared by the pool's threads
        found = parser.get_date_data(raw[:100]).date_obj
    try:
        return found.astimezone(UTC) if found else None
    except OverflowError:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
        raise ValueError(f"date '{raw[:60]}' is out of range") from None


@functools.lru_cache(maxsize=64)
def _parser(code: str) -> DateDataParser | None:
    """Made once per language (making one costs a second; a date then takes milliseconds).
    Never one that guesses the language: that takes about two seconds a date."""
    if not code:
        return None
    try:
        parser = DateDataParser(languages=[code], settings=_SETTINGS)
        parser.get_date_data("2000-01-01")  # its languages are only loaded, and checked, here
    except ValueError:  # a language dateparser does not know
        return None
    return parser


def from_struct(stamp: time.struct_time) -> datetime:
    try:
        return datetime.fromtimestamp(calendar.timegm(stamp), UTC)
    except (OverflowError, ValueError, OSError):
        raise ValueError(f"date {time.strftime('%Y-%m-%d', stamp)} is out of range") from None
