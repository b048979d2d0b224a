"""Collection: run every configured source and upsert what it found into an ItemSink (the
store, passed in: collection never imports it).

A source that fails is reported and skipped; every other source is still collected. A
source that can tell which of its files still exist (Markdown) has the items of deleted
files retired. Remote sources are fetched at once (sources.pool); their results are stored
here, in the calling thread, as each one completes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from publisher.config import PublisherConfig
from publisher.items import Item
from publisher.sources import CollectContext, Problem, SourceResult, build_sources
from publisher.sources.base import ItemSink, UpsertCounts
from publisher.sources.network import ClientOptions, guarded_client
from publisher.sources.pool import PoolLimits, collect_concurrently, collect_isolated, is_remote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NothingStored:
    """The upsert counts of a source whose result stored no items."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0


@dataclass
class SourceReport:
    name: str
    found: int = 0
    upsert: UpsertCounts = field(default_factory=NothingStored)
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
    sink: ItemSink,
    *,
    now: datetime,
    http: httpx.Client | None = None,
) -> CollectReport:
    """Collect every source: local ones one after the other, remote ones at once (bounded
    by `collect.concurrency` and `collect.per_host`). Each result is stored as it arrives,
    in this thread; the report lists sources and problems in configuration order."""
    sources = build_sources(config)
    limits = PoolLimits(config.collect.concurrency, config.collect.per_host)
    owns_client = http is None
    if http is None:  # enough connections for the pool: none waits for another's
        http = guarded_client(ClientOptions(connections=limits.concurrency))
    done: dict[int, tuple[SourceReport, list[Problem]]] = {}
    try:
        contexts = [
            CollectContext(now=now, memory=sink.get_source_memory(s.name), http=http)
            for s in sources
        ]
        remote = [i for i, source in enumerate(sources) if is_remote(source, contexts[i])]
        for i, source in enumerate(sources):
            if not is_remote(source, contexts[i]):
                result = collect_isolated(source, contexts[i])
                done[i] = _store(sink, source.name, contexts[i], result, now)
        jobs = [(sources[i], contexts[i]) for i in remote]
        for position, result in collect_concurrently(jobs, limits):
            i = remote[position]
            done[i] = _store(sink, sources[i].name, contexts[i], result, now)
    finally:
        if owns_client:
            http.close()
    report = CollectReport()
    for i in sorted(done):  # configuration order, whatever order the fetches ended in
        source_report, problems = done[i]
        for problem in problems:
            log.warning("%s", problem)
        report.sources.append(source_report)
        report.problems.extend(problems)
    return report


def _store(
    sink: ItemSink, name: str, ctx: CollectContext, result: SourceResult, now: datetime
) -> tuple[SourceReport, list[Problem]]:
    """One source's result into the sink: its items, retirements, memory and health."""
    result.items = _first_of_each_id(name, result)
    report = SourceReport(name=name, found=len(result.items), not_modified=result.not_modified)
    if result.items:
        report.upsert = sink.upsert_items(result.items, now=now)
    if result.present is not None:
        report.retired = sink.retire_missing(name, result.present, now=now)
        for item_id in report.retired:
            log.info("retired %s: its file was deleted", item_id)
    if result.memory is not None and result.memory != ctx.memory:
        sink.save_source_memory(name, result.memory, now=now)
    # the dashboard's source health: failing = problems and nothing read
    failed = bool(result.problems) and not result.items and not result.not_modified
    problems = [str(p) for p in result.problems]
    sink.record_source_run(name, problems, failed=failed, now=now)
    log.info(
        "collected %s: %d found, %d new, %d updated%s",
        name,
        report.found,
        report.upsert.inserted,
        report.upsert.updated,
        " (not modified)" if result.not_modified else "",
    )
    return report, result.problems


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
