"""Hostile input at the seams that are not a source: bounded YAML/JSON, items an email
cannot carry, the feed builder's state, the atomic writer, and the store file's mode."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from publisher.compose.edition import CampaignHistory, compose_edition
from publisher.errors import TemplateError
from publisher.pipeline import build_feeds
from publisher.render.email import MAX_BYTES, render_fitting
from publisher.store import open_store
from publisher.store.feeds_queries import StoredBuildState
from publisher.store.items import ItemNotFound, list_items, retire_item, upsert_items
from publisher.store.sink import StoreSink
from publisher.support.bounded import LimitError, load_json, load_yaml
from publisher.support.files import write_atomic
from tests.conftest import present
from tests.servers.data import add_edition, add_subscribers, config_text
from tests.test_render_fixtures import fixture_items, item, sample_campaign, sample_config

BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (BOMB, "expands to more than"),  # 9**9 values once expanded, from 400 bytes
        ("x: " + "[" * 20_000 + "]" * 20_000, "nested more than"),
    ],
)
def test_yaml_bombs_and_deep_nesting_are_refused_fast(text, why):
    started = time.process_time()  # CPU time: other processes' load aside
    with pytest.raises(LimitError, match=why):
        load_yaml(text)
    assert time.process_time() - started < 10  # a hang guard: the bounds make it milliseconds


def test_ordinary_yaml_and_json_still_load():
    assert load_yaml("title: T\ntopics: [a, b]\nx: &x 1\ny: *x\n") == {
        "title": "T",
        "topics": ["a", "b"],
        "x": 1,
        "y": 1,
    }
    assert load_json('{"items": [[1, [2]]]}') == {"items": [[1, [2]]]}
    with pytest.raises(LimitError):
        load_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(LimitError):
        load_json("[" * 40 + "]" * 40)  # parses, but deeper than any feed or export needs


# --- items an email cannot carry -----------------------------------------------------------


def test_an_item_that_cannot_be_rendered_is_left_out_and_the_edition_goes_out(fixed_now):
    # Stored by an older version before collection removed control characters.
    broken = item("broken", days_ago=0.2, title="Broken\x01title\x0b", kind="article")
    config = sample_config()
    edition = present(
        compose_edition(
            [*fixture_items(), broken],
            sample_campaign(config),
            now=fixed_now,
            history=CampaignHistory(),
        )
    )
    kept, rendered = render_fitting(
        edition, config.organisation, web_url="https://www.example.org/news/archive/x/1.html"
    )
    assert broken.id not in [i.id for i in kept.items]
    assert {i.id for i in kept.items} == {i.id for i in edition.items} - {broken.id}
    [(left, reason)] = [entry for entry in kept.left_out if entry[0].id == broken.id]
    assert "cannot be rendered" in reason and "MJML" in reason
    assert "Broken" not in rendered.html and kept.placements()  # what gets stored


def test_items_that_make_the_email_too_large_are_left_out(fixed_now):
    config = sample_config()
    campaign = sample_campaign(config)
    sections = [s.model_copy(update={"max": 300}) for s in campaign.sections]
    campaign = campaign.model_copy(update={"sections": sections})
    many = [
        item(f"long-{n}", days_ago=0.01 * (n + 1), summary="word " * 80, kind="article")
        for n in range(250)
    ]
    edition = present(compose_edition(many, campaign, now=fixed_now, history=CampaignHistory()))
    kept, rendered = render_fitting(edition, config.organisation, web_url="https://e.org/1")
    assert rendered.size <= MAX_BYTES
    assert 0 < len(kept.left_out) < len(many)
    assert len(kept.items) + len(kept.left_out) == len(edition.items)
    assert all("larger than 102 KB" in reason for _, reason in kept.left_out)


def test_a_template_error_is_not_blamed_on_items(fixed_now, tmp_path):
    (tmp_path / "digest.mjml").write_text("<mjml><mj-body><mj-nonsense/></mj-body></mjml>")
    config = sample_config()
    edition = present(
        compose_edition(
            fixture_items(), sample_campaign(config), now=fixed_now, history=CampaignHistory()
        )
    )
    from publisher.render.environment import BUILTIN_TEMPLATES

    with pytest.raises(TemplateError):
        render_fitting(
            edition,
            config.organisation,
            web_url="https://e.org/1",
            search_path=(tmp_path, BUILTIN_TEMPLATES),
        )


# --- the feed builder's state ---------------------------------------------------------------


FEEDS = """\
feeds:
  feeds:
    - {name: everything, title: All, description: All, path: everything, everything: true}
