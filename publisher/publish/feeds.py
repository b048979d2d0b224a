"""Publishing the configured feeds as static files under the output directory.

For each feed: select its items (publish/feed_inputs.py), cut them into pages
(documents.plan_pages), and render a page only when its fingerprint (items' ids and content
hashes, feed metadata, format version) differs from the one recorded at the last build; a
rendered file is written (publisher.support.files) only when its bytes differ, so an
unchanged file keeps its mtime and a web server's ETag/Last-Modified. Then index.opml, the
alternate-link snippet, and a WebSub ping for every subscription document that changed.

What a build remembers (fingerprints, pings a hub missed) is kept by the caller (the store,
see store.feeds_queries.StoredBuildState), never in the published folder; the document keys
read back from it are checked against the shape this module writes before any of them is
used as a path, so an edited state can never make a build touch a file outside feeds/.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from publisher.config import PublisherConfig
from publisher.items import Item
from publisher.publish.documents import (
    FORMAT_VERSION,
    FORMATS,
    STYLESHEET_FILE,
    FeedMeta,
    Page,
    plan_pages,
)
from publisher.publish.entries import EntryCache, item_digest
from publisher.publish.feed_inputs import edition_items, feed_meta, publishable, select_items
from publisher.publish.listing import (
    ALTERNATE_LINKS_FILE,
    INDEX_FILE,
    OPML_FILE,
    alternate_links,
    feed_stylesheet,
    feeds_index,
    opml_document,
)
from publisher.publish.state import LEGACY_STATE_FILE, BuildState, MemoryState, checked
from publisher.publish.writer import BackgroundWriter
from publisher.render.environment import search_path_for
from publisher.store.feeds_queries import SentEdition
from publisher.support.screen import count

log = logging.getLogger(__name__)


@dataclass
class FeedsReport:
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    left_out: list[str] = field(default_factory=list)  # items not publishable, and why
    pinged: list[str] = field(default_factory=list)  # feed URLs announced to the hub
    problems: list[str] = field(default_factory=list)  # hub failures: reported, not fatal

    @property
    def note(self) -> str:
        parts = [f"feeds: {count(self.written, 'file')} written, {self.unchanged} unchanged"]
        if self.removed:
            parts.append(f"{self.removed} removed")
        if self.left_out:
            parts.append(f"{count(len(self.left_out), 'item')} left out")
        if self.pinged:
            parts.append(count(len(self.pinged), "hub ping"))
        if self.problems:
            parts.append(count(len(self.problems), "problem"))
        return ", ".join(parts)


# --- the build ----------------------------------------------------------------------------


@dataclass
class _Build:
    output: Path
    state: dict
    new_documents: dict[str, str]
    cache: EntryCache
    report: FeedsReport
    hashes: dict[str, str] = field(default_factory=dict)

    def content_hash(self, item: Item) -> str:
        digest = self.hashes.get(item.id)
        if digest is None:
            digest = self.hashes[item.id] = item_digest(item)
        return digest


def publish_feeds(
    config: PublisherConfig,
    items: Sequence[Item],
    editions: Mapping[str, Sequence[SentEdition]],
    *,
    now: datetime,
    http: httpx.Client | None = None,
    signature: str | None = None,
    state: BuildState | None = None,
    edition_titles: Mapping[tuple[str, int], Sequence[str]] | None = None,
) -> FeedsReport:
    """Write every configured feed under the output directory; `now` only dates empty feeds.
    `edition_titles` ((campaign, number) -> the titles it carried) describes edition entries.

    `signature` (store.feeds_queries.content_signature) is recorded in `state` so that the
    next build can be skipped by `feeds_up_to_date` without loading any item.
    """
    report = FeedsReport()
    output = config.resolve(config.feeds.output_dir)
    state = state if state is not None else MemoryState()
    (output / LEGACY_STATE_FILE).unlink(missing_ok=True)
    build = _Build(
        output, checked(state.load()), {}, EntryCache(config.organisation.public_url), report
    )
    metas, pending, empty_since = _plan(build, config, items, editions, now, edition_titles)
    # A first build renders thousands of entries: share that work between processes.
    changed_items = [item for _, page in pending for item in page.items]
    build.cache.warm(changed_items, workers=min(2, os.cpu_count() or 1))
    with BackgroundWriter(output) as writer:
        for meta, page in pending:
            for fmt in FORMATS.values():
                rendered = fmt.render(meta, page, build.cache)
                writer.submit(meta.relpath(fmt.extension, page.number), rendered)
        writer.submit(OPML_FILE, opml_document(f"{config.organisation.name} feeds", metas))
        writer.submit(ALTERNATE_LINKS_FILE, alternate_links(metas))
        search_path = search_path_for(config.root)
        writer.submit(INDEX_FILE, feeds_index(config.organisation, metas, search_path=search_path))
        writer.submit(STYLESHEET_FILE, feed_stylesheet(config.organisation, search_path))
    report.written += len(writer.changed)
    report.unchanged += len(writer.unchanged)
    _remove_stale(build)
    changed = set(writer.changed)
    changed_urls = [
        meta.url(fmt.extension)
        for meta in metas
        for fmt in FORMATS.values()
        if meta.relpath(fmt.extension) in changed
    ]
    # Pings a hub missed last time are sent again with this build's.
    to_ping = list(dict.fromkeys(build.state["unpinged"] + changed_urls))
    if config.feeds.websub_hub and to_ping:
        _ping_hub(config.feeds.websub_hub, to_ping, report, http)
    inputs = _inputs_fingerprint(config, signature) if signature else None
    memory: dict = {"documents": build.new_documents, "empty_since": empty_since}
    memory["inputs"] = inputs
    unpinged = [url for url in to_ping if url not in report.pinged]
    if config.feeds.websub_hub and unpinged:
        memory["unpinged"] = unpinged
    state.save(memory)
    return report


def _plan(
    build: _Build,
    config: PublisherConfig,
    items: Sequence[Item],
    editions: Mapping[str, Sequence[SentEdition]],
    now: datetime,
    titles: Mapping[tuple[str, int], Sequence[str]] | None = None,
) -> tuple[list[FeedMeta], list[tuple[FeedMeta, Page]], dict[str, str]]:
    """Every feed's metadata, the pages that need rendering, and the dates of empty feeds."""
    items = publishable(items, build.report, now)
    metas: list[FeedMeta] = []
    pending: list[tuple[FeedMeta, Page]] = []
    empty_since: dict[str, str] = {}
    for feed in config.feeds.feeds:
        meta = feed_meta(config, feed)
        metas.append(meta)
        chosen = (
            publishable(
                edition_items(config, editions.get(feed.editions_of, ()), titles),
                build.report,
                now,
            )
            if feed.editions_of
            else select_items(feed, items)
        )
        updated = now  # plan_pages dates a page by its items; only an empty one uses this
        if not chosen:
            empty_since[feed.name] = _empty_stamp(build, meta, now)
            updated = datetime.fromisoformat(empty_since[feed.name])
        for page in plan_pages(chosen, feed.limit, empty_updated=updated):
            if _needs_rendering(build, meta, page):
                pending.append((meta, page))
    return metas, pending, empty_since


