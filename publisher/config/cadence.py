"""Cadences: the readable forms and cron expressions of `schedules.yaml`, parsed and checked.

Pure (no scheduler, no clock): this module turns the text staff write into the fields of a
cron trigger, a sentence in words, and the checks that must fail at load time (an impossible
date such as 31 February). publisher/schedule/slots.py builds the APScheduler trigger from
`Cadence.trigger_fields()`; config.py validates with `parse_cadence`.

Accepted forms:
    daily: 07:30
    weekly: monday 09:00            (several days: "weekly: monday, thursday 09:00")
    monthly: first tuesday 10:00    (first..fourth, last; or a day number: "monthly: 15 10:00")
    0 9 * * 1                       (5-field cron: minute hour day month day-of-week, 0/7 = Sunday)
    0 0 9 * * 1                     (6 fields: seconds first; mostly useful for tests)
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from datetime import date, time, timedelta

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
ORDINALS = {"first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "last": "last"}
# Longest each month can be (February 29 exists in leap years).
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
READABLE_HELP = (
    "a cadence is 'daily: 07:30', 'weekly: monday 09:00', 'monthly: first tuesday 10:00', "
    "'monthly: 15 10:00' or a 5-field cron such as '0 9 * * 1'"
)


@dataclass(frozen=True)
class Cadence:
    """When a campaign fires, as sets of allowed values (cron AND semantics)."""

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # day of month, 1..31
    months: frozenset[int]  # 1..12
    weekdays: frozenset[int]  # 0 = Monday .. 6 = Sunday (Python's numbering)
    nth_weekday: tuple[str, int] | None = None  # ("1st".."4th"/"last", weekday): monthly forms
    words: str = ""

    def trigger_fields(self) -> dict[str, str]:
        """Keyword arguments for APScheduler's CronTrigger (explicit lists: no numbering trap)."""
        fields = {
            "second": _compact(self.seconds, 60),
            "minute": _compact(self.minutes, 60),
            "hour": _compact(self.hours, 24),
            "month": _compact(self.months, 12),
            "day_of_week": _compact(self.weekdays, 7, names=[d[:3] for d in WEEKDAYS]),
            "day": _compact(self.days, 31),
        }
        if self.nth_weekday:
            ordinal, weekday = self.nth_weekday
            fields["day"] = f"{ordinal} {WEEKDAYS[weekday][:3]}"
        return fields

    def times_of_day(self) -> list[time]:
        """Every local time of day this cadence fires at, sorted."""
        return sorted(time(h, m, s) for h in self.hours for m in self.minutes for s in self.seconds)

    def first_day_on_or_after(self, start: date, *, horizon_days: int = 366 * 9) -> date | None:
        """The first calendar day the cadence fires on (None if never within the horizon)."""
        day = start
        for _ in range(horizon_days):
            if self.fires_on(day):
                return day
            day += timedelta(days=1)
        return None

    def fires_on(self, day: date) -> bool:
        if day.month not in self.months or day.weekday() not in self.weekdays:
            return False
        if self.nth_weekday is None:
            return day.day in self.days
        ordinal, weekday = self.nth_weekday
        if day.weekday() != weekday:
            return False
        if ordinal == "last":
            return (day + timedelta(days=7)).month != day.month
        return (day.day - 1) // 7 + 1 == int(ordinal[0])


def _compact(values: frozenset[int], size: int, names: list[str] | None = None) -> str:
    if len(values) == size:
        return "*"
    return ",".join(names[v] if names else str(v) for v in sorted(values))


ALL_SECONDS = frozenset({0})


def parse_cadence(text: str) -> Cadence:
    """Parse a readable form or a cron expression; ValueError says what is allowed."""
    text = " ".join(str(text).split())
    if not text:
        raise ValueError(f"empty cadence; {READABLE_HELP}")
    head, sep, rest = text.partition(":")
    kind = head.strip().lower()
    if sep and kind in ("daily", "weekly", "monthly"):
        cadence = _parse_readable(kind, rest.strip(), text)
    elif re.fullmatch(r"[\w*?,/\- ]+", text) and len(text.split()) in (5, 6):
        cadence = _parse_cron(text)
    else:
        raise ValueError(f"cannot read cadence '{text}'; {READABLE_HELP}")
    _check_possible(cadence)
    return cadence


# --- readable forms -----------------------------------------------------------------------


def _parse_time(value: str, text: str) -> tuple[int, int]:
    match = re.fullmatch(r"([01]?\d|2[0-3])[:.]([0-5]\d)", value)
    if not match:
        raise ValueError(f"'{value}' in cadence '{text}' is not a time of day like 09:00")
    return int(match[1]), int(match[2])


