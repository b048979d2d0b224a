"""The one slug function: item topics, subscriber topics, audiences and feed selectors all
go through it, so "Workers' Rights", "workers-rights" and "WORKERS RIGHTS" are one topic.

Unicode-aware: letters and digits of every script are kept (a Chinese or Cyrillic category is
a topic, not the empty string); accents are dropped from Latin letters only, so "Économie"
and "economie" match while "й" stays "й".
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\W_]+", re.UNICODE)
_APOSTROPHES = re.compile(r"['\u2019\u02bc]")
MAX_SLUG = 100


def _fold(char: str) -> str:
    base = unicodedata.normalize("NFKD", char)
    ascii_base = "".join(c for c in base if not unicodedata.combining(c))
    return ascii_base if ascii_base.isascii() else char


def slugify(text: str) -> str:
    """Lower-case words joined by '-': 'Workers’ Rights' -> 'workers-rights'; '' when the
    text holds no letter or digit."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    folded = "".join(_fold(c) for c in _APOSTROPHES.sub("", normal))
    return _SEPARATORS.sub("-", folded).strip("-")[:MAX_SLUG].strip("-")
