"""Who may send, and whether a send was approved (issue 21).

The agreed seam between the parts that send (broadcasts, the digest's steering, the slot)
and the approval rules: every path that sends a broadcast or an edition calls
`require_approved` right before sending, and every web/API edge that starts a send calls
`require_may_send`.

The send permission: owners always have it; an owner grants it to an editor (never to a
viewer). The rule (`approval:` in schedules.yaml) asks a second staff member to approve a
broadcast, or a digest edition, before it goes: someone with the send permission who did not
ask for it and did not change it last. An approval is for one `Version` of its subject: a
broadcast's draft (its fingerprint), a campaign's next edition (its selection's fingerprint:
number, subject, items and their content, the editor's note), so a change after it voids it.
Editions can be approved AHEAD of their slot: the campaign page fingerprints the preview it
shows, and the slot sends the edition it composes only if that fingerprint was approved.
Every step is in the audit log.

How an edge uses it (the broadcast page, say):
    current = broadcast_version(store, broadcast_id)      # None: no such broadcast
    state = settle(store, current, now=now)               # voids older versions; None: not asked
    ask(store, current, staff, now=now, ip=ip)            # "Ask for approval"
    approve(store, current, staff, now=now, ip=ip)        # MayNotSend / SelfApproval
    refuse(store, current, staff, now=now, ip=ip, reason=why)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Literal

from publisher.compose.edition import Edition
from publisher.config import PublisherConfig
from publisher.errors import PublisherError
from publisher.items import Item
from publisher.store import Store, approvals, audit
from publisher.store.approvals import Approval, SelfApproval
from publisher.store.broadcasts import get_broadcast
from publisher.store.editions import edition_item_list, get_edition, newest_edition
from publisher.store.staff import Staff

__all__ = [
    "Held",
    "MayNotSend",
    "NotApproved",
    "PermissionRefused",
    "SelfApproval",
    "Subject",
    "Version",
    "approval_required",
    "approve",
    "ask",
    "composed_edition",
    "broadcast_version",
    "edition_version",
    "held_editions",
    "may_send",
    "refuse",
    "require_approved",
    "require_may_send",
    "set_send_permission",
    "settle",
    "stored_edition_version",
]

Subject = Literal["broadcast", "edition"]
_UNSENT = "composed"  # publisher.deliver.service.UNSENT: a send that never started


class MayNotSend(PublisherError):
    """This staff member has no permission to send."""


class PermissionRefused(PublisherError):
    """The send permission cannot be granted to or taken from this staff member."""


class NotApproved(PublisherError):
    """The rule in schedules.yaml wants a second staff member's approval first."""


@dataclass(frozen=True)
class Version:
    """One version of a send, as approvals name it."""

    kind: Subject
    subject: str  # a broadcast's id; an edition's campaign
    version: str  # its fingerprint
    label: str  # for people: "weekly #12", a broadcast's name
    editor: str | None = None  # who changed it last: they may not approve it


# --- the send permission ------------------------------------------------------------------


def may_send(store: Store, staff: Staff) -> bool:
    """Whether `staff` may send (owners always; editors when an owner granted it)."""
    if staff.role == "owner":
        return True
    return staff.role == "editor" and approvals.has_send_permission(store, staff.id)


def require_may_send(store: Store, staff: Staff) -> None:
    if not may_send(store, staff):
        raise MayNotSend(f"{staff.email} may not send: an owner can grant the permission")


def set_send_permission(
    store: Store, target: Staff, allowed: bool, *, by: str, now: datetime, ip: str | None
) -> bool:
    """An owner (`by`; the edges check the role) grants or takes the send permission of an
    editor; audited. PermissionRefused for an owner (they always have it) or a viewer
    (they may not edit, let alone send). Whether anything changed."""
    if target.role != "editor":
        why = "owners always may send" if target.role == "owner" else "viewers may not send"
        raise PermissionRefused(f"{target.email}: {why}; only an editor's permission changes")
    if allowed:
        changed = approvals.grant_send(store, target.id, by=by, now=now)
    else:
        changed = approvals.revoke_send(store, target.id)
    if changed:
        action = "send permission granted" if allowed else "send permission taken"
        audit.record(store, by, action, target.email, ip=ip, now=now)
    return changed


# --- what is approved: fingerprints -------------------------------------------------------