def _weekday(name: str, text: str) -> int:
    name = name.lower().rstrip(",")
    for index, day in enumerate(WEEKDAYS):
        if name == day or name == day[:3]:
            return index
    close = difflib.get_close_matches(name, WEEKDAYS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else " (monday..sunday)"
    raise ValueError(f"'{name}' in cadence '{text}' is not a day of the week{hint}")


def _parse_readable(kind: str, rest: str, text: str) -> Cadence:
    words = rest.replace(",", " ").split()
    if not words:
        raise ValueError(f"cadence '{text}' needs a time; {READABLE_HELP}")
    hour, minute = _parse_time(words[-1], text)
    at = f"{hour:02d}:{minute:02d}"
    # Every day at that time; each form narrows the days and says it in words.
    base = Cadence(
        text=text,
        seconds=ALL_SECONDS,
        minutes=frozenset({minute}),
        hours=frozenset({hour}),
        days=frozenset(range(1, 32)),
        months=frozenset(range(1, 13)),
        weekdays=frozenset(range(7)),
    )
    args = words[:-1]
    if kind == "daily":
        if args:
            raise ValueError(f"'daily' takes only a time, e.g. 'daily: 07:30' (got '{text}')")
        return replace(base, words=f"every day at {at}")
    if kind == "weekly":
        if not args:
            raise ValueError(f"'weekly' needs a day, e.g. 'weekly: monday 09:00' (got '{text}')")
        days = sorted({_weekday(a, text) for a in args})
        names = ", ".join(WEEKDAYS[d].capitalize() for d in days)
        return replace(base, weekdays=frozenset(days), words=f"every {names} at {at}")
    return _parse_monthly(args, base, at, text)


def _parse_monthly(args: list[str], base: Cadence, at: str, text: str) -> Cadence:
    if len(args) == 1 and args[0].isdigit() and 1 <= int(args[0]) <= 31:
        day = int(args[0])
        words = f"on day {day} of every month at {at}"
        if day > 28:
            words += " (months without that day are skipped)"
        return replace(base, days=frozenset({day}), words=words)
    if len(args) == 2 and args[0].lower() in ORDINALS:
        weekday = _weekday(args[1], text)
        return replace(
            base,
            nth_weekday=(ORDINALS[args[0].lower()], weekday),
            words=f"on the {args[0].lower()} {WEEKDAYS[weekday].capitalize()} of every month "
            f"at {at}",
        )
    raise ValueError(
        f"cannot read '{text}': 'monthly' takes 'first|second|third|fourth|last <day> HH:MM' "
        "or '<day number> HH:MM'"
    )


# --- cron ---------------------------------------------------------------------------------

_CRON_FIELDS = (  # name, low, high, names
    ("second", 0, 59, None),
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, tuple(d[:3] for d in ("sunday",) + WEEKDAYS[:6])),
)


def _parse_cron(text: str) -> Cadence:
    parts = text.split()
    specs = _CRON_FIELDS if len(parts) == 6 else _CRON_FIELDS[1:]
    values = [_parse_cron_field(part, *spec, text) for part, spec in zip(parts, specs, strict=True)]
    if len(parts) == 5:
        values.insert(0, set(ALL_SECONDS))
    seconds, minutes, hours, days, months, cron_weekdays = values
    day_field, weekday_field = parts[-3], parts[-1]
    if day_field not in ("*", "?") and weekday_field not in ("*", "?"):
        raise ValueError(
            f"cron '{text}' restricts both the day of the month and the day of the week, which "
            "cron reads as 'either one' and is easy to get wrong; restrict only one of them, "
            "or use a readable form such as 'monthly: first tuesday 10:00'"
        )
    # cron numbers Sunday 0 (or 7); Python and our trigger fields number Monday 0.
    weekdays = frozenset((d - 1) % 7 for d in cron_weekdays)
    cadence = Cadence(
        text=text,
        seconds=frozenset(seconds),
        minutes=frozenset(minutes),
        hours=frozenset(hours),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=weekdays,
    )
    return replace(cadence, words=f"{describe_cron(cadence)} (cron '{text}')")


def describe_cron(cadence: Cadence) -> str:
    """A cron cadence in words, e.g. "09:00 on Monday" (used by `publisher schedule`)."""
    times = cadence.times_of_day()
    if len(times) == 1:
        t = times[0]
        when = f"at {t:%H:%M}" + (f":{t.second:02d}" if t.second else "")
    else:
        when = f"{len(times)} times a day"
    if len(cadence.weekdays) < 7:
        when += " on " + ", ".join(WEEKDAYS[d].capitalize() for d in sorted(cadence.weekdays))
    if len(cadence.days) < 31:
        when += " on day " + ", ".join(str(d) for d in sorted(cadence.days))
    if len(cadence.months) < 12:
        when += " in " + ", ".join(MONTHS[m - 1].capitalize() for m in sorted(cadence.months))
    return when if when.count(" on ") else when + " every day"


def _parse_cron_field(
    part: str, name: str, low: int, high: int, names: tuple[str, ...] | None, text: str
) -> set[int]:
    out: set[int] = set()
    for element in part.lower().split(","):
        range_part, _, step_part = element.partition("/")
        try:
            step = int(step_part) if step_part else 1
            if range_part in ("*", "?"):
                start, stop = low, high
            elif "-" in range_part:
                a, b = range_part.split("-", 1)
                start, stop = _cron_value(a, names, low), _cron_value(b, names, low)
            else:
                start = _cron_value(range_part, names, low)
                stop = high if step_part else start
        except ValueError:
            start = stop = -1
            step = 1
        if not (low <= start <= high and low <= stop <= high and start <= stop and step >= 1):
            allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
            raise ValueError(
                f"cron '{text}': '{element}' is not a valid {name} (allowed: {allowed}, "
                "'*', ranges a-b, lists a,b and steps */n)"
            )
        out.update(range(start, stop + 1, step))
    return out


