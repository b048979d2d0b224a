"""The one slug function: item topics, subscriber topics, audiences and feed selectors all
go through it, so "Workers' Rights", "workers-rights" and "WORKERS RIGHTS" are one topic.

Unicode-aware, judged by Unicode categories: letters (L*), digits and numbers (N*) and
combining marks (M*: vowel signs, viramas, Thai and Khmer vowels, Myanmar asat, harakat)
make words; a combining mark belongs to its letter, so 'आर्थिक न्याय' is 'आर्थिक-न्याय' and
दिन and दान stay two topics. Format characters (Cf: zero-width joiners, soft hyphens) join,
everything else separates. Accents are dropped from Latin letters only, so "Économie" and
"economie" match while "й" stays "й".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_APOSTROPHES = re.compile(r"['\u2019\u02bc]")
MAX_SLUG = 100


def _fold(char: str) -> str:
    base = unicodedata.normalize("NFKD", char)
    ascii_base = "".join(c for c in base if not unicodedata.combining(c))
    return ascii_base if ascii_base.isascii() else char


def _kind(char: str) -> str:
    """'w' for a character of a word, 'j' for one that joins (dropped), 's' otherwise."""
    category = unicodedata.category(char)
    if category[0] in "LNM":
        return "w"
    return "j" if category == "Cf" else "s"


def slugify(text: str) -> str:
    """Lower-case words joined by '-': 'Workers’ Rights' -> 'workers-rights'; '' when the
    text holds no letter or digit. Combining marks stay with their letter (any script)."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = []
    for char in _APOSTROPHES.sub("", normal):
        kind = _kind(char)
        if kind == "w" and unicodedata.category(char)[0] == "M":
            # a mark NFKC could not compose onto a Latin letter is an accent: dropped
            if not (out and out[-1].isascii() and out[-1] != "-"):
                out.append(char)
        elif kind == "w":
            out.append(_fold(char))
        elif kind == "s" and out and out[-1] != "-":
            out.append("-")
    return _cut("".join(out).strip("-"))


def _cut(slug: str) -> str:
    """At most MAX_SLUG characters, never between a letter and its combining marks."""
    if len(slug) <= MAX_SLUG:
        return slug
    end = MAX_SLUG
    while end > 0 and unicodedata.category(slug[end])[0] == "M":
        end -= 1
    return slug[:end].strip("-")


@lru_cache(maxsize=4096)  # called for every subscriber of an audience
def legacy_slug(slug: str) -> str:
    """The slug an earlier version made of the same words: it treated combining marks as
    separators ('आर्थिक-न्याय' was 'आरथ-क-नय-य'). Only for matching choices stored
    before then, so no subscriber loses one (see store.subscribers.follows)."""
    folded = "".join(_fold(c) for c in slug)  # it dropped marks of a combining class
    return re.sub(r"[\W_]+", "-", folded).strip("-")