def feeds_up_to_date(
    config: PublisherConfig, signature: str, state: BuildState
) -> FeedsReport | None:
    """A report of an empty rebuild if the last build had the same inputs (configuration and
    store signature) and all its files are still there; None if a build is needed."""
    output = config.resolve(config.feeds.output_dir)
    memory = checked(state.load())
    if (output / LEGACY_STATE_FILE).exists():
        return None  # the build removes it
    if memory.get("inputs") != _inputs_fingerprint(config, signature) or memory["unpinged"]:
        return None  # something changed, or the hub still has to hear of an earlier change
    listing = (OPML_FILE, ALTERNATE_LINKS_FILE, INDEX_FILE, STYLESHEET_FILE)
    paths = [output / name for name in listing] + [
        output / key.format(ext=fmt.extension)
        for key in memory["documents"]
        for fmt in FORMATS.values()
    ]
    if not all(path.is_file() for path in paths):
        return None
    return FeedsReport(unchanged=len(paths))


def _inputs_fingerprint(config: PublisherConfig, signature: str) -> str:
    payload = [
        FORMAT_VERSION,
        signature,
        config.organisation.model_dump(mode="json"),
        config.feeds.model_dump(mode="json"),
    ]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _empty_stamp(build: _Build, meta: FeedMeta, now: datetime) -> str:
    """The date an empty feed carries: when it was first published empty, so rebuilding it
    later gives the same bytes (from the state file, else from the Atom file itself)."""
    stamp = build.state["empty_since"].get(meta.name)
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).isoformat()
        except ValueError:
            pass  # an edited state: read the date from the document instead
    try:
        atom = (build.output / meta.relpath("atom")).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return now.isoformat()
    if "<entry>" in atom:
        return now.isoformat()
    found = re.search(r"<updated>([^<]+)</updated>", atom)
    try:
        return datetime.fromisoformat(found.group(1)).isoformat() if found else now.isoformat()
    except ValueError:
        return now.isoformat()


