"""Approval before a send (issue 21): who may send, and the requests for and decisions on
one version of a send.

The send permission: owners always have it (that rule is publisher/deliver/approval.py's);
an owner grants it to an editor, kept here as one row per staff member. An approval is for
one VERSION of its subject (a broadcast: its id; a campaign's next edition: the campaign,
with its selection's fingerprint as the version), so a change after the approval leaves
it behind. The store refuses self-approval (the approver asked for it, or edited the thing
last); who may approve at all, and what voids what, are the caller's rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from publisher.errors import PublisherError
from publisher.store import Store
from publisher.store.models import ApprovalRow, SendPermissionRow

__all__ = [
    "DECIDED",
    "Approval",
    "SelfApproval",
    "StaleApproval",
    "approval_state",
    "approve",
    "find_approval",
    "grant_send",
    "has_send_permission",
    "refuse",
    "request_approval",
    "revoke_send",
    "send_permissions",
    "void_others",
    "waiting_approvals",
]

WAITING, APPROVED, REFUSED, VOIDED = "waiting", "approved", "refused", "voided"
DECIDED = frozenset({APPROVED, REFUSED})


class SelfApproval(PublisherError):
    """The one who asked for the approval (or edited last) cannot approve it."""


class StaleApproval(PublisherError):
    """The version approved or refused is not the one waiting (it changed meanwhile)."""


@dataclass(frozen=True)
class Approval:
    id: int
    kind: str  # "broadcast" | "edition"
    subject: str  # a broadcast's id; an edition's campaign
    version: str
    label: str  # what it is, for people: "Weekly #12", a broadcast's name
    status: str  # waiting, approved, refused, voided
    requested_by: str  # "" when nobody asked (approved straight away)
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str = ""


def _approval(row: ApprovalRow) -> Approval:
    return Approval(
        row.id, row.kind, row.subject, row.version, row.label, row.status,
        row.requested_by, row.requested_at, row.decided_by, row.decided_at, row.reason,
    )  # fmt: skip


# --- the send permission ------------------------------------------------------------------


def grant_send(store: Store, staff_id: int, *, by: str, now: datetime) -> bool:
    """Allow staff member `staff_id` to send; False when they already could."""
    with store.session() as session:
        if session.get(SendPermissionRow, staff_id) is not None:
            return False
        session.add(SendPermissionRow(staff_id=staff_id, granted_by=by[:320], granted_at=now))
        return True


def revoke_send(store: Store, staff_id: int) -> bool:
    """Take the permission back; False when they did not have it."""
    with store.session() as session:
        result = session.execute(
            delete(SendPermissionRow).where(SendPermissionRow.staff_id == staff_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def has_send_permission(store: Store, staff_id: int) -> bool:
    """Whether an owner granted `staff_id` the permission (owners need none)."""
    with store.session() as session:
        return session.get(SendPermissionRow, staff_id) is not None


def send_permissions(store: Store) -> set[int]:
    """The ids of the staff members granted the permission (for the staff page)."""
    with store.session() as session:
        return set(session.scalars(select(SendPermissionRow.staff_id)))


# --- requests and decisions ---------------------------------------------------------------


def _newest(
    session: Session, kind: str, subject: str, version: str | None = None
) -> ApprovalRow | None:
    query = select(ApprovalRow).where(ApprovalRow.kind == kind, ApprovalRow.subject == subject)
    if version is not None:
        query = query.where(ApprovalRow.version == version)
    return session.scalars(query.order_by(ApprovalRow.id.desc()).limit(1)).first()


def approval_state(store: Store, kind: str, subject: str) -> Approval | None:
    """The newest request or decision about `subject`, whatever its version."""
    with store.session() as session:
        row = _newest(session, kind, subject)
        return _approval(row) if row is not None else None


def find_approval(store: Store, kind: str, subject: str, version: str) -> Approval | None:
    """The newest request or decision about this version of `subject`."""
    with store.session() as session:
        row = _newest(session, kind, subject, version)
        return _approval(row) if row is not None else None


def request_approval(
    store: Store,
    kind: str,
    subject: str,
    version: str,
    *,
    label: str,
    by: str,
    now: datetime,
) -> Approval:
    """Ask for this version to be approved; the request already waiting (or the approval
    already given) for the same version is returned as it is."""
    with store.session() as session:
        row = _newest(session, kind, subject, version)
        if row is not None and row.status in (WAITING, APPROVED):
            return _approval(row)
        row = ApprovalRow(
            kind=kind, subject=subject, version=version, label=label, status=WAITING,
            requested_by=by[:320], requested_at=now, reason="",
        )  # fmt: skip
        session.add(row)
        session.flush()
        return _approval(row)


def _decide(
    store: Store,
    kind: str,
    subject: str,
    version: str,
    status: str,
    *,
    label: str,
    by: str,
    editor: str | None,
    now: datetime,
    reason: str = "",
) -> Approval:
    with store.session() as session:
        row = _newest(session, kind, subject, version)
        asked = row.requested_by if row is not None and row.status == WAITING else ""
        if by in {asked, editor or ""} - {""}:
            raise SelfApproval(
                f"{by} asked for this or changed it last: another staff member approves it"
            )
        if row is None or row.status != WAITING:
            row = ApprovalRow(
                kind=kind, subject=subject, version=version, label=label,
                requested_by="", requested_at=now,
            )  # fmt: skip
            session.add(row)
        row.status, row.decided_by, row.decided_at = status, by[:320], now
        row.reason = reason
        session.flush()
        return _approval(row)


def approve(
    store: Store,
    kind: str,
    subject: str,
    version: str,
    *,
    by: str,
    now: datetime,
    label: str = "",
    editor: str | None = None,
) -> Approval:
    """Approve this version of `subject` (its waiting request, or straight away when nobody
    asked). SelfApproval when `by` asked for it or is `editor`, the one who changed it last."""
    return _decide(
        store, kind, subject, version, APPROVED, label=label, by=by, editor=editor, now=now
    )


def refuse(
    store: Store,
    kind: str,
    subject: str,
    version: str,
    *,
    by: str,
    now: datetime,
    reason: str = "",
    label: str = "",
) -> Approval:
    """Refuse this version (anyone but the one who asked may refuse it)."""
    return _decide(
        store, kind, subject, version, REFUSED,
        label=label, by=by, editor=None, now=now, reason=reason,
    )  # fmt: skip


def void_others(
    store: Store,
    kind: str,
    subject: str,
    version: str,
    *,
    now: datetime,
    label: str | None = None,
) -> int:
    """Void the waiting requests and approvals of `subject` for any OTHER version (it was
    changed after them), only those of `label` when given (one edition of a campaign, not
    the editions before it); how many were voided."""
    where = [
        ApprovalRow.kind == kind,
        ApprovalRow.subject == subject,
        ApprovalRow.version != version,
        ApprovalRow.status.in_((WAITING, APPROVED)),
    ]
    if label is not None:
        where.append(ApprovalRow.label == label)
    with store.session() as session:
        result = session.execute(
            update(ApprovalRow)
            .where(*where)
            .values(status=VOIDED, decided_at=now, reason="changed after it")
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def waiting_approvals(store: Store, *, limit: int = 200) -> list[Approval]:
    """Requests still waiting for a decision, oldest first (the Approvals page)."""
    query = select(ApprovalRow).where(ApprovalRow.status == WAITING)
    with store.session() as session:
        rows = session.scalars(query.order_by(ApprovalRow.id).limit(limit))
        return [_approval(row) for row in rows]
