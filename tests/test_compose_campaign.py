"""compose_campaign end to end on a real store: numbered editions, idempotent slots, never
twice, archive pages and the CLI commands."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from publisher.config import PublisherConfig, load_config
from publisher.items import Item
from publisher.pipeline import compose_campaign, run_once
from publisher.store.editions import campaign_history, get_edition, list_editions
from publisher.store.items import upsert_items
from publisher.store.models import DeliveryRow, EditionItemRow, SubscriberRow
from tests.conftest import present
from tests.test_render_fixtures import fixture_items, item

CAMPAIGN = """
campaigns:
  - name: weekly
    title: The Weekly
    subject: "The Weekly #{{ edition.number }} — {{ edition.date | date }}"
    preheader: This week's news.
    lookback_days: 14
    sections:
      - {name: featured, type: featured, kinds: [resource], max: 1}
      - {name: posts, kinds: [article, action], max: 5, title: Latest posts}
      - {name: news, kinds: [news], max: 5, title: News}
      - name: join
        type: cta
        text: Join a steering committee.
        button_label: Join
        button_url: https://www.example.org/join
"""


def collect_as_dated(store, items: list[Item], now: datetime) -> None:
    """Store each item as if collected when it was published (first_seen = its date, or
    `now` for one dated later): how a store running for weeks holds them."""
    for one in items:
        upsert_items(store, [one], now=min(one.published, now))


@pytest.fixture
def config(make_config) -> PublisherConfig:
    return make_config(CAMPAIGN)


def test_composes_stores_and_archives_an_edition(config, store, fixed_now):
    collect_as_dated(store, fixture_items(), fixed_now)
    record = present(compose_campaign(config, store, "weekly", now=fixed_now))
    assert record is not None and record.created
    assert (record.number, record.item_count) == (1, 5)
    assert record.subject == "The Weekly #1 — 25 November 2026"
    stored = present(get_edition(store, record.id))
    assert stored.status == "composed" and stored.composed_at == fixed_now
    assert "%%UNSUBSCRIBE_URL%%" in stored.html and "%%UNSUBSCRIBE_URL%%" in stored.text
    with store.session() as session:
        rows = session.query(EditionItemRow).filter_by(edition_id=record.id).all()
        placed = sorted((r.section, r.position, r.item_id) for r in rows)
    assert placed[0] == ("featured", 0, "test:cba-toolkit")
    page = config.root / "archive" / "weekly" / "1.html"
    assert page.exists()
    index = (config.root / "archive" / "weekly" / "index.html").read_text()
    assert 'href="1.html"' in index and "The Weekly #1" in index


def test_the_archive_page_has_no_personal_links(config, store, fixed_now):
    collect_as_dated(store, fixture_items(), fixed_now)
    compose_campaign(config, store, "weekly", now=fixed_now)
    page = (config.root / "archive" / "weekly" / "1.html").read_text()
    assert "%%" not in page and "token=" not in page
    assert "/preferences" not in page and "/unsubscribe" not in page  # the public copy
    assert "Hello" not in page and "View this email" not in page
    assert 'href="https://www.example.org/news/subscribe"' in page


EDITION_FEED = """
feeds:
  feeds:
    - name: weekly-editions
      title: The Weekly, every edition
      description: Every edition of The Weekly.
      path: editions/weekly
      campaign: weekly
"""


def test_archive_pages_link_the_edition_feed(make_config, store, fixed_now):
    config = make_config(CAMPAIGN + EDITION_FEED)
    collect_as_dated(store, fixture_items(), fixed_now)
    compose_campaign(config, store, "weekly", now=fixed_now)
    feed = "https://www.example.org/news/feeds/editions/weekly"
    for page in ("1.html", "index.html"):
        head = (config.root / "archive" / "weekly" / page).read_text().split("</head>")[0]
        for extension, mime in (("rss", "rss+xml"), ("atom", "atom+xml"), ("json", "feed+json")):
            assert f'type="application/{mime}"' in head, page
            assert f'href="{feed}.{extension}"' in head, page


def test_same_slot_twice_returns_the_existing_edition(config, store, fixed_now):
    collect_as_dated(store, fixture_items(), fixed_now)
    first = present(compose_campaign(config, store, "weekly", now=fixed_now, slot=fixed_now))
    upsert_items(store, [item("late", days_ago=0.1)], now=fixed_now)
    again = present(
        compose_campaign(
            config, store, "weekly", now=fixed_now + timedelta(minutes=5), slot=fixed_now
        )
    )
    assert first.created and not again.created
    assert again.id == first.id and again.number == 1
    assert len(list_editions(store, "weekly")) == 1


def test_a_racing_second_insert_for_the_slot_finds_the_first(config, store, fixed_now):
    """Two processes both found no edition for the slot and both composed one: the unique
    (campaign, slot) constraint makes the loser return the winner's edition."""
    from publisher.store.editions import NewEdition, save_edition

    collect_as_dated(store, fixture_items(), fixed_now)
    first = present(compose_campaign(config, store, "weekly", now=fixed_now, slot=fixed_now))
    loser = NewEdition("weekly", 2, fixed_now, fixed_now, "s", "", "<html>", "t", [])
    stored, created = save_edition(store, loser)
    assert not created and stored.id == first.id


