"""Staff tables: accounts, the audit log, log-in failures, sessions, emailed links,
recovery codes, passkeys, settings; the web's shared rate-limit counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from publisher.store.models.base import Base, UTCDateTime


class StaffRow(Base):
    """A staff account of the dashboard: role owner, editor or viewer; argon2 hash only."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the TOTP second factor (issue 19): the base32 secret and the last time step used
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AuditRow(Base):
    """One staff action (login, failed login, pause, resume, test send, export, staff
    changes): who, when, from where, on what."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # repeated failures from one address are one row counting them (issue 19)
    repeats: Mapped[int] = mapped_column(Integer, default=1)


class LoginFailureRow(Base):
    """A failed log-in, keyed 'account:<email>' and 'ip:<address>' (the lock-out counts
    them; kept in the store so a restart does not reset it)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class StaffSessionRow(Base):
    """A signed-in staff session (issue 19): the cookie holds a random token, this row its
    SHA-256; log-out, a password change or an owner deletes the row and the cookie is dead."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)


class StaffLinkRow(Base):
    """A single-use emailed link (issue 19): an invitation (email, role) or a password reset
    (staff_id); only the SHA-256 of the link's token is kept."""

    __tablename__ = "staff_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RecoveryCodeRow(Base):
    """A single-use recovery code of a staff member's second factor (SHA-256 only)."""

    __tablename__ = "staff_recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PasskeyRow(Base):
    """A staff member's passkey (WebAuthn credential, issue 19): its id, COSE public key and
    signature counter; the private key never leaves the authenticator."""

    __tablename__ = "staff_passkeys"

    id: Mapped[str] = mapped_column(String(400), primary_key=True)  # base64url credential id
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(Text)  # base64url COSE key
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StaffSettingRow(Base):
    """An owner's setting of the dashboard (issue 19), e.g. require_second_factor."""

    __tablename__ = "staff_settings"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class RateLimitRow(Base):
    """A fixed-window counter of the sign-up limits (per mailbox, IP, network, and the
    global ceiling), shared by every web process; a row goes once its window has ended."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer)
    expires: Mapped[int] = mapped_column(Integer, index=True)
    hits: Mapped[int] = mapped_column(Integer)
