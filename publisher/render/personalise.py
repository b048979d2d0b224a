"""Per-recipient personalisation: fill the placeholders of an edition compiled once.

The compiled HTML and text of an edition are final except for these literal placeholders, so
sending to 100,000 people costs one MJML compile and 100,000 cheap string substitutions.
"""

from __future__ import annotations

import html

NAME = "%%NAME%%"
UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
PREFERENCES_URL = "%%PREFERENCES_URL%%"
PLACEHOLDERS: tuple[str, ...] = (NAME, UNSUBSCRIBE_URL, PREFERENCES_URL)

# Said instead of a name when a subscriber gave none ("Hello, friend").
NAME_FALLBACK = "friend"


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
    """Replace the placeholders for one recipient.

    The name (or NAME_FALLBACK when it is missing or blank) and the URLs are HTML-escaped
    when the document is HTML, so a name like "Ann & <Bob>" cannot break the markup; the
    plain-text part receives them verbatim.
    """
    display = (name or "").strip() or NAME_FALLBACK
    if _is_html(html_or_text):
        display = html.escape(display, quote=True)
        unsubscribe_url = html.escape(unsubscribe_url, quote=True)
        preferences_url = html.escape(preferences_url, quote=True)
    return (
        html_or_text.replace(NAME, display)
        .replace(UNSUBSCRIBE_URL, unsubscribe_url)
        .replace(PREFERENCES_URL, preferences_url)
    )


def sample_copy(document: str, public_url: str, token: str | None = None) -> str:
    """The document as nobody in particular gets it: the greeting's fallback for the name,
    and subscriber links with `token` (none: the generic pages, so no token is published)."""
    return personalise(
        document,
        name=None,
        unsubscribe_url=subscriber_url(public_url, "unsubscribe", token),
        preferences_url=subscriber_url(public_url, "preferences", token),
    )
