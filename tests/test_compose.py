"""Selection rules of compose_edition: window, never twice, sections, featured, skipping."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from publisher.compose.edition import CampaignHistory, compose_edition
from publisher.config import CampaignConfig, load_config
from publisher.errors import ConfigError
from tests.conftest import ROOT, present
from tests.test_render_fixtures import fixture_items, item, sample_campaign


def campaign(**overrides) -> CampaignConfig:
    data = {
        "name": "weekly",
        "title": "Weekly",
        "subject": "Weekly",
        "lookback_days": 14,
        "sections": [
            {"name": "featured", "type": "featured", "kinds": ["resource"], "max": 1},
            {"name": "posts", "kinds": ["article", "action"], "max": 5},
            {"name": "news", "kinds": ["news"], "max": 5},
            {
                "name": "join",
                "type": "cta",
                "text": "Join us",
                "button_label": "Join",
                "button_url": "https://www.example.org/join",
            },
        ],
    }
    data.update(overrides)
    return CampaignConfig.model_validate(data)


def ids(edition, section: str) -> list[str]:
    found = next(s for s in edition.sections if s.name == section)
    return [i.id.removeprefix("test:") for i in found.items]


def test_first_edition_takes_the_lookback_window_newest_first(fixed_now):
    edition = present(
        compose_edition(fixture_items(), campaign(), now=fixed_now, history=CampaignHistory())
    )
    assert edition.number == 1
    assert edition.since == fixed_now - timedelta(days=14)
    # the newest resource is featured; the older one is not repeated in another section
    assert ids(edition, "featured") == ["cba-toolkit"]
    assert ids(edition, "posts") == ["sign-on-letter", "wages-and-benefits"]
    # 40 days old: outside the window; tomorrow: after `now`
    assert ids(edition, "news") == ["recap", "fair-workweek"]
    assert [s.name for s in edition.sections] == ["featured", "posts", "news", "join"]


def test_an_item_dated_before_the_previous_edition_still_enters_the_next(fixed_now):
    # Selection is by what the campaign has not sent: an item dated before the previous
    # edition that no edition carried (it arrived late) is in the next one, within the
    # lookback; the edition still says it covers the time since the previous edition.
    history = CampaignHistory(
        previous_at=fixed_now - timedelta(days=6.5),
        carried=frozenset({"test:sign-on-letter"}),
        next_number=4,
    )
    edition = present(compose_edition(fixture_items(), campaign(), now=fixed_now, history=history))
    assert edition.number == 4
    assert edition.since == fixed_now - timedelta(days=6.5)
    assert ids(edition, "posts") == ["wages-and-benefits"]  # dated 11.5 days ago, never sent


def test_an_item_carried_before_is_never_selected_again(fixed_now):
    # even when the window would include it (a late edit re-dated it, or a longer lookback)
    history = CampaignHistory(carried=frozenset({"test:cba-toolkit", "test:recap"}))
    edition = present(compose_edition(fixture_items(), campaign(), now=fixed_now, history=history))
    assert ids(edition, "featured") == ["older-guide"]
    assert ids(edition, "news") == ["fair-workweek"]
    assert "test:recap" not in {i.id for i in edition.items}


def test_section_limits_and_no_item_in_two_sections(fixed_now):
    items = [item(f"post-{n}", days_ago=n / 10) for n in range(10)]
    config = campaign(
        sections=[
            {"name": "top", "kinds": ["article"], "max": 3},
            {"name": "rest", "kinds": ["article"], "max": 4},
        ]
    )
    edition = present(compose_edition(items, config, now=fixed_now, history=CampaignHistory()))
    assert ids(edition, "top") == ["post-0", "post-1", "post-2"]
    assert ids(edition, "rest") == ["post-3", "post-4", "post-5", "post-6"]


def test_topic_filter(fixed_now):
    config = campaign(sections=[{"name": "labor", "topics": ["labor"], "max": 5}])
    edition = present(
        compose_edition(fixture_items(), config, now=fixed_now, history=CampaignHistory())
    )
    assert ids(edition, "labor") == ["recap"]


def test_skip_if_empty_gives_no_edition(fixed_now):
    everything = frozenset(i.id for i in fixture_items())
    history = CampaignHistory(carried=everything, previous_at=fixed_now - timedelta(days=1))
    assert compose_edition(fixture_items(), campaign(), now=fixed_now, history=history) is None


def test_without_skip_if_empty_an_edition_with_only_the_cta(fixed_now):
    edition = present(
        compose_edition([], campaign(skip_if_empty=False), now=fixed_now, history=CampaignHistory())
    )
    assert edition is not None and edition.items == []
    assert [s.name for s in edition.sections if s.type == "cta"] == ["join"]


def test_compose_is_pure(fixed_now):
    items = fixture_items()
    first = compose_edition(items, campaign(), now=fixed_now, history=CampaignHistory())
    second = compose_edition(
        list(reversed(items)), campaign(), now=fixed_now, history=CampaignHistory()
    )
    assert first == second


def test_sample_campaign_sections_in_order():
    config = sample_campaign()
    assert [s.type for s in config.sections] == ["featured", "list", "list", "cta"]
    assert "{{ edition.date | date }}" in config.subject


def test_unknown_campaign_names_the_known_ones_and_suggests_one():
    config = load_config(ROOT / "schedules.yaml")
    with pytest.raises(ConfigError, match="unknown campaign 'nope'.*economic-justice-weekly"):
        config.campaign("nope")
    with pytest.raises(ConfigError, match="did you mean 'economic-justice-weekly'"):
        config.campaign("economic-justice-weekli")
    assert config.campaign("economic-justice-weekly").name == "economic-justice-weekly"


def test_items_an_email_cannot_link_to_are_left_out_and_reported(fixed_now):
    http_item = dataclasses.replace(item("plain", days_ago=1), url="http://partner.example/x")
    http_image = dataclasses.replace(
        item("img", days_ago=1), image="http://partner.example/i.png", image_alt="alt"
    )
    edition = present(
        compose_edition(
            [http_item, http_image], campaign(), now=fixed_now, history=CampaignHistory()
        )
    )
    assert [i.id for i in edition.items] == [http_image.id]
    assert edition.items[0].image is None
    assert [(i.id, "not https" in why) for i, why in edition.left_out] == [(http_item.id, True)]


def test_every_item_not_chosen_is_left_out_with_its_reason(fixed_now):
    retired = item("withdrawn", days_ago=1)
    history = CampaignHistory(carried=frozenset({"test:sign-on-letter"}))
    config = campaign(audience=["economic-justice", "labor"])
    items = [*fixture_items(), item("gardens", days_ago=1, topics=("gardens",))]
    edition = present(
        compose_edition(items, config, now=fixed_now, history=history, retired=[(retired, "why")])
    )
    reasons = {i.id.removeprefix("test:"): why for i, why in edition.left_out}
    assert reasons == {
        "withdrawn": "retired: why",
        "older-guide": "over the max of section 'featured' (1)",
        "ancient-news": "older than the lookback (14 days)",
        "tomorrow": "held until its date, 2026-11-26 12:00 UTC",
        "gardens": "not in the audience's topics (economic-justice, labor)",
    }  # sign-on-letter went out before: not reported


def test_the_lookback_counts_from_when_an_item_was_first_seen(fixed_now):
    # dated 40 days ago, first collected two days ago: still new; seen 20 days ago: too old
    late = dataclasses.replace(item("late", days_ago=40), first_seen=fixed_now - timedelta(days=2))
    stale = dataclasses.replace(
        item("stale", days_ago=40), first_seen=fixed_now - timedelta(days=20)
    )
    edition = present(
        compose_edition([late, stale], campaign(), now=fixed_now, history=CampaignHistory())
    )
    assert [i.id for i in edition.items] == [late.id]
    assert [(i.id, why) for i, why in edition.left_out] == [
        (stale.id, "older than the lookback (14 days)")
    ]
