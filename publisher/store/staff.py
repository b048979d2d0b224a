"""Staff accounts of the dashboard: argon2 password hashes (argon2-cffi), roles, the TOTP
second factor, owners' settings, and log-in throttling kept in the store.

Throttling (issue 19) slows an attacker without letting anyone lock the owner out: failures
count per (address, account) pair and per address, never per account alone, so a flood from
elsewhere does not touch the owner's own address; a browser the account logged in from
before (a known device) is counted on its own key instead. Passwords are used exactly as
typed, spaces included, by the CLI and the web alike. Hashing and verifying take ~0.2 s of
CPU: the web calls these functions in a worker thread, never on its event loop."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import object_session

from publisher.errors import PublisherError
from publisher.store import Store
from publisher.store.models import (
    LoginFailureRow,
    PasskeyRow,
    StaffRow,
    StaffSessionRow,
    StaffSettingRow,
)
from publisher.store.subscribers import normalise_email

__all__ = [
    "LIMITS",
    "LOCK_WINDOW",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "ROLES",
    "LockedOut",
    "Staff",
    "StaffError",
    "add_staff",
    "account_address",
    "check_login",
    "check_password",
    "check_totp",
    "failure_keys",
    "find_staff",
    "get_staff",
    "list_staff",
    "locked_out",
    "remove_staff",
    "POLICIES",
    "second_factor_policy",
    "set_password",
    "set_second_factor_policy",
    "editors_may_export",
    "set_editors_may_export",
    "set_totp",
    "totp_secret",
]

# what each role may do, in order: a role may do everything a lower one may
ROLES = ("viewer", "editor", "owner")
LOCK_WINDOW = timedelta(minutes=15)
# failures within LOCK_WINDOW before a key is refused until they age out
LIMITS = {"pair": 5, "ip": 30, "device": 10}
MIN_PASSWORD = 12
MAX_PASSWORD = 1000
_hasher = PasswordHasher()
# verified when the address is unknown, so a wrong address takes as long as a wrong password
_DUMMY_HASH = _hasher.hash("not a password of anyone")
_SETTING_2FA = "require_second_factor"


class StaffError(PublisherError):
    """A staff account that cannot be added, found or changed (the message says why)."""


class LockedOut(StaffError):
    """Too many failed log-ins from this address (or this device) at this account."""


@dataclass(frozen=True)
class Staff:
    id: int
    email: str
    role: str
    password_hash: str
    created_at: datetime
    has_totp: bool = False
    has_passkey: bool = False

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def has_second_factor(self) -> bool:
        return self.has_totp or self.has_passkey


def _staff(row: StaffRow) -> Staff:
    session = object_session(row)
    passkey = session is not None and bool(
        session.scalar(select(exists().where(PasskeyRow.staff_id == row.id)))
    )
    return Staff(
        row.id, row.email, row.role, row.password_hash, row.created_at,
        row.totp_secret is not None, passkey,
    )  # fmt: skip


def account_address(email: str) -> str:
    """The stored form of a staff address; StaffError for anything else, including control
    characters (CR/LF would forge lines in logs and the audit log)."""
    if any(unicodedata.category(c).startswith("C") for c in email):
        raise StaffError("the address contains control characters")
    try:
        return normalise_email(email)
    except ValueError:
        raise StaffError("that is not an email address") from None


def check_password(password: str) -> str:
    """The one rule of the CLI and the web: used exactly as typed (surrounding spaces are
    part of it), MIN_PASSWORD to MAX_PASSWORD characters, no control characters."""
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise StaffError(f"the password is too long: use at most {MAX_PASSWORD} characters")
    if any(unicodedata.category(c) == "Cc" for c in password):
        raise StaffError("the password contains control characters")
    return password


def add_staff(store: Store, email: str, role: str, password: str, *, now: datetime) -> Staff:
    if role not in ROLES:
        raise StaffError(f"unknown role '{role}': use one of {', '.join(ROLES)}")
    address, hashed = account_address(email), _hasher.hash(check_password(password))
    with store.session() as session:
        if session.scalar(select(StaffRow.id).where(StaffRow.email == address)) is not None:
            raise StaffError(f"{address} already has a staff account")
        row = StaffRow(email=address, role=role, password_hash=hashed, created_at=now)
        session.add(row)
        session.flush()
        return _staff(row)


def remove_staff(store: Store, email: str) -> Staff:
    address = account_address(email)
    with store.session() as session:
        row = session.scalar(select(StaffRow).where(StaffRow.email == address))
        if row is None:
            raise StaffError(f"no staff account {address}")
        if row.role == "owner":
            owners = session.scalar(select(func.count()).where(StaffRow.role == "owner"))
            if owners == 1:
                raise StaffError(f"{address} is the last owner; add another owner first")
        session.execute(delete(StaffSessionRow).where(StaffSessionRow.staff_id == row.id))
        session.delete(row)
        return _staff(row)


def list_staff(store: Store) -> list[Staff]:
    with store.session() as session:
        return [_staff(r) for r in session.scalars(select(StaffRow).order_by(StaffRow.email))]


def get_staff(store: Store, staff_id: int) -> Staff | None:
    with store.session() as session:
        row = session.get(StaffRow, staff_id)
        return _staff(row) if row else None


def find_staff(store: Store, email: str) -> Staff | None:
    """The account of this address, or None (also for what is not an address)."""
    try:
        address = account_address(email)
    except StaffError:
        return None
    with store.session() as session:
        row = session.scalar(select(StaffRow).where(StaffRow.email == address))
        return _staff(row) if row else None


def set_password(
    store: Store, staff_id: int, password: str, *, current: str | None = None
) -> Staff:
    """A new password (checking `current` first when given); every session of the account
    ends, so a stolen cookie dies with the old password."""
    hashed = _hasher.hash(check_password(password))
    with store.session() as session:
        row = session.get(StaffRow, staff_id)
        if row is None:
            raise StaffError("no such staff account")
        if current is not None and not _verify(row.password_hash, current):
            raise StaffError("the current password is wrong")
        row.password_hash = hashed
        session.execute(delete(StaffSessionRow).where(StaffSessionRow.staff_id == staff_id))
        return _staff(row)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


# --- throttling ------------------------------------------------------------------------------


def _account_key(email: str) -> str:
    """A digest, so whatever was typed as the address (a password, by mistake) is not kept."""
    try:
        name = account_address(email)
    except StaffError:
        name = email
    return hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:32]


def failure_keys(email: str, ip: str, device: str | None = None) -> list[str]:
    """The counters a failure adds to: the (address, account) pair and the address; or, from
    a known device of the account, that device alone."""
    account = _account_key(email)
    if device:
        return [f"device:{device[:64]}|{account}"]
    return [f"pair:{ip[:64]}|{account}", f"ip:{ip[:64]}"]


def locked_out(store: Store, keys: list[str], *, now: datetime) -> bool:
    """A key with LIMITS[kind] failures within LOCK_WINDOW is refused until they age out."""
    with store.session() as session:
        for key in keys:
            recent = session.scalar(
                select(func.count()).where(
                    LoginFailureRow.key == key, LoginFailureRow.at > now - LOCK_WINDOW
                )
            )
            if (recent or 0) >= LIMITS[key.split(":", 1)[0]]:
                return True
    return False


def check_login(
    store: Store, email: str, password: str, ip: str, *, now: datetime, device: str | None = None
) -> Staff | None:
    """The account if the address and password are right; None otherwise (the failure is
    counted on failure_keys). LockedOut, before any password is checked, once one of those
    keys is over its limit. Never raises for what is not an address."""
    keys = failure_keys(email, ip, device)
    if locked_out(store, keys, now=now):
        raise LockedOut("too many failed log-ins: try again in 15 minutes")
    try:
        address = account_address(email)
    except StaffError:
        address = None
    with store.session() as session:
        row = None
        if address is not None:
            row = session.scalar(select(StaffRow).where(StaffRow.email == address))
        if not _verify(row.password_hash if row else _DUMMY_HASH, password) or row is None:
            # failures that no longer count go as new ones come: a flood without a single
            # successful log-in (which prunes everything) does not grow the table either
            session.execute(delete(LoginFailureRow).where(LoginFailureRow.at <= now - LOCK_WINDOW))
            session.add_all(LoginFailureRow(key=key, at=now) for key in keys)
            return None
        if _hasher.check_needs_rehash(row.password_hash):
            row.password_hash = _hasher.hash(password)
        session.execute(delete(LoginFailureRow).where(LoginFailureRow.key.in_(keys[:1])))
        return _staff(row)


# --- second factor ---------------------------------------------------------------------------


def totp_secret(store: Store, staff_id: int) -> str | None:
    with store.session() as session:
        row = session.get(StaffRow, staff_id)
        return row.totp_secret if row else None


def set_totp(store: Store, staff_id: int, secret: str | None) -> None:
    """Turn TOTP on with this base32 secret, or off with None."""
    with store.session() as session:
        row = session.get(StaffRow, staff_id)
        if row is None:
            raise StaffError("no such staff account")
        row.totp_secret, row.totp_last_step = secret, None


def check_totp(store: Store, staff_id: int, code: str, *, now: datetime) -> bool:
    """A 6-digit code of this or the neighbouring 30-second step, each step usable once
    (a code seen over a shoulder cannot be replayed)."""
    code = "".join(code.split())
    with store.session() as session:
        row = session.get(StaffRow, staff_id)
        if row is None or row.totp_secret is None or not code.isdigit():
            return False
        totp = pyotp.TOTP(row.totp_secret)
        step = totp.timecode(now)
        for candidate in (step - 1, step, step + 1):
            if candidate <= (row.totp_last_step or -1):
                continue
            if pyotp.utils.strings_equal(totp.generate_otp(candidate), code):
                row.totp_last_step = candidate
                return True
    return False


POLICIES = ("off", "senders", "everyone")


def second_factor_policy(store: Store) -> str:
    """The owners' setting: who must have a second factor to use the dashboard: nobody
    ("off"), anyone who can send ("senders": editors and owners) or "everyone"."""
    with store.session() as session:
        row = session.get(StaffSettingRow, _SETTING_2FA)
        return row.value if row is not None and row.value in POLICIES else "off"


def set_second_factor_policy(store: Store, policy: str) -> None:
    if policy not in POLICIES:
        raise StaffError(f"unknown policy '{policy}': use one of {', '.join(POLICIES)}")
    with store.session() as session:
        session.merge(StaffSettingRow(name=_SETTING_2FA, value=policy))


_SETTING_EXPORT = "editors_may_export"


def editors_may_export(store: Store) -> bool:
    """The owners' setting: may editors download the list of subscribers (owners always
    may)? Off until an owner turns it on."""
    with store.session() as session:
        row = session.get(StaffSettingRow, _SETTING_EXPORT)
        return row is not None and row.value == "yes"


def set_editors_may_export(store: Store, allowed: bool) -> None:
    with store.session() as session:
        session.merge(StaffSettingRow(name=_SETTING_EXPORT, value="yes" if allowed else "no"))
