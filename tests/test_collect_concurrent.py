"""Concurrent collection against real slow servers on 10 loopback hosts (tests/servers/
feeds.py, 300 ms a request): 200 feeds, some failing, every good item stored once, problems
in configuration order, never more than `per_host` requests to one host at a time, each
source's conditional-GET memory its own; local sources, retirements, 410 and permanent
redirects still right when the remote ones run at once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from publisher.config import load_config
from publisher.errors import ConfigError
from publisher.sources.collect import collect_all
from publisher.store.models import ItemRow
from publisher.store.sink import StoreSink
from publisher.store.state import get_source_memory
from tests.conftest import write_config
from tests.servers.feeds import ITEMS_PER_FEED, FeedFarm

HOSTS = 10  # nine with 22 feeds each, the tenth with the two slow ones
PER_HOST, CONCURRENCY = 2, 16


@pytest.fixture
def farm() -> Iterator[FeedFarm]:
    servers = FeedFarm(HOSTS, latency=0.3, trickle=0.2).start()
    yield servers
    servers.close()


def layout(farm: FeedFarm) -> list[tuple[str, str, str]]:
    """(name, url, kind) in configuration order: grouped by host (the hard case for a pool
    that does not look at hosts), the two slow feeds in the middle."""
    feeds = []
    for n in range(198):
        kind = "fail" if n % 10 == 7 else "bad" if n % 13 == 5 else "ok"
        feeds.append((kind, farm.url(n // 22, f"/{kind}/{n}")))
    feeds[100:100] = [("slow", farm.url(9, f"/slow/{n}")) for n in (198, 199)]
    return [(f"s{i:03d}", url, kind) for i, (kind, url) in enumerate(feeds)]


def config_text(feeds: list[tuple[str, str, str]]) -> str:
    lines = [f"collect: {{concurrency: {CONCURRENCY}, per_host: {PER_HOST}}}", "sources:"]
    for name, url, kind in feeds:
        # a read timeout above the deadline: however late a loaded machine lets the slow
        # server answer, what ends these fetches is the deadline (at 0.5 s a late header
        # could end one as "unreachable" first)
        limits = ", timeout: 5, deadline: 1" if kind == "slow" else ""
        lines.append(f'  - {{name: {name}, type: feed, url: "{url}"{limits}}}')
    return "\n".join(lines) + "\n"


def expected_problems(feeds: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    reasons = {"fail": "HTTP 500", "bad": "malformed feed", "slow": "1 s deadline"}
    return [(name, url, reasons[kind]) for name, url, kind in feeds if kind != "ok"]


def test_two_hundred_feeds_collected_at_once(farm, make_config, store, fixed_now):
    feeds = layout(farm)
    config = make_config(config_text(feeds))
    started = time.monotonic()
    report = collect_all(config, StoreSink(store), now=fixed_now)
    elapsed = time.monotonic() - started
    # One after the other this takes 200 x 0.3 s = 60 s, and the slow feeds a minute each:
    # the bound is wide (a loaded machine), yet only met with fetches in parallel and the
    # 1 s deadlines holding under concurrency.
    assert elapsed < 25, elapsed
    assert [s.name for s in report.sources] == [name for name, _, _ in feeds]
    problems = [(p.source, p.where, p.reason) for p in report.problems]
    expected = expected_problems(feeds)
    assert [(s, w) for s, w, _ in problems] == [(s, w) for s, w, _ in expected]
    for (_, _, reason), (_, _, wanted) in zip(problems, expected, strict=True):
        assert wanted in reason, reason

    good = [(name, url) for name, url, kind in feeds if kind == "ok"]
    wanted_ids = {
        f"{name}:{url.split('/ok/')[0]}/{url.rsplit('/', 1)[1]}/{k}"
        for name, url in good
        for k in range(1, ITEMS_PER_FEED + 1)
    }
    assert report.inserted == len(wanted_ids) == len(good) * ITEMS_PER_FEED
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(ItemRow)) == len(wanted_ids)
        assert set(session.scalars(select(ItemRow.id))) == wanted_ids

    peaks = farm.peaks()
    assert all(peak <= PER_HOST for peak in peaks.values()), peaks
    assert sorted(peaks.values())[1:] == [PER_HOST] * (HOSTS - 1), peaks  # the limit binds
    # The pool fills across hosts although the file lists 22 feeds of one host in a row (a
    # pool blind to hosts would idle at about 2 to 4 while threads wait for one host).
    assert CONCURRENCY // 2 <= farm.everyone.peak <= CONCURRENCY, farm.everyone.peak

    # Each source sent its own ETag back: every good feed answers 304, nothing is
    # written, and the same problems come out in the same order.
    again = collect_all(config, StoreSink(store), now=fixed_now)
    assert [s.name for s in again.sources if s.not_modified] == [name for name, _ in good]
    assert (again.inserted, again.updated) == (0, 0)
    assert [(p.source, p.where) for p in again.problems] == [(s, w) for s, w, _ in expected]
    assert all(peak <= PER_HOST for peak in farm.peaks().values()), farm.peaks()


def test_local_sources_retirements_gone_and_moved_feeds(
    farm, project, make_config, store, fixed_now
):
    for name in ("a", "b"):
        (project / "content" / f"{name}.md").write_text(
            f"---\ntitle: Post {name}\ndate: 2026-11-20\n---\nbody\n", encoding="utf-8"
        )
    moved_to = farm.url(1, "/ok/3")
    config = make_config(
        "collect: {concurrency: 4, per_host: 1}\n"
        "sources:\n"
        f'  - {{name: first, type: feed, url: "{farm.url(0, "/ok/1")}"}}\n'
        "  - {name: posts, type: markdown, path: content}\n"
        f'  - {{name: gone, type: feed, url: "{farm.url(0, "/gone/2")}"}}\n'
        f'  - {{name: moved, type: feed, url: "{farm.url(0, "/moved/3")}"}}\n'
        f'  - {{name: broken, type: feed, url: "{farm.url(1, "/fail/4")}"}}\n'
    )
    first = collect_all(config, StoreSink(store), now=fixed_now)
    names = ["first", "posts", "gone", "moved", "broken"]
    assert [s.name for s in first.sources] == names
    assert [p.source for p in first.problems] == ["gone", "broken"]
    assert "410 Gone" in first.problems[0].reason
    assert get_source_memory(store, "moved").url == moved_to
    assert max(farm.peaks().values()) == 1

    (project / "content" / "b.md").unlink()
    host0_before = farm.per_host["127.0.0.2"].total
    second = collect_all(config, StoreSink(store), now=fixed_now)
    assert [s.name for s in second.sources] == names
    assert second.sources[1].retired == ["posts:b"]
    assert [(p.source, p.reason.split(":")[0]) for p in second.problems] == [
        ("gone", "skipped"),
        ("broken", "HTTP 500"),
    ]
    assert second.sources[0].not_modified and second.sources[3].not_modified
    # Only `first` still asks host 0: `gone` is disabled, `moved` goes to its new host.
    assert farm.per_host["127.0.0.2"].total - host0_before == 1


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("collect: {concurrency: 0}", "collect.concurrency"),
        ("collect: {concurrency: 1000}", "collect.concurrency"),
        ("collect: {per_host: 0}", "collect.per_host"),
        ("collect: {per_host: many}", "collect.per_host"),
        ("collect: {threads: 8}", "collect.threads"),
    ],
)
def test_collect_settings_are_bounded_and_unknown_keys_refused(tmp_path, text, key):
    path = write_config(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    errors = getattr(info.value, "errors", [info.value])
    assert [e.key for e in errors] == [key]
    assert errors[0].line == 8


def test_collect_settings_default_to_sixteen_and_two(tmp_path):
    config = load_config(write_config(tmp_path))
    assert (config.collect.concurrency, config.collect.per_host) == (16, 2)
