"""What every section of schedules.yaml shares: `Strict` (unknown keys are errors, no control
characters), one-line, email address and topic values, time zones, absolute URLs, and how a
key path is written in messages."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator

from publisher.support.slug import slugify


def control_characters(text: str, *, allowed: str = "") -> list[str]:
    """The control characters (C0, DEL, C1) and Unicode line/paragraph separators in
    `text`, as escapes ('\\r', '\\x0b'), except those in `allowed`."""
    found = []
    for char in text:
        if char in allowed:
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            escaped = repr(char)[1:-1]
            if escaped not in found:
                found.append(escaped)
    return found


def one_line(value: str) -> str:
    """A value that ends up in an email header (subject, From name, List-Id...): a CR or LF
    would start a header of its own, so no control character at all."""
    bad = control_characters(value)
    if bad:
        raise ValueError(
            f"contains control characters ({', '.join(bad)}); this value goes into an email "
            "header, write it on one line"
        )
    return value.strip()


def email_address(value: str) -> str:
    """An address as email-validator reads it (syntax only, no DNS), normalised; an
    internationalised local part is refused since not every backend can send to it."""
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"'{value}' is not an email address: {exc}") from None
    return result.ascii_email or result.normalized


def topic(value: str) -> str:
    """Topics (audiences, section and feed selectors) are slugs, as item topics are."""
    slug = slugify(value)
    if not slug:
        raise ValueError(f"topic '{value}' has no letter or digit")
    return slug


def format_key_path(path: Sequence[str | int]) -> str:
    """('campaigns', 0, 'subject') -> 'campaigns[0].subject'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


OneLine = Annotated[str, AfterValidator(one_line)]
EmailAddress = Annotated[str, AfterValidator(email_address)]
Topic = Annotated[str, AfterValidator(topic)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    # Fields whose text may span lines (a postal address, a description); every other
    # string is one line: URLs, hosts and names can end up in a header or a request line.
    _multiline: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        """No configuration string carries a control character; tabs and line breaks only
        in the multi-line fields."""
        allowed = "\n\t" if info.field_name in cls._multiline else ""
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                bad = control_characters(text, allowed=allowed)
                if bad:
                    raise ValueError(f"contains control characters ({', '.join(bad)})")
        return value


def check_timezone(name: str) -> str:
    """Validate an IANA zone name, suggesting the closest one when it is misspelt."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"unknown time zone '{name}'{hint}") from None
    return name


def check_absolute_url(url: str) -> str:
    if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    return url.rstrip("/") if url.count("/") == 2 else url
