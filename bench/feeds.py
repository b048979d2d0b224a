"""Feed build: every feed of the sample configuration from 10,000 items of ~2 KB HTML.

Baseline (same run, same items): one RSS document of all items written with plain feedgen.
Target: the full build of all formats under 3 s; an unchanged rebuild >= 10x faster.

    .venv/bin/python -m bench.feeds [ITEMS]
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedgen.feed import FeedGenerator

from bench.common import row
from publisher.config import PublisherConfig, load_config
from publisher.items import KINDS, Item
from publisher.pipeline import build_feeds
from publisher.publish import MemoryState, publish_feeds
from publisher.store import open_store
from publisher.store.items import upsert_items

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOPICS = ["labor", "workers-rights", "infrastructure", "membership", "small-business"]
PARAGRAPH = (
    "<p>Council members <strong>passed</strong> a fair workweek ordinance &amp; a wage-theft "
    'measure; read <a href="https://www.example.org/reports/{n}/">the report</a> — “résumé”.</p>'
)


def make_items(count: int) -> list[Item]:
    rng = random.Random(5005)
    out = []
    for n in range(count):
        body = "".join(PARAGRAPH.format(n=n) for _ in range(11))  # ~2 KB
        topics = ["economic-justice"] if rng.random() < 0.9 else []
        topics += rng.sample(TOPICS, rng.randint(1, 2))
        out.append(
            Item(
                id=f"posts:{n}",
                title=f"Item {n}: local wins & “news”",
                url=f"https://www.example.org/posts/{n}/",
                published=NOW - timedelta(hours=count - n),
                source="posts",
                kind=rng.choice(KINDS),
                summary=f"Summary of item {n}.",
                body_html=body,
                author="Local Progress staff" if n % 2 else None,
                topics=tuple(topics),
                image="https://www.example.org/images/a.jpg" if n % 5 == 0 else None,
            )
        )
    return out


def baseline(items: list[Item], out: Path) -> None:
    generator = FeedGenerator()
    generator.id("urn:bench")
    generator.title("Everything")
    generator.link(href="https://www.example.org/", rel="alternate")
    generator.description("All items")
    for item in items:
        entry = generator.add_entry(order="append")
        entry.id(item.id)
        entry.title(item.title)
        entry.link(href=item.url)
        entry.description(item.summary)
        entry.content(item.body_html, type="html")
        entry.published(item.published)
    generator.rss_file(str(out / "baseline.rss"))


def timed(fn, repeat: int) -> tuple[float, float]:
    """(median seconds, peak traced MiB) of fn(run number)."""
    times = []
    for run in range(repeat):
        os.sync()  # untimed: earlier runs' dirty pages would throttle this run's writes
        start = time.perf_counter()
        fn(run)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn(repeat)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10_000
    items = make_items(count)
    work = Path(tempfile.mkdtemp(prefix="bench-feeds-"))
    shutil.copy(ROOT / "schedules.yaml", work / "schedules.yaml")
    config = load_config(work / "schedules.yaml")
    out = work / config.feeds.output_dir
    print(f"{count} items, {len(config.feeds.feeds)} feeds x 3 formats (2 cores; medians)")

    def fresh(run: int, name: str) -> Path:
        # A new directory per run: deleting 220 MB between runs would leave the file system
        # busy (journal, discard) during the next timed run. Everything goes at the end.
        directory = work / f"{name}-{run}"
        directory.mkdir()
        return directory

    def config_for(output: Path) -> PublisherConfig:
        return config.model_copy(
            update={"feeds": config.feeds.model_copy(update={"output_dir": str(output)})}
        )

    def full_build(run: int) -> None:
        publish_feeds(config_for(fresh(run, "full")), items, {}, now=NOW)

    store = open_store(f"sqlite:///{work}/bench.db")
    upsert_items(store, items, now=NOW)
    stored = config_for(work / "stored")

    try:
        base_s, base_mb = timed(lambda run: baseline(items, fresh(run, "baseline")), 3)
        full_s, full_mb = timed(full_build, 3)
        state = MemoryState()  # what the store keeps between builds
        report = publish_feeds(config, items, {}, now=NOW, state=state)  # one to rebuild
        again_s, again_mb = timed(
            lambda run: publish_feeds(config, items, {}, now=NOW, state=state), 5
        )
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        store_s, _ = timed(
            lambda run: build_feeds(config_for(fresh(run, "store")), store, now=NOW), 3
        )
        build_feeds(stored, store, now=NOW)
        store_again_s, _ = timed(lambda run: build_feeds(stored, store, now=NOW), 5)
        print(row("baseline: one RSS file, plain feedgen", base_s, f"peak {base_mb:6.1f} MiB"))
        print(row("full build: every feed, RSS+Atom+JSON", full_s, f"peak {full_mb:6.1f} MiB"))
        print(row("unchanged rebuild", again_s, f"peak {again_mb:6.1f} MiB"))
        print(
            f"{report.note}; {size:.0f} MiB on disk; full build = {full_s / base_s:.1f}x "
            f"baseline; unchanged rebuild {full_s / again_s:.0f}x faster than full "
            f"(targets: full < 3 s: {'met' if full_s < 3 else 'MISSED'}, "
            f"rebuild >= 10x: {'met' if full_s / again_s >= 10 else 'MISSED'})"
        )
        print(row("from the store (pipeline.build_feeds): full", store_s))
        print(
            row("from the store: unchanged (content signature)", store_again_s),
            f"{store_s / store_again_s:.0f}x faster",
        )
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
