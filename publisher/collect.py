"""Collection: run every configured source and upsert what it found into the store.

A source that fails is reported and skipped; every other source is still collected. A
source that can tell which of its files still exist (Markdown) has the items of deleted
files retired.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from publisher.config import PublisherConfig
from publisher.items import Item
from publisher.sources import CollectContext, Problem, Source, SourceResult, build_sources
from publisher.store import Store, UpsertResult
from publisher.store.dashboard import record_source_run

log = logging.getLogger(__name__)


@dataclass
class SourceReport:
    name: str
    found: int = 0
    upsert: UpsertResult = field(default_factory=UpsertResult)
    not_modified: bool = False
    retired: list[str] = field(default_factory=list)  # ids retired: their files are gone


@dataclass
class CollectReport:
    sources: list[SourceReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def inserted(self) -> int:
        return sum(s.upsert.inserted for s in self.sources)

    @property
    def updated(self) -> int:
        return sum(s.upsert.updated for s in self.sources)

    @property
    def unchanged(self) -> int:
        return sum(s.upsert.unchanged for s in self.sources)

    @property
    def retired(self) -> int:
        return sum(len(s.retired) for s in self.sources)

    @property
    def note(self) -> str:
        retired = f", {self.retired} retired" if self.retired else ""
        return (
            f"collect: {self.inserted} new, {self.updated} updated, {self.unchanged} unchanged"
            f"{retired}, {len(self.problems)} problem(s)"
        )


def collect_all(
    config: PublisherConfig,
    store: Store,
    *,
    now: datetime,
    http: httpx.Client | None = None,
) -> CollectReport:
    report = CollectReport()
    owns_client = http is None
    http = http or httpx.Client()
    try:
        for source in build_sources(config):
            memory = store.get_source_memory(source.name)
            result = _collect_one(source, CollectContext(now=now, memory=memory, http=http))
            result.items = _first_of_each_id(source.name, result)
            source_report = SourceReport(
                name=source.name, found=len(result.items), not_modified=result.not_modified
            )
            if result.items:
                source_report.upsert = store.upsert_items(result.items, now=now)
            if result.present is not None:
                source_report.retired = store.retire_missing(source.name, result.present, now=now)
                for item_id in source_report.retired:
                    log.info("retired %s: its file was deleted", item_id)
            if result.memory is not None and result.memory != memory:
                store.save_source_memory(source.name, result.memory, now=now)
            for problem in result.problems:
                log.warning("%s", problem)
            failed = bool(result.problems) and not result.items and not result.not_modified
            problems = [str(p) for p in result.problems]
            record_source_run(store, source.name, problems, failed=failed, now=now)
            report.problems.extend(result.problems)
            report.sources.append(source_report)
            log.info(
                "collected %s: %d found, %d new, %d updated%s",
                source.name,
                source_report.found,
                source_report.upsert.inserted,
                source_report.upsert.updated,
                " (not modified)" if result.not_modified else "",
            )
    finally:
        if owns_client:
            http.close()
    return report


def _collect_one(source: Source, ctx: CollectContext) -> SourceResult:
    """A source's collect; a crash inside one (a bug, or input nothing anticipated) is that
    source's problem, never the run's."""
    try:
        return source.collect(ctx)
    except Exception as exc:  # noqa: BLE001 - isolation is the point
        reason = f"collection failed ({exc.__class__.__name__}: {exc})"
        return SourceResult(problems=[Problem(source.name, "source", reason)])


def _first_of_each_id(name: str, result: SourceResult) -> list[Item]:
    """Two items of one source with one id (two files with the same front-matter `id`, two
    export rows): the first is kept, each other one is reported."""
    seen: dict[str, Item] = {}
    for item in result.items:
        if item.id in seen:
            first = seen[item.id].origin or seen[item.id].url
            where = item.origin or item.url
            reason = f"duplicate id '{item.id}' (also {first}); skipped"
            result.problems.append(Problem(name, where, reason))
        else:
            seen[item.id] = item
    return list(seen.values())
