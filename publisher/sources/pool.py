"""Remote sources fetched at once: a bounded pool of threads, at most `per_host` fetches to
one host at a time, and each result handed back as soon as it is complete.

The caller consumes the results in its own thread (so the store is written from one thread
only, whatever the database). A job is only handed to a thread once its host has a free
slot: twenty feeds from one host in a row never tie up the pool while other hosts wait, and
a source's own deadline (sources.fetch) starts when its fetch does, not while it queues.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import httpx

from publisher.sources.base import CollectContext, Problem, Source, SourceResult


@dataclass(frozen=True)
class PoolLimits:
    concurrency: int  # fetches at once, all hosts together
    per_host: int  # fetches at once to one host


def is_remote(source: Source, ctx: CollectContext) -> bool:
    """A source that waits on the network (fetched in the pool); the others are local."""
    return source.target(ctx.memory) is not None


def collect_isolated(source: Source, ctx: CollectContext) -> SourceResult:
    """A source's collect; a crash inside one (a bug, or input nothing anticipated) is that
    source's problem, never the run's (nor the pool's)."""
    try:
        return source.collect(ctx)
    except Exception as exc:  # noqa: BLE001 - isolation is the point
        reason = f"collection failed ({exc.__class__.__name__}: {exc})"
        return SourceResult(problems=[Problem(source.name, "source", reason)])


def host_of(source: Source, ctx: CollectContext) -> str:
    """The host a remote source will connect to (its remembered URL after a permanent
    redirect, else its own); the per-host limit counts fetches by this name."""
    url = source.target(ctx.memory) or ""
    try:
        return httpx.URL(url).host.lower() or url
    except (httpx.InvalidURL, TypeError):
        return str(url)  # the fetch itself reports the bad URL


def collect_concurrently(
    jobs: Sequence[tuple[Source, CollectContext]], limits: PoolLimits
) -> Iterator[tuple[int, SourceResult]]:
    """Yield (position in `jobs`, result) for every job, in the order they complete."""
    queues: dict[str, deque[int]] = {}  # per host, in configuration order
    for index, (source, ctx) in enumerate(jobs):
        queues.setdefault(host_of(source, ctx), deque()).append(index)
    busy: Counter[str] = Counter()
    running: dict[Future[SourceResult], tuple[int, str]] = {}
    workers = max(1, min(limits.concurrency, len(jobs)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect") as pool:
        while queues or running:
            for index, host in _ready(queues, busy, limits, workers - len(running)):
                busy[host] += 1
                running[pool.submit(collect_isolated, *jobs[index])] = (index, host)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: running[f][0]):
                index, host = running.pop(future)
                busy[host] -= 1
                yield index, future.result()


def _ready(
    queues: dict[str, deque[int]], busy: Counter[str], limits: PoolLimits, free: int
) -> list[tuple[int, str]]:
    """The next jobs to start: up to `free`, each from a host below its limit, hosts taken
    in turn so that one host with many feeds does not starve the others."""
    chosen: list[tuple[int, str]] = []
    starting: Counter[str] = Counter()
    progress = True
    while len(chosen) < free and progress:
        progress = False
        for host in list(queues):
            if len(chosen) >= free:
                break
            if busy[host] + starting[host] >= limits.per_host:
                continue
            chosen.append((queues[host].popleft(), host))
            starting[host] += 1
            progress = True
            if not queues[host]:
                del queues[host]
    return chosen