"""


def test_feed_state_lives_in_the_store_and_is_never_trusted_as_a_path(
    make_config, project, store, fixed_now
):
    config = make_config(FEEDS)
    upsert_items(store, fixture_items(), now=fixed_now)
    outside = project / "precious.rss"
    outside.write_text("keep me")
    legacy = project / "feeds" / ".publisher-feeds-state.json"
    legacy.parent.mkdir(exist_ok=True)
    legacy.write_text(json.dumps({"documents": {"../precious.{ext}": "x"}}))
    build_feeds(config, store, now=fixed_now)
    assert not legacy.exists() and outside.read_text() == "keep me"  # removed, not obeyed
    assert sorted(p.name for p in (project / "feeds").iterdir()) == [
        "alternate-links.html", "everything.atom", "everything.json", "everything.rss",
        "feed.xsl", "index.html", "index.opml",
    ]  # fmt: skip
    state = StoredBuildState(store, now=fixed_now)
    memory = state.load()
    assert set(memory["documents"]) == {"everything.{ext}"}
    # Someone edits the stored state: paths outside feeds/, absolute ones, odd types.
    memory["documents"].update(
        {"../precious.{ext}": "x", "/etc/passwd.{ext}": "x", "a/../../precious.{ext}": "x"}
    )
    memory["empty_since"] = {"everything": ["not", "a", "date"]}
    state.save(memory)
    upsert_items(store, [item("one-more", days_ago=0.1)], now=fixed_now)
    report = build_feeds(config, store, now=fixed_now)
    assert outside.read_text() == "keep me" and report.removed == 0
    assert (project / "feeds" / "everything.rss").is_file()


# --- the atomic writer ------------------------------------------------------------------------


def test_atomic_writer_uses_unpredictable_names_and_skips_equal_bytes(tmp_path):
    target = tmp_path / "out" / "1.eml"
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    target.parent.mkdir()
    # The name the outbox used to write through: a symlink planted there is not followed.
    (target.parent / ".1.eml.tmp").symlink_to(victim)
    assert write_atomic(target, b"first", mode=0o600) is True
    assert victim.read_text() == "untouched" and target.read_bytes() == b"first"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    os.utime(target, (1_600_000_000, 1_600_000_000))
    assert write_atomic(target, b"first") is False  # same bytes: not rewritten
    assert target.stat().st_mtime == 1_600_000_000
    assert write_atomic(target, b"second") is True and target.read_bytes() == b"second"
    leftovers = [p.name for p in target.parent.iterdir() if p.name not in ("1.eml", ".1.eml.tmp")]
    assert leftovers == []


def test_outbox_writes_through_the_atomic_writer(store, make_config, project, fixed_now):
    from publisher.deliver import deliver_edition

    config = make_config(config_text("file"))
    add_subscribers(store, fixed_now, 1)
    edition = add_edition(store, fixed_now)
    folder = project / "outbox" / "weekly" / "1"
    folder.mkdir(parents=True)
    victim = project / "victim"
    victim.write_text("untouched")
    for n in range(1, 4):
        (folder / f".{n}.eml.tmp").symlink_to(victim)
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert report.sent == 1 and victim.read_text() == "untouched"
    [message] = folder.glob("*.eml")
    assert stat.S_IMODE(message.stat().st_mode) == 0o600  # addresses and tokens inside


# --- the store ---------------------------------------------------------------------------------


def test_the_sqlite_file_is_created_readable_by_its_owner_only(tmp_path, fixed_now):
    path = tmp_path / "var" / "publisher.db"
    store = open_store(f"sqlite:///{path}")
    try:
        upsert_items(store, fixture_items()[:1], now=fixed_now)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            if side.exists():
                assert stat.S_IMODE(side.stat().st_mode) == 0o600, side
        with pytest.raises(ItemNotFound, match="no item 'nope'"):
            retire_item(store, "nope", now=fixed_now)
    finally:
        store.close()


def test_a_crashing_source_is_reported_and_the_others_collected(
    make_config, project, store, fixed_now, monkeypatch
):
    import publisher.sources.collect
    from publisher.sources import build_sources

    (project / "content" / "a.md").write_text("---\ntitle: A\ndate: 2026-11-20\n---\nbody\n")
    config = make_config("sources:\n  - {name: posts, type: markdown, path: content}\n")

    class Exploding:
        name = "exploding"

        def target(self, memory):
            return None  # local

        def collect(self, ctx):
            raise RecursionError("something nobody anticipated")

    monkeypatch.setattr(
        publisher.sources.collect, "build_sources", lambda cfg: [Exploding(), *build_sources(cfg)]
    )
    report = publisher.sources.collect.collect_all(config, StoreSink(store), now=fixed_now)
    [problem] = report.problems
    assert problem.source == "exploding" and "RecursionError" in problem.reason
    assert [i.id for i in list_items(store)] == ["posts:a"]


def test_two_files_with_one_id_keep_the_first_and_report_the_second(
    make_config, project, store, fixed_now
):
    for name in ("a.md", "b.md"):
        (project / "content" / name).write_text(
            f"---\nid: same\ntitle: {name}\ndate: 2026-11-20\n---\nbody\n", encoding="utf-8"
        )
    config = make_config("sources:\n  - {name: posts, type: markdown, path: content}\n")
    from publisher.sources.collect import collect_all

    report = collect_all(config, StoreSink(store), now=fixed_now)
    assert [(i.id, i.title) for i in list_items(store)] == [("same", "a.md")]
    [problem] = report.problems
    assert problem.where == "b.md" and "duplicate id 'same' (also a.md)" in problem.reason
