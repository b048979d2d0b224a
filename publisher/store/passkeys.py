"""Staff passkeys (WebAuthn credentials, issue 19): what the server keeps of each (id,
public key, signature counter). The ceremonies themselves (options, verification) are the
web's, with the `webauthn` library."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from publisher.store import Store
from publisher.store.models import PasskeyRow
from publisher.store.staff import StaffError

__all__ = [
    "Passkey",
    "add_passkey",
    "find_passkey",
    "list_passkeys",
    "passkey_used",
    "remove_passkey",
]


@dataclass(frozen=True)
class Passkey:
    id: str  # base64url credential id
    staff_id: int
    public_key: str  # base64url COSE key
    sign_count: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


def _passkey(row: PasskeyRow) -> Passkey:
    return Passkey(
        row.id, row.staff_id, row.public_key, row.sign_count, row.name, row.created_at,
        row.last_used_at,
    )  # fmt: skip


def add_passkey(
    store: Store, staff_id: int, credential_id: str, public_key: str, sign_count: int, *,
    name: str, now: datetime,
) -> Passkey:  # fmt: skip
    with store.session() as session:
        if session.get(PasskeyRow, credential_id) is not None:
            raise StaffError("this passkey is registered already")
        row = PasskeyRow(
            id=credential_id, staff_id=staff_id, public_key=public_key, sign_count=sign_count,
            name=name[:100], created_at=now,
        )  # fmt: skip
        session.add(row)
        session.flush()
        return _passkey(row)


def find_passkey(store: Store, credential_id: str) -> Passkey | None:
    with store.session() as session:
        row = session.get(PasskeyRow, credential_id[:400])
        return _passkey(row) if row else None


def list_passkeys(store: Store, staff_id: int) -> list[Passkey]:
    query = (
        select(PasskeyRow).where(PasskeyRow.staff_id == staff_id).order_by(PasskeyRow.created_at)
    )
    with store.session() as session:
        return [_passkey(r) for r in session.scalars(query)]


def passkey_used(store: Store, credential_id: str, sign_count: int, *, now: datetime) -> None:
    with store.session() as session:
        row = session.get(PasskeyRow, credential_id)
        if row is not None:
            row.sign_count, row.last_used_at = sign_count, now


def remove_passkey(store: Store, staff_id: int, credential_id: str) -> bool:
    query = delete(PasskeyRow).where(
        PasskeyRow.id == credential_id, PasskeyRow.staff_id == staff_id
    )
    with store.session() as session:
        return bool(session.execute(query).rowcount)  # type: ignore[attr-defined]
