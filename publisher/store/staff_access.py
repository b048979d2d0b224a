"""Server-side staff sessions, single-use emailed links (invitations and password resets),
recovery codes, and the pruning of every staff table (issue 19).

Only SHA-256 digests of session tokens, link tokens and recovery codes are stored: they are
random and long, so a digest is enough, and a copy of the database opens nothing."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update

from publisher.store import Store
from publisher.store.models import (
    AuditRow,
    LoginFailureRow,
    RecoveryCodeRow,
    StaffLinkRow,
    StaffRow,
    StaffSessionRow,
)
from publisher.store.staff import (
    LOCK_WINDOW,
    ROLES,
    Staff,
    StaffError,
    account_address,
    add_staff,
    check_password,
    get_staff,
    set_password,
)

__all__ = [
    "AUDIT_KEPT",
    "INVITATION_LIFETIME",
    "RECOVERY_CODES",
    "RESET_LIFETIME",
    "SESSION_LIFETIME",
    "StaffLink",
    "StaffSession",
    "accept_invitation",
    "create_link",
    "end_session",
    "end_sessions",
    "list_sessions",
    "new_recovery_codes",
    "open_session",
    "peek_link",
    "prune_access",
    "reset_password",
    "session_of",
    "use_recovery_code",
]

SESSION_LIFETIME = timedelta(hours=12)
INVITATION_LIFETIME = timedelta(days=3)
RESET_LIFETIME = timedelta(hours=1)
AUDIT_KEPT = timedelta(days=400)  # a year of history and some, then pruned
RECOVERY_CODES = 10
_SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class StaffSession:
    id: str  # the digest: shown to end a session, never the cookie's token
    staff_id: int
    created_at: datetime
    last_seen_at: datetime
    ip: str | None
    user_agent: str | None


def _session(row: StaffSessionRow) -> StaffSession:
    return StaffSession(
        row.id, row.staff_id, row.created_at, row.last_seen_at, row.ip, row.user_agent
    )


def open_session(
    store: Store, staff_id: int, *, ip: str | None, user_agent: str | None, now: datetime
) -> str:
    """A new session; the returned token goes into the cookie, only its digest is kept."""
    token = secrets.token_urlsafe(32)
    with store.session() as session:
        session.add(
            StaffSessionRow(
                id=_digest(token), staff_id=staff_id, created_at=now, last_seen_at=now,
                ip=(ip or "")[:64] or None, user_agent=(user_agent or "")[:300] or None,
            )
        )  # fmt: skip
    return token


def session_of(store: Store, token: str, *, now: datetime) -> tuple[Staff, StaffSession] | None:
    """The account and session of a cookie's token while the session lives (SESSION_LIFETIME
    from log-in, not ended); notes when it was last seen."""
    if not token:
        return None
    with store.session() as session:
        row = session.get(StaffSessionRow, _digest(token))
        if row is None or row.created_at <= now - SESSION_LIFETIME:
            return None
        if now - row.last_seen_at >= _SEEN_EVERY:
            row.last_seen_at = now
        found = _session(row)
    staff = get_staff(store, found.staff_id)
    return (staff, found) if staff else None


def list_sessions(store: Store, staff_id: int, *, now: datetime) -> list[StaffSession]:
    """The account's live sessions, most recently seen first."""
    query = (
        select(StaffSessionRow)
        .where(
            StaffSessionRow.staff_id == staff_id,
            StaffSessionRow.created_at > now - SESSION_LIFETIME,
        )
        .order_by(StaffSessionRow.last_seen_at.desc())
    )
    with store.session() as session:
        return [_session(r) for r in session.scalars(query)]


def end_session(
    store: Store, *, token: str = "", session_id: str = "", staff_id: int | None = None
) -> bool:
    """End one session, named by its cookie token or its id (then only of `staff_id` when
    given); True if it was live."""
    key = _digest(token) if token else session_id
    query = delete(StaffSessionRow).where(StaffSessionRow.id == key)
    if staff_id is not None:
        query = query.where(StaffSessionRow.staff_id == staff_id)
    with store.session() as session:
        return bool(session.execute(query).rowcount)  # type: ignore[attr-defined]


def end_sessions(store: Store, staff_id: int) -> int:
    """End every session of an account; how many there were."""
    with store.session() as session:
        query = delete(StaffSessionRow).where(StaffSessionRow.staff_id == staff_id)
        return int(session.execute(query).rowcount)  # type: ignore[attr-defined]


# --- emailed links ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffLink:
    purpose: str  # "invite" or "reset"
    email: str
    role: str | None
    staff_id: int | None
    expires_at: datetime


