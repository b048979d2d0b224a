"""Per-recipient personalisation: fill the placeholders of an edition compiled once.

The compiled HTML and text of an edition are final except for these literal placeholders, so
sending to 100,000 people costs one MJML compile and 100,000 cheap string substitutions.

Placeholders are template-only by construction: the render context hands them to templates
as `Trusted` strings, and every other value a template outputs (titles, summaries, links,
image URLs, author names: anything from content) passes through `neutralise`, which breaks
every `%%` apart. So no text from a feed or a file can ever spell a live placeholder, and
`personalise` fills them in one pass, never re-reading what it inserted (a subscriber named
"%%UNSUBSCRIBE_URL%%" is greeted by that name, and learns nobody's token).
"""

from __future__ import annotations

import html
import re
from typing import Any

from markupsafe import Markup

NAME = "%%NAME%%"
UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
PREFERENCES_URL = "%%PREFERENCES_URL%%"
PLACEHOLDERS: tuple[str, ...] = (NAME, UNSUBSCRIBE_URL, PREFERENCES_URL)
_PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))

# Said instead of a name when a subscriber gave none ("Hello, friend").
NAME_FALLBACK = "friend"

# Put between the two signs of every "%%" in untrusted text: invisible when read, and no
# placeholder (nor SendGrid substitution key) can be spelt across it.
_BREAK = "\u200c"


class Trusted(str):
    """Text written by a template or by staff configuration, whose placeholders stay live."""


def neutralise(value: Any) -> Any:
    """Jinja's `finalize`: any string a template outputs, except a `Trusted` one, loses the
    ability to spell a placeholder. Markup stays Markup; other types pass unchanged."""
    if isinstance(value, Trusted) or not isinstance(value, str) or "%%" not in value:
        return value
    broken = str(value)
    while "%%" in broken:
        broken = broken.replace("%%", "%" + _BREAK + "%")
    return Markup(broken) if isinstance(value, Markup) else broken


def subscriber_url(public_url: str, page: str, token: str | None = None) -> str:
    """A subscriber page ('unsubscribe' or 'preferences') under the organisation's public
    URL; without a token it is the generic page (web archive copies publish no token)."""
    url = f"{public_url.rstrip('/')}/{page}"
    return f"{url}?token={token}" if token else url


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
