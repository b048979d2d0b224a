"""Words and cells the edges show: an edition's outcome as the CLI and the dashboard say
it, and spreadsheet-safe CSV cells. The store hands over statuses and counts; how they
read on a screen or in a spreadsheet is decided here, not there."""

from __future__ import annotations

__all__ = ["FORMULA_START", "OUTCOME_WORDS", "count", "edition_outcome", "spreadsheet_safe"]

OUTCOME_WORDS = {
    "partly_failed": "partly failed",
    "empty": "reached nobody",
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def edition_outcome(status: str, uncertain: int) -> str:
    """An edition's status in words: 'sent with 12 uncertain', 'partly failed'..."""
    if status == "uncertain":
        return f"sent with {uncertain} uncertain"
    return OUTCOME_WORDS.get(status, status)


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def count(number: int, word: str, plural: str | None = None) -> str:
    """'1 item', '2 items', '0 batches' (`plural` when adding 's' is wrong)."""
    return f"{number} {word if number == 1 else plural or word + 's'}"
