"""The store as collection's ItemSink (publisher.sources.base): collection never imports the
store, so the orchestrator and the CLI hand it this adapter over the store's functions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from publisher.items import Item
from publisher.sources.base import SourceMemory
from publisher.store import Store, dashboard, items, state

__all__ = ["StoreSink"]


@dataclass(frozen=True)
class StoreSink:
    """Satisfies publisher.sources.base.ItemSink by calling the store's functions."""

    store: Store

    def get_source_memory(self, name: str) -> SourceMemory:
        return state.get_source_memory(self.store, name)

    def save_source_memory(self, name: str, memory: SourceMemory, *, now: datetime) -> None:
        state.save_source_memory(self.store, name, memory, now=now)

    def upsert_items(self, found: Iterable[Item], *, now: datetime) -> items.UpsertResult:
        return items.upsert_items(self.store, found, now=now)

    def retire_missing(self, source: str, present: set[str], *, now: datetime) -> list[str]:
        return items.retire_missing(self.store, source, present, now=now)

    def record_source_run(
        self, name: str, problems: list[str], *, failed: bool, now: datetime
    ) -> None:
        dashboard.record_source_run(self.store, name, problems, failed=failed, now=now)
