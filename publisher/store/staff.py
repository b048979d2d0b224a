"""Staff accounts of the dashboard: argon2 password hashes (argon2-cffi), roles, and the
lock-out after repeated failed log-ins (per account and per IP, kept in the store)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select

from publisher.errors import PublisherError
from publisher.store import Store
from publisher.store.models import LoginFailureRow, StaffRow
from publisher.store.subscribers import normalise_email

__all__ = [
    "LOCK_WINDOW",
    "MAX_FAILURES",
    "MIN_PASSWORD",
    "ROLES",
    "LockedOut",
    "Staff",
    "StaffError",
    "add_staff",
    "check_login",
    "failure_keys",
    "get_staff",
    "list_staff",
    "locked_out",
    "remove_staff",
]

# what each role may do, in order: a role may do everything a lower one may
ROLES = ("viewer", "editor", "owner")
MAX_FAILURES = 5
LOCK_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 12
_hasher = PasswordHasher()
# verified when the address is unknown, so a wrong address takes as long as a wrong password
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class StaffError(PublisherError):
    """A staff account that cannot be added, found or removed (the message says why)."""


@dataclass(frozen=True)
class Staff:
    id: int
    email: str
    role: str
    password_hash: str
    created_at: datetime

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def _staff(row: StaffRow) -> Staff:
    return Staff(row.id, row.email, row.role, row.password_hash, row.created_at)


def add_staff(store: Store, email: str, role: str, password: str, *, now: datetime) -> Staff:
    if role not in ROLES:
        raise StaffError(f"unknown role '{role}': use one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    address = normalise_email(email)
    with store.session() as session:
        if session.scalar(select(StaffRow.id).where(StaffRow.email == address)) is not None:
            raise StaffError(f"{address} already has a staff account")
        row = StaffRow(
            email=address, role=role, password_hash=_hasher.hash(password), created_at=now
        )
        session.add(row)
        session.flush()
        return _staff(row)


def remove_staff(store: Store, email: str) -> Staff:
    address = normalise_email(email)
    with store.session() as session:
        row = session.scalar(select(StaffRow).where(StaffRow.email == address))
        if row is None:
            raise StaffError(f"no staff account {address}")
        if row.role == "owner":
            owners = session.scalar(select(func.count()).where(StaffRow.role == "owner"))
            if owners == 1:
                raise StaffError(f"{address} is the last owner; add another owner first")
        session.delete(row)
        return _staff(row)


def list_staff(store: Store) -> list[Staff]:
    with store.session() as session:
        return [_staff(r) for r in session.scalars(select(StaffRow).order_by(StaffRow.email))]


def get_staff(store: Store, staff_id: int) -> Staff | None:
    with store.session() as session:
        row = session.get(StaffRow, staff_id)
        return _staff(row) if row else None


def locked_out(store: Store, keys: list[str], *, now: datetime) -> bool:
    """MAX_FAILURES failures of one key within LOCK_WINDOW lock it until they age out."""
    with store.session() as session:
        for key in keys:
            recent = session.scalar(
                select(func.count()).where(
                    LoginFailureRow.key == key, LoginFailureRow.at > now - LOCK_WINDOW
                )
            )
            if (recent or 0) >= MAX_FAILURES:
                return True
    return False


def failure_keys(email: str, ip: str) -> list[str]:
    return [f"account:{normalise_email(email)}"[:400], f"ip:{ip}"[:400]]


class LockedOut(StaffError):
    """Too many failed log-ins for this account or from this address: wait LOCK_WINDOW."""


def check_login(store: Store, email: str, password: str, ip: str, *, now: datetime) -> Staff | None:
    """The account if the address and password are right; None otherwise (the failure is
    counted against the account and the IP). LockedOut, before any password is checked,
    once either has MAX_FAILURES failures within LOCK_WINDOW."""
    keys = failure_keys(email, ip)
    if locked_out(store, keys, now=now):
        raise LockedOut("too many failed log-ins: try again in 15 minutes")
    with store.session() as session:
        row = session.scalar(select(StaffRow).where(StaffRow.email == normalise_email(email)))
        try:
            _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            row = None
        if row is None:
            session.add_all(LoginFailureRow(key=key, at=now) for key in keys)
            return None
        if _hasher.check_needs_rehash(row.password_hash):
            row.password_hash = _hasher.hash(password)
        session.execute(delete(LoginFailureRow).where(LoginFailureRow.key == keys[0]))
        return _staff(row)
