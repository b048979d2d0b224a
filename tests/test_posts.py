"""Posts written in /admin (issue 20): the store's saves, revisions, restores and refused
stale saves (SQLite and PostgreSQL); the newsroom source's items; publish_posts turning
posts into items at once (scheduled ones at their date); the reserved source name."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from publisher.config import MarkdownSourceConfig, load_config
from publisher.errors import ConfigError
from publisher.items import NEWSROOM
from publisher.pipeline import publish_posts, refresh_inputs
from publisher.sources.markdown import MarkdownSource
from publisher.sources.newsroom import item_id, post_item, post_url, preview_html
from publisher.store import posts
from publisher.store.items import list_items, retire_item, selection_items
from tests.conftest import FIXED_NOW, write_config

EDITOR, OTHER = "edu@example.org", "olga@example.org"
BODY = (
    "## Strike news\n\nThe nurses *won*. [Read the deal](https://example.org/deal).\n\n"
    "<script>alert('x')</script>\n\n<img src=https://example.org/x.png onerror=alert(1)>\n"
)


def fields(**changes: object) -> posts.PostFields:
    base = posts.PostFields(
        title="Nurses win their strike", body=BODY, kind="news", topics=("labor",),
        date=FIXED_NOW - timedelta(hours=1), author=EDITOR,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def test_save_keeps_revisions_and_restores(store):
    post = posts.create_post(store, fields(), status="draft", by=EDITOR, now=FIXED_NOW)
    assert (post.version, post.slug, post.status) == (1, "nurses-win-their-strike", "draft")
    later = FIXED_NOW + timedelta(minutes=5)
    fixed = posts.save_post(
        store, post.id, fields(title="Nurses win the strike"), version=1, status="published",
        by=OTHER, now=later,
    )  # fmt: skip
    assert (fixed.version, fixed.status, fixed.updated_by) == (2, "published", OTHER)
    assert fixed.slug == "nurses-win-the-strike"
    revisions = posts.post_revisions(store, post.id)
    assert [(r.version, r.saved_by, r.status) for r in revisions] == [
        (2, OTHER, "published"),
        (1, EDITOR, "draft"),
    ]
    assert revisions[1].fields.title == "Nurses win their strike"
    assert revisions[1].fields.date == FIXED_NOW - timedelta(hours=1)
    restored = posts.restore_revision(
        store, post.id, revisions[1].id, version=2, by=EDITOR, now=later
    )
    assert (restored.version, restored.fields.title, restored.status) == (
        3, "Nurses win their strike", "draft",
    )  # fmt: skip
    assert posts.post_revisions(store, post.id)[0].note == "restored version 1"
    assert posts.get_post(store, post.id) == restored


def test_a_stale_save_is_refused_with_the_current_post(store):
    post = posts.create_post(store, fields(), by=EDITOR, now=FIXED_NOW)
    theirs = posts.save_post(store, post.id, fields(body="Their fix."), version=1, by=OTHER,
                             now=FIXED_NOW)  # fmt: skip
    with pytest.raises(posts.PostConflict) as refused:
        posts.save_post(store, post.id, fields(body="Mine."), version=1, by=EDITOR, now=FIXED_NOW)
    assert refused.value.current == theirs
    assert refused.value.started_from == 1
    assert posts.get_post(store, post.id).fields.body == "Their fix."
    assert len(posts.post_revisions(store, post.id)) == 2  # the refused save left none


def test_of_two_saves_racing_from_one_version_one_wins(store):
    post = posts.create_post(store, fields(), by=EDITOR, now=FIXED_NOW)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def save(who: str) -> None:
        start.wait()
        try:
            posts.save_post(store, post.id, fields(body=who), version=1, by=who, now=FIXED_NOW)
            outcomes.append("saved")
        except posts.PostConflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=save, args=(who,)) for who in (EDITOR, OTHER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "saved"]
    current = posts.get_post(store, post.id)
    assert current.version == 2 and current.fields.body == current.updated_by
    assert len(posts.post_revisions(store, post.id)) == 2


def test_slugs_are_unique_and_values_checked(store):
    first = posts.create_post(store, fields(), by=EDITOR, now=FIXED_NOW)
    second = posts.create_post(store, fields(), by=EDITOR, now=FIXED_NOW)
    third = posts.create_post(store, fields(slug="My Own Address!"), by=EDITOR, now=FIXED_NOW)
    assert [first.slug, second.slug, third.slug] == [
        "nurses-win-their-strike", "nurses-win-their-strike-2", "my-own-address",
    ]  # fmt: skip
    with pytest.raises(posts.PostInvalid, match="alt"):
        posts.create_post(store, fields(image="https://example.org/a.jpg"), by=EDITOR,
                          now=FIXED_NOW)  # fmt: skip
    with pytest.raises(posts.PostInvalid, match="status"):
        posts.create_post(store, fields(), status="live", by=EDITOR, now=FIXED_NOW)
    with pytest.raises(posts.PostNotFound):
        posts.get_post(store, 9999)
    assert [p.id for p in posts.list_posts(store, status="draft")] == [third.id, second.id,
                                                                       first.id]  # fmt: skip


def test_post_item_fields_and_url_rule(project):
    public = "https://www.example.org/news/"
    assert post_url(public, "a-b") == "https://www.example.org/news/posts/a-b"
    item = post_item(
        post_id=7, slug="nurses", title="Nurses", body=BODY, published=FIXED_NOW,
        public_url=public, topics=["Labor", "Workers' Rights"], author=EDITOR,
        image="https://example.org/a.jpg", image_alt="Nurses on the picket line", kind="news",
    )  # fmt: skip
    assert (item.id, item.source, item.url) == (
        "newsroom:7", NEWSROOM, "https://www.example.org/news/posts/nurses",
    )  # fmt: skip
    assert item.topics == ("labor", "workers-rights")
    assert (item.image, item.image_alt, item.author) == (
        "https://example.org/a.jpg", "Nurses on the picket line", EDITOR,
    )  # fmt: skip
    assert "<script" not in item.body_html and "alert" not in item.body_html
    assert "onerror" not in item.body_html
    assert "<em>won</em>" in item.body_html
    assert item.summary.startswith("Strike news The nurses won.")
    elsewhere = post_item(
        post_id=7, slug="nurses", title="Nurses", body=BODY, published=FIXED_NOW,
        public_url=public, external_url="https://union.example.org/strike", summary="Given.",
    )  # fmt: skip
    assert (elsewhere.url, elsewhere.summary) == ("https://union.example.org/strike", "Given.")
    # the same renderer and sanitiser as a Markdown file with the same text
    (project / "content" / "nurses.md").write_text(
        f"---\ntitle: Nurses\ndate: 2026-11-24\n---\n{BODY}", encoding="utf-8"
    )
    config = load_config(write_config(project, "sources:\n  - {name: md, type: markdown, "
                                               "path: content}\n"))  # fmt: skip
    source = config.sources[0]
    assert isinstance(source, MarkdownSourceConfig)
    from_file = MarkdownSource(source, config).read_file(project / "content/nurses.md")
    assert from_file is not None and from_file.body_html == item.body_html
    assert preview_html(BODY, public, "nurses") == item.body_html


def test_publish_posts_at_once_and_at_the_date(store, make_config):
    config = make_config()
    now = FIXED_NOW
    live = posts.create_post(store, fields(), status="published", by=EDITOR, now=now)
    later = posts.create_post(
        store, fields(title="Rally on Friday", date=now + timedelta(days=2)), status="scheduled",
        by=EDITOR, now=now,
    )  # fmt: skip
    draft = posts.create_post(store, fields(title="Not yet"), by=EDITOR, now=now)
    publish_posts(config, store, now=now)
    assert {i.id for i in list_items(store)} == {item_id(live.id)}
    (stored,) = list_items(store)
    assert stored.url == "https://www.example.org/news/posts/nurses-win-their-strike"
    # the daemon's and run's collect (refresh_inputs) publishes what has come due
    refresh_inputs(config, store, now=now + timedelta(days=2, minutes=1))
    assert {i.id for i in list_items(store)} == {item_id(live.id), item_id(later.id)}
    assert posts.get_post(store, later.id).status == "published"
    assert item_id(draft.id) not in {i.id for i in list_items(store)}


def test_unpublish_and_retire_retire_the_item_and_publishing_brings_it_back(store, make_config):
    config, now = make_config(), FIXED_NOW
    post = posts.create_post(store, fields(), status="published", by=EDITOR, now=now)
    publish_posts(config, store, now=now)
    for status in ("draft", "retired"):
        current = posts.get_post(store, post.id)
        posts.set_post_status(store, post.id, status, version=current.version, by=EDITOR, now=now)
        publish_posts(config, store, now=now)
        assert list_items(store) == []
        _, retired = selection_items(store, seen_since=now - timedelta(days=30))
        assert [(i.id, why) for i, why in retired] == [(item_id(post.id), "the post is draft")]
    current = posts.get_post(store, post.id)
    posts.save_post(store, post.id, fields(body="Back."), version=current.version,
                    status="published", by=EDITOR, now=now)  # fmt: skip
    publish_posts(config, store, now=now)
    (back,) = list_items(store)
    assert back.body_html == "<p>Back.</p>\n"
    # moving the date into the future takes it out until then
    current = posts.get_post(store, post.id)
    posts.save_post(store, post.id, fields(date=now + timedelta(days=1)),
                    version=current.version, status="scheduled", by=EDITOR, now=now)  # fmt: skip
    publish_posts(config, store, now=now)
    assert list_items(store) == []


def test_an_item_retired_by_hand_stays_retired(store, make_config):
    config, now = make_config(), FIXED_NOW
    post = posts.create_post(store, fields(), status="published", by=EDITOR, now=now)
    publish_posts(config, store, now=now)
    retire_item(store, item_id(post.id), now=now)
    publish_posts(config, store, now=now + timedelta(minutes=1))
    assert list_items(store) == []


def test_no_configured_source_may_be_named_newsroom(project):
    path = write_config(project, "sources:\n  - {name: newsroom, type: markdown, path: c}\n")
    with pytest.raises(ConfigError, match="no source may be named 'newsroom'"):
        load_config(path)


def test_publisher_collect_publishes_the_posts_that_came_due(
    project, make_config, store, database_url
):
    from typer.testing import CliRunner

    from publisher.cli import app

    make_config()
    due = posts.create_post(
        store, fields(title="Rally on Friday", date=FIXED_NOW + timedelta(hours=1)),
        status="scheduled", by=EDITOR, now=FIXED_NOW,
    )  # fmt: skip
    env = {
        "PUBLISHER_DATABASE_URL": database_url,
        "PUBLISHER_NOW": (FIXED_NOW + timedelta(hours=2)).isoformat(),
    }
    args = ["--config", str(project / "schedules.yaml"), "collect"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert posts.get_post(store, due.id).status == "published"
    assert item_id(due.id) in {i.id for i in list_items(store)}
    assert (project / "posts" / "rally-on-friday" / "index.html").is_file()
