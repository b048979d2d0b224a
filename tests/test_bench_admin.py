"""`python -m bench admin` at a tiny size: the bulk load gives the rows it says, every staff
page in its table answers 200 to a logged-in owner on both databases, and the table names
every page /admin has (a new page must be timed too)."""

from __future__ import annotations

import re

from starlette.routing import Route

from bench import admin as bench_admin
from bench._admin_data import NOW, Sizes
from publisher.store.audience_counts import count_reachable
from publisher.store.subscribers import count_by_status
from publisher.web.admin import ROUTES

# GET routes that are not staff pages: assets, the log-in and link pages, the archived email
NOT_PAGES = {
    "/admin/admin.css", "/admin/passkey.js", "/admin/login", "/admin/invitation",
    "/admin/reset", "/admin/reset/new", "/admin/editions/{id:int}/email",
    "/admin/posts/editor.js", "/admin/broadcasts/broadcast.js",
}  # fmt: skip


def test_the_bench_table_names_every_admin_page():
    pages = [path.split("?")[0] for _, path in bench_admin.PAGES]
    for route in ROUTES:
        if not isinstance(route, Route) or "GET" not in (route.methods or ()):
            continue
        if route.path in NOT_PAGES:
            continue
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", route.path) + "$"
        assert any(re.match(pattern, page) for page in pages), f"bench/admin.py PAGES: {route.path}"


def test_the_bench_runs_tiny(store, project, monkeypatch):
    monkeypatch.setenv("BENCH_ADMIN_SCALE", "0.0001")
    sizes = bench_admin._sizes()
    assert sizes == Sizes(100, 2, 2, 500, 200, 2)
    bench_admin._seed(store, sizes)
    statuses = count_by_status(store)
    assert sum(statuses.values()) == 100 and statuses["active"] == 85
    # two suppressed hashes: one an active subscriber's, left out of every count of reach
    assert count_reachable(store, lambda topics: True, now=NOW) == 84
    folder = bench_admin._project()
    timings = bench_admin.time_pages(store, folder, repeat=2)
    assert [t.name for t in timings[1:]] == [name for name, _ in bench_admin.PAGES]
    assert all(t.status in bench_admin.expected_status(t.name) for t in timings), timings
    assert all(0 < t.p50 <= t.p95 for t in timings)
    assert bench_admin.markdown_ms(repeat=1) > 0
