"""What sources and publishers remember between runs: a source's conditional-request
memory (etag, last-modified, disabled) and a publisher's state document."""

from __future__ import annotations

from datetime import datetime

from publisher.sources.base import SourceMemory
from publisher.store import Store
from publisher.store.models import PublishStateRow, SourceStateRow

__all__ = [
    "get_source_memory",
    "load_publish_state",
    "save_publish_state",
    "save_source_memory",
]


def load_publish_state(store: Store, name: str) -> dict:
    with store.session() as session:
        row = session.get(PublishStateRow, name)
        return dict(row.data) if row is not None and isinstance(row.data, dict) else {}


def save_publish_state(store: Store, name: str, data: dict, *, now: datetime) -> None:
    with store.session() as session:
        row = session.get(PublishStateRow, name) or PublishStateRow(name=name)
        if row.data != data:
            row.data, row.updated_at = data, now
            session.add(row)


def get_source_memory(store: Store, name: str) -> SourceMemory:
    with store.session() as session:
        row = session.get(SourceStateRow, name)
        if row is None:
            return SourceMemory()
        return SourceMemory(
            etag=row.etag,
            last_modified=row.last_modified,
            url=row.url,
            disabled=row.disabled,
            disabled_reason=row.disabled_reason,
            refused_key=row.refused_key,
            refused_reason=row.refused_reason,
            refused_at=row.refused_at,
        )


def save_source_memory(store: Store, name: str, state: SourceMemory, *, now: datetime) -> None:
    with store.session() as session:
        row = session.get(SourceStateRow, name) or SourceStateRow(name=name)
        row.etag = state.etag
        row.last_modified = state.last_modified
        row.url = state.url
        row.disabled = state.disabled
        row.disabled_reason = state.disabled_reason
        row.refused_key = state.refused_key
        row.refused_reason = state.refused_reason
        row.refused_at = state.refused_at
        row.checked_at = now
        session.add(row)