def test_never_twice_and_the_window_moves_on(config, store, fixed_now):
    collect_as_dated(store, fixture_items(), fixed_now)
    first = present(compose_campaign(config, store, "weekly", now=fixed_now))
    # twelve hours later: only the resource the featured section had no room for
    leftover = present(
        compose_campaign(config, store, "weekly", now=fixed_now + timedelta(hours=12))
    )
    assert (leftover.number, leftover.item_count) == (2, 1)
    # nothing new six hours after that: skip_if_empty gives no edition
    assert compose_campaign(config, store, "weekly", now=fixed_now + timedelta(hours=18)) is None
    later = fixed_now + timedelta(days=7)
    upsert_items(store, [item("next-week", days_ago=-3, kind="news")], now=later)
    second = present(compose_campaign(config, store, "weekly", now=later))
    # the item dated tomorrow and the new one; none of the earlier editions' items again
    assert (second.number, second.item_count) == (3, 2)
    history = campaign_history(store, "weekly")
    assert history.previous_at == later and history.next_number == 4
    assert len(history.carried) == first.item_count + 1 + 2
    index = (config.root / "archive" / "weekly" / "index.html").read_text()
    assert (
        index.index('href="3.html"') < index.index('href="2.html"') < index.index('href="1.html"')
    )


def test_list_editions_counts_items_and_sent_deliveries(config, store, fixed_now):
    collect_as_dated(store, fixture_items(), fixed_now)
    record = present(compose_campaign(config, store, "weekly", now=fixed_now))
    with store.session() as session:
        for n, status in enumerate(["sent", "sent", "failed", "pending"]):
            sub = SubscriberRow(
                email=f"r{n}@example.org",
                topics=[],
                token=f"tok{n}",
                created_at=fixed_now,
                updated_at=fixed_now,
            )
            session.add(sub)
            session.flush()
            session.add(
                DeliveryRow(
                    edition_id=record.id, subscriber_id=sub.id, status=status, updated_at=fixed_now
                )
            )
    (summary,) = list_editions(store)
    assert (summary.item_count, summary.recipients) == (5, 2)


def test_run_once_composes_every_campaign(config, store, fixed_now):
    collect_as_dated(store, fixture_items(), fixed_now)
    report = run_once(config, store, now=fixed_now)
    assert "weekly: edition 1 composed, 5 items" in report.notes


# --- CLI --------------------------------------------------------------------------------


def run_cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "publisher.cli", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "PUBLISHER_DATABASE_URL": f"sqlite:///{project}/p.db",
            "COLUMNS": "200",
        },
    )


@pytest.mark.slow  # starts the real `publisher` command
def test_cli_preview_editions_and_check(config, fixed_now):
    project = config.root
    from publisher.store import open_store

    store = open_store(f"sqlite:///{project}/p.db")
    collect_as_dated(store, fixture_items(), fixed_now)
    store.close()
    result = run_cli(project, "preview", "weekly", "--at", "2026-11-25T07:00")
    assert result.returncode == 0, result.stderr
    for suffix in (".html", ".txt", ".eml"):
        assert (project / "preview" / f"weekly{suffix}").exists()
        assert f"weekly{suffix}" in result.stdout
    assert "Cba toolkit" in result.stdout
    message = message_from_bytes(
        (project / "preview" / "weekly.eml").read_bytes(), policy=policy.default
    )
    assert message["Subject"] == "The Weekly #1 — 25 November 2026"
    assert message.get_body(("plain",)) and message.get_body(("html",))
    assert "token=preview" in present(message.get_body(("html",))).get_content()
    # the headers a real send carries, so the preview shows what clients will see
    assert message["List-Unsubscribe"].startswith("<https://www.example.org/news/unsubscribe?")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] and message["Message-ID"] and message["Date"]
    # preview stores nothing
    listing = run_cli(project, "editions")
    assert listing.returncode == 0 and "0 edition(s)" in listing.stdout
    assert run_cli(project, "check").returncode == 0


@pytest.mark.slow  # starts the real `publisher` command
def test_check_rejects_an_unknown_mjml_element_in_a_template(config):
    project = config.root
    (project / "templates" / "sections").mkdir(parents=True)
    (project / "templates" / "sections" / "cta.mjml").write_text(
        "<mj-section>\n  <mj-column>\n    <mj-txt>{{ section.text }}</mj-txt>\n"
        "  </mj-column>\n</mj-section>\n",
        encoding="utf-8",
    )
    result = run_cli(project, "check")
    assert result.returncode == 2
    assert "cta.mjml: line 3: unknown MJML element <mj-txt>" in result.stderr


def test_load_config_keeps_sample_campaign_valid():
    from tests.conftest import ROOT

    config = load_config(ROOT / "schedules.yaml")
    assert any(c.name == "economic-justice-weekly" for c in config.campaigns)


def test_edition_items_in_reading_order(config, store, fixed_now):
    from publisher.store.editions import edition_item_list

    collect_as_dated(store, fixture_items(), fixed_now)
    record = present(compose_campaign(config, store, "weekly", now=fixed_now))
    placed = [(section, i.id) for section, i in edition_item_list(store, record.id)]
    assert [s for s, _ in placed] == ["featured", "posts", "posts", "news", "news"]
    assert placed[0] == ("featured", "test:cba-toolkit")
