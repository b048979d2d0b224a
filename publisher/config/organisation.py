"""The `organisation:` section of schedules.yaml: who sends, their site and colours."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from publisher.config.fields import (
    EmailAddress,
    OneLine,
    Strict,
    check_absolute_url,
    check_timezone,
)

Colour = Annotated[str, Field(pattern=r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]


class Colours(Strict):
    # headings, links and buttons (`publisher check` checks WCAG AA contrast)
    primary: Colour = "#1d4f91"
    # the second colour of the email and the web pages
    accent: Colour = "#b3261e"
    # body text
    text: Colour = "#1a1a1a"
    # secondary text (dates, the footer)
    muted: Colour = "#595959"
    # the background around the email
    background: Colour = "#f4f4f4"
    # the background of the email's content
    surface: Colour = "#ffffff"


class Organisation(Strict):
    _multiline = frozenset({"postal_address"})

    # the organisation's name (in From, footers and feeds; one line)
    name: OneLine
    # the organisation's site: the default feed link, and the only site allowed to frame /subscribe
    website: str
    public_url: str = Field(
        description="Where feeds/ and archive/ are served; links in feeds and emails use it."
    )
    # shown in every email's footer (may span lines)
    postal_address: str
    # sender address of every email
    from_email: EmailAddress
    # the sender name shown in From (without it, the bare address)
    from_name: OneLine | None = None
    # Reply-To address, when replies go elsewhere
    reply_to: EmailAddress | None = None
    # https URL of the logo shown in emails
    logo: str | None = Field(default=None, pattern=r"^https://\S+$")
    # language of emails, pages and feeds (`lang`, `xml:lang`)
    language: str = "en"
    # text direction of emails and pages
    direction: Literal["ltr", "rtl"] = "ltr"
    # IANA zone: default for campaigns, and times shown by the CLI
    timezone: str = "UTC"
    # the colours of the emails and the web pages
    colours: Colours = Colours()

    _tz = field_validator("timezone")(classmethod(lambda cls, v: check_timezone(v)))
    _urls = field_validator("website", "public_url")(
        classmethod(lambda cls, v: check_absolute_url(v))
    )
