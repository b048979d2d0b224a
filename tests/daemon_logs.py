"""What a `publisher run` log says about one slot: used to wait for a real condition (every
daemon has dealt with the slot) instead of sleeping for "the other daemon's chance"."""

from __future__ import annotations

import re
from datetime import UTC, datetime


def iso(slot: datetime) -> str:
    """A slot as the daemon logs it (publisher/schedule/daemon.py)."""
    return slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dealt_with(log: str, slot: datetime, campaign: str = "weekly") -> bool:
    """The daemon whose log this is has had its chance at `slot`: it logged an outcome for
    it (sent, already taken, ...), or it started after the slot, so its start-up catch-up
    (which runs before "next slot" is logged) already saw the slot claimed or done."""
    if f"campaign={campaign} slot={iso(slot)} outcome=" in log:
        return True
    found = re.search(rf"campaign={campaign} next slot (\S+)", log)
    return found is not None and found.group(1) != iso(slot)
