"""What a send reports: counts of this run, the edition's status afterwards and the exit
status `publisher send` gives for it (docs/operators.md "Outcomes and exit codes")."""

from __future__ import annotations

from dataclasses import dataclass, field

from publisher.store import ledger
from publisher.support.screen import count

# Exit status of `publisher send` for each outcome (docs/operators.md "Outcomes and exit codes").
EXIT_CODES = {"sent": 0, "empty": 0, "paused": 1, "sending": 1, "uncertain": 3}
EXIT_CODES.update({"partly_failed": 4, "failed": 5})


@dataclass
class DeliveryReport:
    edition_id: int
    campaign: str
    number: int
    backend: str
    destination: str
    sent: int = 0  # this run
    failed: int = 0
    bounced: int = 0  # refused for good: the subscriber is now `bounced`
    uncertain: int = 0  # timed out this run: assumed sent, not resent
    skipped: int = 0  # reached by an earlier run (or unsure), not sent again
    batches: int = 0
    requests: int = 0
    seconds: float = 0.0
    paused: bool = False
    stopped: bool = False  # stopped between batches on request; resumable
    recovered_uncertain: int = 0  # requested rows of a killed run, now assumed sent
    cancelled: list[int] = field(default_factory=list)  # exactly-once: batches cancelled, resent
    too_late: list[int] = field(default_factory=list)  # exactly-once: too late to cancel
    status: str = "sending"  # the edition's status afterwards (publisher.store.editions)
    totals: dict[str, int] = field(default_factory=dict)  # the edition's ledger, all runs
    uncertain_batches: dict[int, int] = field(default_factory=dict)
    last_error: str | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 1)

    @property
    def unlisted_failures(self) -> int:
        """Failed or bounced recipients of the edition beyond those in `failures`."""
        missed = self.totals.get(ledger.FAILED, 0) + self.totals.get(ledger.BOUNCED, 0)
        return max(0, missed - len(self.failures))

    @property
    def note(self) -> str:
        line = (
            f"{self.campaign} #{self.number}: {self.sent} sent to {self.destination}, "
            f"{self.skipped} skipped, {self.failed} failed"
        )
        if self.bounced:
            line += f", {self.bounced} bounced"
        if self.uncertain:
            line += f", {self.uncertain} uncertain"
        line += self._whole_edition()
        if self.paused:
            line += (
                f"; PAUSED after {count(self.batches, 'batch', 'batches')} ({self.last_error}); "
                "fix it and "
                f"run `publisher send {self.campaign} --resume`"
            )
        elif self.stopped:
            line += f"; STOPPED on request, `publisher send {self.campaign} --resume` finishes it"
        else:
            line += f"; edition {describe_status(self.status, self.totals)}"
            if self.status in ("failed", "partly_failed") and self.failed:
                line += f"; `publisher send {self.campaign} --resume` retries the failed ones"
        return line

    def _whole_edition(self) -> str:
        """The edition's ledger, when it says more than this run's counts: `publisher
        worker` processes sent part of it, or earlier runs did."""
        whole = {name: self.totals.get(name, 0) for name in WHOLE_EDITION}
        ours = {ledger.SENT: self.sent, ledger.FAILED: self.failed}
        ours |= {ledger.BOUNCED: self.bounced, ledger.UNCERTAIN: self.uncertain}
        if all(whole[name] == ours.get(name, 0) for name in WHOLE_EDITION):
            return ""
        listed = ", ".join(
            f"{n} {WHOLE_EDITION[name]}" for name, n in whole.items() if n or name == ledger.SENT
        )
        return f" (the whole edition: {listed})"


# The edition's ledger as the note gives it, in this order (pending rows are not listed).
WHOLE_EDITION = {
    ledger.SENT: "sent",
    ledger.UNCERTAIN: "uncertain",
    ledger.FAILED: "failed",
    ledger.BOUNCED: "bounced",
    ledger.SKIPPED: "held back",  # paused or suppressed subscribers
}


def describe_status(status: str, totals: dict[str, int]) -> str:
    """An edition's status in words: 'sent', 'sent with 1000 uncertain', 'failed'..."""
    uncertain = totals.get(ledger.UNCERTAIN, 0)
    if status == "uncertain":
        return f"sent with {uncertain} uncertain"
    if status == "partly_failed":
        failed = totals.get(ledger.FAILED, 0) + totals.get(ledger.BOUNCED, 0)
        return f"partly failed ({failed} not reached)"
    if status == "failed":
        return "failed (reached nobody)"
    if status == "empty":
        return "reached nobody (no active subscriber follows it)"
    return status


def final_status(totals: dict[str, int], *, paused: bool, stopped: bool) -> str:
    """What an edition's ledger says about it once a send ended."""
    if paused:
        return "paused"
    if stopped:
        return "sending"  # a resume (or the daemon's next start) finishes it
    reached = totals.get(ledger.SENT, 0) + totals.get(ledger.UNCERTAIN, 0)
    missed = totals.get(ledger.FAILED, 0) + totals.get(ledger.BOUNCED, 0)
    if not reached:
        return "failed" if missed else "empty"
    if missed:
        return "partly_failed"
    return "uncertain" if totals.get(ledger.UNCERTAIN, 0) else "sent"
