"""`python -m bench.api` at a tiny size, so the benchmark that measures issue 22's create
rate keeps working: a real `publisher serve`, every create answered 201 and stored once."""

from __future__ import annotations

import re

import pytest


@pytest.mark.slow
def test_the_api_benchmark_runs_and_loses_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import api as bench

    bench.main(["--creates", "60", "--clients", "4"])
    out = capsys.readouterr().out
    assert re.search(r"POST /subscribers +\d+/s .*statuses \{201: 60\}", out), out
    assert re.search(r"Idempotency-Key +\d+/s .*statuses \{201: 60\}", out), out
    assert "answered 201: 120; people in the store: 120; lost: 0" in out, out
