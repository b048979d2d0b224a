"""Who may send, and whether a send was approved (issue 21).

The agreed seam between the parts that send (broadcasts, the digest's steering) and the
approval rules: every path that sends a broadcast or an edition calls `require_approved`
right before sending, and every web/API edge that starts a send calls `require_may_send`.
This first version allows what the product allowed before approval existed (owners send;
no second approver); the approval part fills it in.
"""

from __future__ import annotations

from typing import Literal

from publisher.config import PublisherConfig
from publisher.errors import PublisherError
from publisher.store import Store
from publisher.store.staff import Staff

__all__ = [
    "MayNotSend",
    "NotApproved",
    "Subject",
    "approval_required",
    "may_send",
    "require_approved",
    "require_may_send",
]

Subject = Literal["broadcast", "edition"]


class MayNotSend(PublisherError):
    """This staff member has no permission to send."""


class NotApproved(PublisherError):
    """The rule in schedules.yaml wants a second staff member's approval first."""


def may_send(store: Store, staff: Staff) -> bool:
    """Whether `staff` may send (owners always; others when an owner granted it)."""
    return staff.role == "owner"


def require_may_send(store: Store, staff: Staff) -> None:
    if not may_send(store, staff):
        raise MayNotSend(f"{staff.email} may not send: an owner can grant the permission")


def approval_required(config: PublisherConfig, kind: Subject) -> bool:
    """Whether schedules.yaml asks a second staff member to approve this kind of send."""
    return False


def require_approved(config: PublisherConfig, store: Store, kind: Subject, subject_id: int) -> None:
    """Raise NotApproved unless the broadcast / edition `subject_id` may go (the rule is off,
    or a second staff member approved this version of it)."""
    return None