def _cron_value(value: str, names: tuple[str, ...] | None, low: int) -> int:
    if names and value[:3] in names and not value.isdigit():
        return names.index(value[:3]) + low
    return int(value)


def _check_possible(cadence: Cadence) -> None:
    """Reject cadences that can never fire (e.g. '0 9 31 2 *'): a load-time error."""
    if cadence.nth_weekday:
        return
    if not any(day <= MONTH_DAYS[month - 1] for day in cadence.days for month in cadence.months):
        raise ValueError(
            f"cadence '{cadence.text}' can never fire: no month in it has that day "
            "(e.g. 31 February)"
        )


# --- durations and times of day ------------------------------------------------------------

_DURATION = re.compile(r"(\d+)\s*(d|h|m|s)")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# No duration in schedules.yaml needs more than a year; the bound also keeps a typo such as
# '99999999999999d' a clear error instead of an overflow deep inside datetime arithmetic.
MAX_DURATION = timedelta(days=366)


def parse_duration(value: str, *, maximum: timedelta = MAX_DURATION) -> timedelta:
    """'6h', '90m', '1h30m', '2d', '30s' -> timedelta (ValueError says what is allowed)."""
    text = str(value).strip().lower().replace(" ", "")
    if not text or len(text) > 40 or _DURATION.sub("", text):
        raise ValueError(f"'{value}' is not a duration; write e.g. '6h', '90m', '1h30m' or '2d'")
    seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(text))
    if seconds > maximum.total_seconds():
        raise ValueError(f"'{value}' is too long: at most {describe_duration(maximum)}")
    return timedelta(seconds=seconds)


def describe_duration(duration: timedelta) -> str:
    """A bound in the units staff write: '31d', '6h', '90s'."""
    seconds = int(duration.total_seconds())
    for unit, size in _UNITS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def sexagesimal_time(value: int) -> str:
    """YAML 1.1 reads an unquoted 10:00 as the integer 600; turn it back into '10:00'."""
    return f"{value // 60:02d}:{value % 60:02d}"


def normalise_cadence(value: object) -> str | None:
    """Validate a cadence as written in YAML and return its text.

    Accepts a string or the one-key mapping YAML makes of an unquoted `weekly: monday 09:00`
    line under `cadence:`; an unquoted `daily: 10:00` reaches us as {'daily': 600}.
    """
    if value is None:
        return None
    if isinstance(value, dict) and len(value) == 1:
        ((kind, rest),) = value.items()
        rest = sexagesimal_time(rest) if isinstance(rest, int) else rest
        value = f"{kind}: {rest}"
    if not isinstance(value, str):
        raise ValueError(f"{READABLE_HELP}; got {value!r}")
    return parse_cadence(value).text


def parse_time_of_day(value: object) -> time | None:
    """'09:00' (or YAML's integer for an unquoted 10:00) -> time; None stays None."""
    if value is None or isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        value = sexagesimal_time(value)
    if isinstance(value, str):
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if match:
            return time(int(match[1]), int(match[2]))
    raise ValueError(f"'{value}' is not a time of day; write it like '09:00'")


def positive_duration(
    value: object, *, allow_off: bool, maximum: timedelta = MAX_DURATION
) -> timedelta | None:
    """A duration such as '6h' (None when written as null / 'off' and that is allowed),
    longer than zero and at most `maximum`."""
    if allow_off and (value is None or str(value).strip().lower() == "off"):
        return None
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{value!r} is not a duration; write e.g. '6h', '90m' or '2d'")
    else:
        duration = parse_duration(str(value), maximum=maximum)
    if duration <= timedelta(0):
        raise ValueError(f"'{value}' must be a duration longer than zero, e.g. '6h'")
    if duration > maximum:
        raise ValueError(f"'{value}' is too long: at most {describe_duration(maximum)}")
    return duration


def check_send_window(cadence: str | None, not_before: time | None, not_after: time | None) -> None:
    """The window must be a real interval and the cadence must fire inside it at least once."""
    if not_before and not_after and not_before >= not_after:
        raise ValueError(
            f"send window: not_before {not_before:%H:%M} must be earlier than "
            f"not_after {not_after:%H:%M}"
        )
    if cadence is None or (not_before is None and not_after is None):
        return
    start, end = not_before or time.min, not_after or time.max
    times = parse_cadence(cadence).times_of_day()
    if not any(start <= t <= end for t in times):
        raise ValueError(
            f"cadence '{cadence}' fires at {times[0]:%H:%M}, outside the send window "
            f"{start:%H:%M}-{end:%H:%M}; move the cadence or the window"
        )