def _fingerprint(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _edition_fingerprint(
    number: int, subject: str, placed: Iterable[tuple[str, Item]], note: str
) -> str:
    items = [(section, item.id, item.content_hash) for section, item in placed]
    return _fingerprint({"number": number, "subject": subject, "items": items, "note": note})


def edition_version(edition: Edition, subject: str, *, editor: str | None) -> Version:
    """The version of a composed, not yet stored edition (the campaign page's preview of
    the next one, rendered `subject`); `editor` changed its choices last."""
    placed = [(section, item) for section, _pos, item in edition.placements()]
    version = _edition_fingerprint(edition.number, subject, placed, edition.curation.note)
    name = edition.campaign.name
    return Version("edition", name, version, f"{name} #{edition.number}", editor or None)


def stored_edition_version(store: Store, edition_id: int) -> Version | None:
    """The version of a stored edition: the same fingerprint as its preview had."""
    edition = get_edition(store, edition_id)
    if edition is None:
        return None
    curation = edition.curation or {}
    placed = edition_item_list(store, edition_id)
    note = str(curation.get("note") or "")
    version = _edition_fingerprint(edition.number, edition.subject, placed, note)
    label = f"{edition.campaign} #{edition.number}"
    return Version("edition", edition.campaign, version, label, curation.get("changed_by"))


def broadcast_version(store: Store, broadcast_id: int) -> Version | None:
    """The version of a broadcast: its draft (content, sender, audience; not its time)."""
    broadcast = get_broadcast(store, broadcast_id)
    if broadcast is None:
        return None
    version = _fingerprint(asdict(broadcast.draft))
    return Version(
        "broadcast", str(broadcast.id), version, broadcast.draft.name, broadcast.updated_by
    )


# --- the rule -----------------------------------------------------------------------------


def approval_required(config: PublisherConfig, kind: Subject) -> bool:
    """Whether schedules.yaml asks a second staff member to approve this kind of send."""
    rule = config.approval
    return rule.broadcasts if kind == "broadcast" else rule.editions


def _current(store: Store, kind: Subject, subject_id: int) -> Version | None:
    if kind == "broadcast":
        return broadcast_version(store, subject_id)
    edition = get_edition(store, subject_id)
    if edition is None or edition.status != _UNSENT:
        return None  # a send that started was approved (or not asked) when it started
    return stored_edition_version(store, subject_id)


def require_approved(
    config: PublisherConfig,
    store: Store,
    kind: Subject,
    subject_id: int,
    *,
    now: datetime | None = None,
) -> None:
    """Raise NotApproved unless the broadcast / edition `subject_id` may go (the rule is off,
    or a second staff member approved this version of it). With `now`, approvals of other
    versions (it changed after them) are voided then, in the audit log."""
    if not approval_required(config, kind):
        return None
    current = _current(store, kind, subject_id)
    if current is None:
        return None
    found = approvals.find_approval(store, kind, current.subject, current.version)
    if found is not None and found.status == "approved":
        return None
    where = "the campaign page" if kind == "edition" else "the broadcast's page"
    if now is not None:
        settle(store, current, now=now)
    waits = "was refused" if found is not None and found.status == "refused" else "waits"
    raise NotApproved(
        f"{current.label} {waits} for approval: a second staff member with the send "
        f"permission approves this version of it on {where} in /admin"
    )


@dataclass(frozen=True)
class Held:
    """A composed edition that waits for approval before it goes."""

    version: Version
    edition_id: int
    slot: datetime | None  # the slot it is late for (None: composed by a send)
    composed_at: datetime
    state: Approval | None = None  # where its approval stands (refused: by whom, why)


def composed_edition(store: Store, campaign: str) -> Held | None:
    """The campaign's newest edition when it is composed and its send never started (held,
    or approved and about to go): what an approval on the campaign page is for."""
    edition = newest_edition(store, campaign)
    if edition is None or edition.status != _UNSENT:
        return None
    current = stored_edition_version(store, edition.id)
    if current is None:
        return None
    return Held(current, edition.id, edition.slot, edition.composed_at)


def held_editions(config: PublisherConfig, store: Store) -> list[Held]:
    """Each campaign's composed, unsent edition that is not approved while the rule wants
    it approved (the overview, the campaign and Approvals pages list them)."""
    if not approval_required(config, "edition"):
        return []
    held = []
    for campaign in config.campaigns:
        composed = composed_edition(store, campaign.name)
        if composed is None:
            continue
        found = approvals.find_approval(
            store, "edition", composed.version.subject, composed.version.version
        )
        if found is None or found.status != "approved":
            held.append(replace(composed, state=found))
    return held


def settle(store: Store, current: Version, *, now: datetime) -> Approval | None:
    """Void the requests and approvals of other versions of `current`'s subject (an edit came
    after them: audited), and return the state of this version (None: nobody asked yet)."""
    # an edition's approvals are per number: those of the editions before it stay as they are
    label = current.label if current.kind == "edition" else None
    voided = approvals.void_others(
        store, current.kind, current.subject, current.version, now=now, label=label
    )
    if voided:
        target = f"{current.kind} {current.label}: changed after it"
        audit.record(store, "publisher", "approval voided", target, ip=None, now=now)
    return approvals.find_approval(store, current.kind, current.subject, current.version)


# --- the steps, audited -------------------------------------------------------------------


def ask(store: Store, current: Version, staff: Staff, *, now: datetime, ip: str | None) -> Approval:
    """`staff` asks a second staff member to approve this version."""
    settle(store, current, now=now)
    asked = approvals.request_approval(
        store, current.kind, current.subject, current.version,
        label=current.label, by=staff.email, now=now,
    )  # fmt: skip
    audit.record(store, staff.email, "approval asked", _target(current), ip=ip, now=now)
    return asked


def approve(
    store: Store, current: Version, staff: Staff, *, now: datetime, ip: str | None
) -> Approval:
    """`staff` approves this version: MayNotSend without the send permission, SelfApproval
    when they asked for it or changed it last (each refusal audited too)."""
    try:
        require_may_send(store, staff)
        settle(store, current, now=now)
        approved = approvals.approve(
            store, current.kind, current.subject, current.version,
            by=staff.email, now=now, label=current.label, editor=current.editor,
        )  # fmt: skip
    except (MayNotSend, SelfApproval) as exc:
        target = f"{_target(current)}: {exc}"
        audit.record(store, staff.email, "approval not allowed", target, ip=ip, now=now)
        raise
    audit.record(store, staff.email, "approved", _target(current), ip=ip, now=now)
    return approved


def refuse(
    store: Store, current: Version, staff: Staff, *, now: datetime, ip: str | None, reason: str
) -> Approval:
    """`staff` (with the send permission) refuses this version, saying why."""
    require_may_send(store, staff)
    refused = approvals.refuse(
        store, current.kind, current.subject, current.version,
        by=staff.email, now=now, reason=reason[:500], label=current.label,
    )  # fmt: skip
    target = f"{_target(current)}: {reason[:200]}"
    audit.record(store, staff.email, "approval refused", target, ip=ip, now=now)
    return refused


def _target(current: Version) -> str:
    return f"{current.kind} {current.label} (version {current.version[:12]})"
