"""A post page is rendered only when what it is made from changed (publish.page_memory):
a build with nothing changed renders and writes none; a changed post rewrites its own page
only; a changed template (an included one, overridden in the project) renders every page
again; a page whose file no longer holds what the build wrote (edited, or overwritten by a
build that raced it) is rendered again. The memory lives in the store (both databases)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from publisher.config import load_config
from publisher.pipeline import write_newsroom_pages
from publisher.publish.posts import PostsReport
from publisher.render.environment import BUILTIN_TEMPLATES
from publisher.store import Store
from publisher.store.items import upsert_items
from tests.conftest import FIXED_NOW
from tests.test_post_pages import CONFIG, post

SLUGS = ("oldest", "middle", "newest")


@pytest.fixture
def config(project: Path):
    (project / "schedules.yaml").write_text(CONFIG, encoding="utf-8")
    return load_config(project / "schedules.yaml")


def mtimes(project: Path) -> dict[str, int]:
    return {
        str(path.relative_to(project / "posts")): path.stat().st_mtime_ns
        for path in (project / "posts").rglob("*.html")
    }


def test_a_build_renders_only_the_pages_whose_inputs_changed(config, project, store: Store):
    items = [post(slug, days_ago=3 - n) for n, slug in enumerate(SLUGS)]
    upsert_items(store, items, now=FIXED_NOW)

    def build() -> PostsReport:
        return write_newsroom_pages(config, store, now=FIXED_NOW)

    first = build()
    assert (first.rendered, first.written) == (4, 4)  # three pages and the index
    before = mtimes(project)
    again = build()
    assert (again.rendered, again.written, again.unchanged) == (0, 0, 4)
    assert mtimes(project) == before

    changed = replace(items[0], body_html="<p>The vote was postponed.</p>")
    upsert_items(store, [changed], now=FIXED_NOW)
    report = build()
    # its page, the page linking to it (same bytes: only the title shows) and the index
    assert (report.rendered, report.written) == (3, 1)
    after = mtimes(project)
    assert [name for name in after if after[name] != before[name]] == ["oldest/index.html"]
    assert "postponed" in (project / "posts/oldest/index.html").read_text(encoding="utf-8")

    style = project / "templates" / "posts" / "style.html"  # overrides an included one
    style.parent.mkdir(parents=True)
    builtin = (BUILTIN_TEMPLATES / "posts" / "style.html").read_text(encoding="utf-8")
    style.write_text(builtin.replace("</style>", ".local { }\n</style>"), encoding="utf-8")
    restyled = build()
    assert (restyled.rendered, restyled.written) == (4, 4)
    assert ".local" in (project / "posts/middle/index.html").read_text(encoding="utf-8")

    renamed = CONFIG.replace("name: Test Org", "name: Test Union")
    (project / "schedules.yaml").write_text(renamed, encoding="utf-8")
    config = load_config(project / "schedules.yaml")  # the organisation is on every page
    assert (build().rendered, build().rendered) == (4, 0)

    raced = project / "posts/newest/index.html"  # another build wrote an older page
    raced.write_text("<p>an older rendering</p>", encoding="utf-8")
    mended = build()
    assert (mended.rendered, mended.written) == (1, 1)
    assert ".local" in raced.read_text(encoding="utf-8")
    assert build().rendered == 0
