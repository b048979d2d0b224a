"""What an editor chose for a campaign's next edition, as compose reads it. Pure.

The store keeps the choices (publisher/store/curation.py); the pipeline hands them to
compose as a `Curation`. The rules, decided here once:
- excluded wins: an excluded item is left out ("excluded by an editor"), pinned or not;
- a pinned item enters even when it is older than the lookback, outside the audience's
  topics, over a section's max or in no section. It goes to the first section that wants it,
  else the first item section; pinned items come first in their section and count against
  its max, pushing unpinned ones out, but are never left out for the max themselves.
  A pin cannot bring in what must not go out: an item held until its date, a retired item,
  a link that is not https, or one an earlier edition carried; nor an item older than
  twice the lookback (the store does not load those for compose, and the campaign page
  offers no pin for them);
- the editor's order (item ids) sorts a section: ordered items first, in that order, the
  others after them newest first;
- the note (Markdown) is rendered by the Markdown files' renderer and sanitiser, and only
  https/mailto links and https images survive (an email links only to https);
- the one-time subject replaces the configured subject as plain text: never a template,
  never a placeholder, whitespace (line breaks) collapsed to single spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import nh3

from publisher.sources.markdown import markdown_html
from publisher.support.sanitize import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    DROP_WITH_CONTENT,
    html_to_text,
    strip_control_chars,
)

EXCLUDED = "excluded by an editor"
SUBJECT_MAX = 200
NOTE_MAX = 20_000
# Left-out reasons a pin overrides (the start of the reason compose gives).
PINNABLE = ("older than the lookback", "not in the audience's topics", "over the max of")
NO_SECTION = "no section takes it"


@dataclass(frozen=True)
class Curation:
    """An editor's choices for one campaign's next edition (empty: none)."""

    note: str = ""  # Markdown
    pinned: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()
    order: tuple[str, ...] = ()  # item ids, in the order the editor wants them
    subject: str = ""  # one-time subject ("" keeps the configured one)

    @property
    def empty(self) -> bool:
        return not (self.note or self.pinned or self.excluded or self.order or self.subject)


NO_CURATION = Curation()


def pinnable(reason: str) -> bool:
    """Whether a pin brings in an item left out for this reason."""
    return reason.startswith(PINNABLE) or reason.startswith(NO_SECTION)


def clean_subject(subject: str) -> str:
    """The one-time subject as it may reach a header: control characters gone, every run
    of whitespace (a line break, a Unicode line separator) one space, at most SUBJECT_MAX."""
    return " ".join(strip_control_chars(subject).split())[:SUBJECT_MAX]


def note_html(note: str) -> str:
    """The note as sanitised HTML, with only https/mailto links and https images kept
    (a relative or http link would make the email refuse to render)."""
    if not note.strip():
        return ""
    html = markdown_html(note[:NOTE_MAX])
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags=DROP_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"https", "mailto"},
        link_rel="noopener noreferrer",
        url_relative="deny",
    ).strip()


_BLOCK_END = re.compile(r"</(?:p|li|h[1-6]|blockquote|pre|tr)>|<br\s*/?>", re.IGNORECASE)


def note_text(html: str) -> str:
    """The note's plain text for the text part: one paragraph per block of its HTML."""
    blocks = (html_to_text(block) for block in _BLOCK_END.split(html))
    return "\n\n".join(block for block in blocks if block)


def in_order(items: list, order: tuple[str, ...]) -> list:
    """`items` (with `.id`) sorted by the editor's order; unordered ones after, as they were."""
    rank = {item_id: i for i, item_id in enumerate(order)}
    ordered = sorted((item for item in items if item.id in rank), key=lambda i: rank[i.id])
    return ordered + [item for item in items if item.id not in rank]
