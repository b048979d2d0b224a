"""Per-recipient personalisation: fill the placeholders of an edition compiled once.

The compiled HTML and text of an edition are final except for these literal placeholders, so
sending to 100,000 people costs one MJML compile and 100,000 cheap string substitutions.

Placeholders are template-only by construction: the render context hands them to templates
as `Trusted` strings, and every other value a template outputs (titles, summaries, links,
image URLs, author names: anything from content) passes through `finalize`, so no text from a
feed or a file can ever spell a live placeholder, and `personalise` fills them in one pass,
never re-reading what it inserted (a subscriber named "%%UNSUBSCRIBE_URL%%" is greeted by
that name, and learns nobody's token).

How a value is kept from spelling one leaves no trace in what a reader sees:
- in HTML (and MJML) every `%` that touches another `%` (or a value's edge) is written as the
  character reference `&#37;`: a browser reads `%`, a placeholder search does not match;
- plain text has no references, so only a `%%` that could be part of a key (next to a capital
  letter or `_`, or at the value's edge) gets an invisible U+200C between its two signs;
  any other `%%` (a URL's `100%%20`) stays as it is.
"""

from __future__ import annotations

import html
import re
from typing import Any

from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape

NAME = "%%NAME%%"
UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
PREFERENCES_URL = "%%PREFERENCES_URL%%"
PLACEHOLDERS: tuple[str, ...] = (NAME, UNSUBSCRIBE_URL, PREFERENCES_URL)
_PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))

# Said instead of a name when a subscriber gave none ("Hello, friend").
NAME_FALLBACK = "friend"

# Put between the two signs of a "%%" in plain text that could spell a placeholder (or a
# SendGrid substitution key: `%%NAME_HTML%%`): invisible when read.
_BREAK = "\u200c"
PERCENT_REF = "&#37;"
# A `%%` that could belong to a key `%%[A-Z_]+%%`, here or with the text around the value.
_RISKY_PAIR = re.compile(r"(?:^|(?<=[A-Z_]))%%|%%(?=[A-Z_]|$)")
_EDGE = re.compile(r"^%(?=[A-Z_])|(?<=[A-Z_])%$")
# In HTML: a `%` next to another `%`, or at either edge of the value.
_HTML_PERCENT = re.compile(r"^%|%$|%(?=%)|(?<=%)%")


class Trusted(str):
    """Text written by a template or by staff configuration, whose placeholders stay live."""


def neutralise(value: Any) -> Any:
    """For plain text (and SendGrid substitution values): any string except a `Trusted` one
    loses the ability to spell a placeholder; other `%%` stay. Other types pass unchanged."""
    if isinstance(value, Trusted) or not isinstance(value, str) or "%" not in value:
        return value
    broken = str(value)
    while _RISKY_PAIR.search(broken):
        broken = _RISKY_PAIR.sub("%" + _BREAK + "%", broken)
    broken = _EDGE.sub(lambda m: _BREAK + "%" if m.start() == 0 else "%" + _BREAK, broken)
    return Markup(broken) if isinstance(value, Markup) else broken


def neutralise_html(value: Any) -> Any:
    """For HTML: the value escaped as autoescaping would, its risky `%` as `&#37;` (read
    as `%` by every HTML reader, so links and text stay exactly as they were)."""
    if isinstance(value, Trusted) or not isinstance(value, str) or "%" not in value:
        return value
    return Markup(_HTML_PERCENT.sub(PERCENT_REF, escape(value)))


@pass_eval_context
def finalize(eval_ctx: EvalContext, value: Any) -> Any:
    """Jinja's `finalize` for every template: HTML templates (autoescaped) get
    `neutralise_html`, plain-text ones `neutralise`."""
    return neutralise_html(value) if eval_ctx.autoescape else neutralise(value)


def subscriber_url(public_url: str, page: str, token: str | None = None, mark: str = "") -> str:
    """A subscriber page ('unsubscribe' or 'preferences') under the organisation's public
    URL; without a token it is the generic page (web archive copies publish no token).
    `mark`: which edition the link came from (publisher.support.marks), as `e=`."""
    url = f"{public_url.rstrip('/')}/{page}"
    if not token:
        return url
    return f"{url}?token={token}&e={mark}" if mark else f"{url}?token={token}"


def _is_html(document: str) -> bool:
    head = document[:200].lstrip().lower()
    return head.startswith(("<!doctype", "<html", "<?xml"))


def personalise(
    html_or_text: str, *, name: str | None, unsubscribe_url: str, preferences_url: str
) -> str:
    """Replace the placeholders for one recipient, in a single pass.

    The name (or NAME_FALLBACK when it is missing or blank) and the URLs are HTML-escaped
    when the document is HTML, so a name like "Ann & <Bob>" cannot break the markup; the
    plain-text part receives them verbatim.
    """
    display = (name or "").strip() or NAME_FALLBACK
    if _is_html(html_or_text):
        display = html.escape(display, quote=True)
        unsubscribe_url = html.escape(unsubscribe_url, quote=True)
        preferences_url = html.escape(preferences_url, quote=True)
    values = {NAME: display, UNSUBSCRIBE_URL: unsubscribe_url, PREFERENCES_URL: preferences_url}
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(0)], html_or_text)


def sample_copy(document: str, public_url: str, token: str | None = None) -> str:
    """The document as nobody in particular gets it: the greeting's fallback for the name,
    and subscriber links with `token` (none: the generic pages, so no token is published)."""
    return personalise(
        document,
        name=None,
        unsubscribe_url=subscriber_url(public_url, "unsubscribe", token),
        preferences_url=subscriber_url(public_url, "preferences", token),
    )
