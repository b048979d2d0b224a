"""What a `publisher -v run` log says about one slot: used to wait for a real condition (every
daemon has dealt with the slot) instead of sleeping for "the other daemon's chance"."""

from __future__ import annotations

import re
from datetime import UTC, datetime


def iso(slot: datetime) -> str:
    """A slot as the daemon logs it (publisher/schedule/daemon.py)."""
    return slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dealt_with(log: str, slot: datetime, campaign: str = "weekly") -> bool:
    """The daemon whose log this is (run with -v) has had its chance at `slot`:

    - it logged an outcome for the slot (sent, already taken, ...);
    - or it started after the slot: its start-up catch-up, which runs before "next slot" is
      logged, saw the slot (and queued it, see the next point, or found it taken or done);
    - or its scheduler has submitted a job due after the slot (APScheduler logs "Running
      job ... (scheduled at T)" at -v): it submits due jobs in the order of their times, so
      the slot's own job, if it has one, was submitted before, and a SIGTERM lets it finish.
      A slot between the catch-up and the scheduler's start still fires: the campaign job's
      first run is set to the first slot after the catch-up (daemon._add_campaign_job)."""
    text = " ".join(log.split())  # a long line may be wrapped by the log console
    if f"campaign={campaign} slot={iso(slot)} outcome=" in text:
        return True
    found = re.search(rf"campaign={campaign} next slot (\S+)", text)
    if found is not None and found.group(1) != iso(slot):
        return True
    for when in re.findall(r"Running job .*? \(scheduled at (\S+ \S+?)\)", text):
        if datetime.fromisoformat(when) > slot:
            return True
    return False