def _fingerprint(build: _Build, meta: FeedMeta, page: Page) -> str:
    header = [FORMAT_VERSION, asdict(meta), page.number, page.prev_archive, page.next_archive]
    digest = hashlib.blake2b(json.dumps(header, sort_keys=True).encode(), digest_size=20)
    digest.update(page.updated.isoformat().encode())
    for item in page.items:
        digest.update(f"\x1e{item.id}\x1f{build.content_hash(item)}".encode())
    return digest.hexdigest()


def _needs_rendering(build: _Build, meta: FeedMeta, page: Page) -> bool:
    """False when the page's fingerprint matches the last build and its files are there."""
    key = meta.relpath("{ext}", page.number)
    fingerprint = _fingerprint(build, meta, page)
    build.new_documents[key] = fingerprint
    paths = [build.output / meta.relpath(fmt.extension, page.number) for fmt in FORMATS.values()]
    if build.state["documents"].get(key) == fingerprint and all(path.is_file() for path in paths):
        build.report.unchanged += len(paths)
        return False
    return True


def _remove_stale(build: _Build) -> None:
    """Delete documents of the previous build that no longer exist (a removed feed, or
    archive pages that emptied when items were deleted). Only keys of the shape this module
    writes are in build.state (see state.checked), and each path must resolve inside the output
    folder: a symlink planted there cannot lead the build elsewhere either."""
    root = build.output.resolve()
    for key in set(build.state["documents"]) - set(build.new_documents):
        for fmt in FORMATS.values():
            path = build.output / key.format(ext=fmt.extension)
            if not path.resolve().is_relative_to(root):
                log.warning("feeds: not removing %s: it is outside %s", path, root)
                continue
            if path.is_file():
                path.unlink()
                build.report.removed += 1


def _ping_hub(hub: str, urls: list[str], report: FeedsReport, http: httpx.Client | None) -> None:
    """WebSub publish notifications; a failing hub is reported, the feeds stay written."""
    client = http or httpx.Client(timeout=10.0)
    try:
        for url in urls:
            try:
                response = client.post(hub, data={"hub.mode": "publish", "hub.url": url})
            except httpx.HTTPError as exc:
                report.problems.append(f"WebSub hub {hub}: {exc.__class__.__name__}: {exc}")
                break
            if response.status_code >= 300:
                report.problems.append(f"WebSub hub {hub} answered {response.status_code}")
                continue
            report.pinged.append(url)
    finally:
        if http is None:
            client.close()
    for problem in report.problems:
        log.warning(problem)
