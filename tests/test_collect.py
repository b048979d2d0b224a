"""Collection into the store: idempotent, edits detected, hostile HTML neutralised."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from publisher.config import load_config
from publisher.sources.collect import collect_all
from publisher.store.items import list_items
from publisher.store.models import ItemRow
from publisher.store.sink import StoreSink
from publisher.support.sanitize import sanitize_html

ROOT = Path(__file__).resolve().parent.parent

ITEM = """\
---
title: {title}
date: 2026-11-20T10:00:00Z
topics: [labor]
---

{body}
"""


def write_item(project, name="a", title="Original", body="Body text."):
    (project / "content" / f"{name}.md").write_text(
        ITEM.format(title=title, body=body), encoding="utf-8"
    )


def config_for(make_config):
    return make_config("sources:\n  - {name: posts, type: markdown, path: content}\n")


def test_recollection_without_changes_writes_nothing(project, make_config, store, fixed_now):
    write_item(project, "a")
    write_item(project, "b", title="Other")
    config = config_for(make_config)
    first = collect_all(config, StoreSink(store), now=fixed_now)
    assert (first.inserted, first.updated) == (2, 0)
    with store.session() as session:
        before = {r.id: r.last_changed for r in session.scalars(select(ItemRow))}
    second = collect_all(config, StoreSink(store), now=fixed_now.replace(hour=13))
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 2)
    with store.session() as session:
        after = {r.id: r.last_changed for r in session.scalars(select(ItemRow))}
    assert before == after


def test_edited_item_is_updated_not_duplicated(project, make_config, store, fixed_now):
    write_item(project, "a")
    config = config_for(make_config)
    collect_all(config, StoreSink(store), now=fixed_now)
    write_item(project, "a", title="Edited title")
    report = collect_all(config, StoreSink(store), now=fixed_now)
    assert (report.inserted, report.updated) == (0, 1)
    items = list_items(store)
    assert [(i.id, i.title) for i in items] == [("posts:a", "Edited title")]


def test_hostile_html_is_sanitised(project, make_config, store, fixed_now):
    write_item(
        project,
        "evil",
        body=(
            '<script>alert(1)</script><img src="x.png" onerror="alert(2)">'
            '<a href="javascript:alert(3)">click</a> <a href="/ok">ok</a>'
            '<p style="color:red" onclick="x()">text</p><iframe src="https://e.vil"></iframe>'
        ),
    )
    collect_all(config_for(make_config), StoreSink(store), now=fixed_now)
    [item] = list_items(store)
    html = item.body_html
    for bad in ("<script", "alert(1)", "onerror", "javascript:", "onclick", "<iframe", "style="):
        assert bad not in html
    assert 'href="https://www.example.org/ok"' in html
    assert 'src="https://www.example.org/evil/x.png"' in html


def test_sanitiser_removes_control_characters():
    assert sanitize_html("<p>a\x00b\x07c</p>") == "<p>abc</p>"


def test_list_items_filters_newest_first(project, make_config, store, fixed_now):
    (project / "content" / "x.md").write_text(
        "---\ntitle: X\ndate: 2026-11-01\nkind: news\ntopics: [a]\n---\n", encoding="utf-8"
    )
    (project / "content" / "y.md").write_text(
        "---\ntitle: Y\ndate: 2026-11-02\nkind: article\ntopics: [a, b]\n---\n", encoding="utf-8"
    )
    collect_all(config_for(make_config), StoreSink(store), now=fixed_now)
    assert [i.title for i in list_items(store)] == ["Y", "X"]
    assert [i.title for i in list_items(store, topic="b")] == ["Y"]
    assert [i.title for i in list_items(store, kind="news")] == ["X"]


def test_sample_content_collects_without_problems(store, fixed_now):
    config = load_config(ROOT / "schedules.yaml")
    report = collect_all(config, StoreSink(store), now=fixed_now)
    assert report.problems == []
    assert 10 <= report.inserted <= 15
    kinds = {i.kind for i in list_items(store)}
    assert kinds == {"article", "resource", "news", "action", "event"}
