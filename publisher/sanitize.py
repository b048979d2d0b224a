"""HTML from every source passes through one allow-list sanitiser (nh3), which also makes
relative links and images absolute against the item's own URL."""

from __future__ import annotations

import html
import re

import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl",
    "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "blockquote": {"cite"},
    "q": {"cite"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Removed with their content, not just unwrapped: their text is never meant for readers.
DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "noscript", "template"}

_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def strip_control_chars(text: str) -> str:
    """Remove characters XML 1.0 forbids (they would make a feed invalid)."""
    return _CONTROL_CHARS.sub("", text)


def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """Allow-list sanitise an HTML fragment; resolve relative URLs against base_url."""
    if not fragment:
        return ""
    url_relative: tuple[str, str] | str = (
        ("rewrite_with_base", base_url) if base_url else "pass_through"
    )
    return nh3.clean(
        strip_control_chars(fragment),
        tags=ALLOWED_TAGS,
        clean_content_tags=DROP_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        url_relative=url_relative,
    )


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment (for summaries), whitespace collapsed."""
    text = nh3.clean(fragment or "", tags=set(), clean_content_tags=DROP_WITH_CONTENT)
    return " ".join(html.unescape(text).split())


def summarise(fragment: str, limit: int = 280) -> str:
    """A plain-text summary: the text of the HTML cut at a word boundary."""
    text = html_to_text(fragment)
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.")
    return cut + "…"
