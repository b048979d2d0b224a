"""HTML from every source passes through one allow-list sanitiser (nh3), which also makes
relative links and images absolute against the item's own URL."""

from __future__ import annotations

import html
import re
from typing import Literal
from urllib.parse import quote

import httpx
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
_URI_SAFE = "!#$%&'()*+,/:;=?@[]~"  # with letters, digits and -._: what quote() keeps
URL_SCHEMES = {"http", "https", "mailto"}
# Removed with their content, not just unwrapped: their text is never meant for readers.
DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "noscript", "template"}

# C0 controls but tab, newline and carriage return; DEL and the C1 controls (XML 1.0
# discourages them, and in real feeds they are mis-decoded Windows-1252 punctuation that no
# reader shows); the non-characters XML forbids; and lone surrogates (JSON can spell them,
# UTF-8 cannot encode them).
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
# ASCII that may not appear in a URI (RFC 3986): space, controls, "<>\\^`{|}; and a '%' that
# does not start an escape.
_NOT_IN_URI = re.compile(r'[\x00-\x20"<>\\^`{|}\x7f]|%(?![0-9A-Fa-f]{2})')

# How long the text fields of an item may be once collected: longer ones are trimmed (a
# 150 KB title would otherwise make every edition and feed carrying it fail or bloat).
TITLE_MAX = 300
SUMMARY_MAX = 1000
AUTHOR_MAX = 200
ALT_MAX = 300


def strip_control_chars(text: str) -> str:
    """Remove characters XML 1.0 forbids (YAML, MJML and feeds reject them too)."""
    return _CONTROL_CHARS.sub("", text)


def iri(url: str) -> str:
    """A link as an IRI: characters no URI may hold percent-encoded ('a b' -> 'a%20b'),
    letters of other scripts kept readable (Atom and HTML take IRIs)."""
    return _NOT_IN_URI.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), url)


def uri(url: str) -> str:
    """A link as a URI, for formats that take nothing else (RSS, JSON Feed): an IRI's
    non-ASCII encoded as UTF-8 escapes, its host in IDNA form (httpx does both)."""
    if iri(url).isascii():
        return iri(url)
    try:
        return str(httpx.URL(iri(url)))
    except (httpx.InvalidURL, UnicodeError):
        return quote(iri(url), safe=_URI_SAFE)


def trim(text: str, limit: int) -> str:
    """Cut text at a word boundary to at most `limit` characters, marking the cut with …."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(",;:. ") + "…"


def plain_text(text: str | None, limit: int) -> str:
    """Text a source declares plain (an RSS/Atom field typed text/plain): kept literally,
    never parsed as HTML; control characters removed, whitespace collapsed, trimmed."""
    return trim(" ".join(strip_control_chars(text or "").split()), limit)


def markup_text(text: str | None, limit: int) -> str:
    """Text that may carry markup (HTML-typed feed fields, and fields with no declared type:
    front matter, exports, JSON Feed): tags removed with their script/style content,
    entities decoded, then as plain_text."""
    return plain_text(html_to_text(strip_control_chars(text or "")), limit)


def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """Allow-list sanitise an HTML fragment; resolve relative URLs against base_url."""
    if not fragment:
        return ""
    url_relative: tuple[Literal["rewrite_with_base"], str] | Literal["pass_through"] = (
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
    text = nh3.clean(
        strip_control_chars(fragment or ""), tags=set(), clean_content_tags=DROP_WITH_CONTENT
    )
    return " ".join(html.unescape(text).split())


def summarise(fragment: str, limit: int = 280) -> str:
    """A plain-text summary: the text of the HTML cut at a word boundary."""
    text = html_to_text(fragment)
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.")
    return cut + "…"


def text_to_html(text: str) -> str:
    """A plain-text body as HTML paragraphs (blank lines separate them), escaped."""
    paragraphs = [" ".join(p.split()) for p in strip_control_chars(text).split("\n\n")]
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs if p)
