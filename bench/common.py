"""Small shared helpers for benchmarks: timing medians and peak memory."""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any


def measure(fn: Callable[[], Any], *, repeat: int = 5) -> tuple[float, float, Any]:
    """Run fn `repeat` times; return (median seconds, peak traced MiB of one run, last result)."""
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20, result


def row(label: str, seconds: float, extra: str = "") -> str:
    return f"{label:<48} {seconds * 1000:>10.1f} ms  {extra}"