def create_link(
    store: Store, purpose: str, email: str, *, role: str | None = None, now: datetime
) -> str:
    """A single-use link token: an invitation of `email` as `role` (refused when the address
    has an account), or a password reset of the account of `email` (StaffError if none)."""
    address = account_address(email)
    with store.session() as session:
        account = session.scalar(select(StaffRow).where(StaffRow.email == address))
        if purpose == "invite":
            if role not in ROLES:
                raise StaffError(f"unknown role '{role}': use one of {', '.join(ROLES)}")
            if account is not None:
                raise StaffError(f"{address} already has a staff account")
            lifetime = INVITATION_LIFETIME
        elif purpose == "reset":
            if account is None:
                raise StaffError(f"no staff account {address}")
            lifetime = RESET_LIFETIME
        else:
            raise StaffError(f"unknown link purpose {purpose!r}")
        token = secrets.token_urlsafe(32)
        session.add(
            StaffLinkRow(
                id=_digest(token), purpose=purpose, email=address, role=role,
                staff_id=account.id if account else None, created_at=now,
                expires_at=now + lifetime,
            )
        )  # fmt: skip
    return token


def peek_link(store: Store, token: str, purpose: str, *, now: datetime) -> StaffLink | None:
    """The link while it works (right purpose, unused, unexpired), else None."""
    with store.session() as session:
        row = session.get(StaffLinkRow, _digest(token or ""))
        if row is None or row.purpose != purpose or row.used_at is not None:
            return None
        if row.expires_at <= now:
            return None
        return StaffLink(row.purpose, row.email, row.role, row.staff_id, row.expires_at)


def _use_link(store: Store, token: str, purpose: str, *, now: datetime) -> StaffLink:
    """Mark the link used, once: of two simultaneous uses only one gets it."""
    link = peek_link(store, token, purpose, now=now)
    with store.session() as session:
        used = session.execute(
            update(StaffLinkRow)
            .where(StaffLinkRow.id == _digest(token or ""), StaffLinkRow.used_at.is_(None))
            .values(used_at=now)
        ).rowcount  # type: ignore[attr-defined]
    if link is None or not used:
        raise StaffError("this link does not work: it expired or was used already")
    return link


def accept_invitation(store: Store, token: str, password: str, *, now: datetime) -> Staff:
    """The invitee's account, with the password they chose; the link is then used up."""
    link = peek_link(store, token, "invite", now=now)
    if link is None:
        raise StaffError("this link does not work: it expired or was used already")
    staff = add_staff(store, link.email, link.role or "viewer", password, now=now)
    _use_link(store, token, "invite", now=now)
    return staff


def reset_password(store: Store, token: str, password: str, *, now: datetime) -> Staff:
    """A new password through a reset link; every session of the account ends."""
    link = peek_link(store, token, "reset", now=now)
    if link is None or link.staff_id is None:
        raise StaffError("this link does not work: it expired or was used already")
    check_password(password)  # refused before the link is spent
    _use_link(store, token, "reset", now=now)
    return set_password(store, link.staff_id, password)


# --- recovery codes --------------------------------------------------------------------------


def new_recovery_codes(store: Store, staff_id: int) -> list[str]:
    """RECOVERY_CODES fresh single-use codes (shown once), replacing any earlier ones."""
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
    with store.session() as session:
        session.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.staff_id == staff_id))
        session.add_all(RecoveryCodeRow(staff_id=staff_id, code_hash=_digest(c)) for c in codes)
    return codes


def use_recovery_code(store: Store, staff_id: int, code: str, *, now: datetime) -> bool:
    """True once per code: it is used up by this call."""
    digest = _digest("".join(code.split()).lower())
    with store.session() as session:
        used = session.execute(
            update(RecoveryCodeRow)
            .where(
                RecoveryCodeRow.staff_id == staff_id,
                RecoveryCodeRow.code_hash == digest,
                RecoveryCodeRow.used_at.is_(None),
            )
            .values(used_at=now)
        ).rowcount  # type: ignore[attr-defined]
    return bool(used)


def prune_access(store: Store, *, now: datetime) -> None:
    """Delete what no longer counts: login failures older than LOCK_WINDOW, ended-by-age
    sessions, used or expired links, used recovery codes, audit rows older than AUDIT_KEPT."""
    with store.session() as session:
        session.execute(delete(LoginFailureRow).where(LoginFailureRow.at <= now - LOCK_WINDOW))
        session.execute(
            delete(StaffSessionRow).where(StaffSessionRow.created_at <= now - SESSION_LIFETIME)
        )
        session.execute(
            delete(StaffLinkRow).where(
                or_(StaffLinkRow.expires_at <= now, StaffLinkRow.used_at.is_not(None))
            )
        )
        session.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.used_at.is_not(None)))
        session.execute(delete(AuditRow).where(AuditRow.at <= now - AUDIT_KEPT))
