"""The audit log: every staff action with who, when and from where."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from publisher.store import Store
from publisher.store.models import AuditRow

__all__ = ["AuditEntry", "recent", "record"]


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str
    ip: str | None


def record(
    store: Store, actor: str, action: str, target: str = "", *, ip: str | None, now: datetime
) -> None:
    with store.session() as session:
        session.add(AuditRow(at=now, actor=actor[:320], action=action, target=target, ip=ip))


def recent(store: Store, *, limit: int = 200) -> list[AuditEntry]:
    """Newest first."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    with store.session() as session:
        return [AuditEntry(r.at, r.actor, r.action, r.target, r.ip) for r in session.scalars(query)]
