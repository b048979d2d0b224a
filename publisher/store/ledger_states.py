"""The states of a delivery ledger row, and what they group: publisher/store/ledger.py's
docstring draws the moves between them. The names are on the surface as
`publisher.store.ledger`'s (re-exported there)."""

from __future__ import annotations

# the names are publisher.store.ledger's (its __all__), not this module's own
__all__: list[str] = []

PENDING, INFLIGHT, REQUESTED, SENT, FAILED, UNCERTAIN, SKIPPED, BOUNCED = (
    "pending",
    "inflight",
    "requested",
    "sent",
    "failed",
    "uncertain",
    "skipped",
    "bounced",
)
UNFINISHED = (INFLIGHT, REQUESTED)  # claimed by a send, outcome not recorded yet
DONE = (SENT, UNCERTAIN)  # never sent again without --resend-uncertain / --resend-batch
RECIPIENT_ATTEMPTS = 3  # a recipient refused temporarily (4xx) is tried this often in all
