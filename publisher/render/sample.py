"""Sample data for `publisher check` and the benchmark: items that fill every section."""

from __future__ import annotations

from datetime import datetime, timedelta

from publisher.compose.edition import CampaignHistory, Edition, compose_edition
from publisher.config import CampaignConfig
from publisher.items import Item


def sample_items(campaign: CampaignConfig, *, now: datetime, per_section: int = 3) -> list[Item]:
    """Enough fresh items to fill each section (up to `per_section`), all within the window."""
    items: list[Item] = []
    for s_index, section in enumerate(campaign.sections):
        if section.type == "cta":
            continue
        for i in range(min(section.max, per_section)):
            n = len(items)
            items.append(
                Item(
                    id=f"sample-{s_index}-{i}",
                    title=f"Sample {section.name} item {i + 1}: organising for fair pay",
                    url=f"https://www.example.org/sample/{s_index}/{i}",
                    published=now - timedelta(hours=1 + n),
                    source="sample",
                    kind=section.kinds[0] if section.kinds else "article",
                    summary="A short summary of the item, long enough to wrap onto a second "
                    "line in the plain-text part of the email & to show escaping <works>.",
                    author="Sample Author",
                    topics=tuple(section.topics[:1]),
                    image=f"https://www.example.org/sample/{s_index}/{i}.jpg",
                    image_alt="A sample image",
                )
            )
    return items


def sample_edition(campaign: CampaignConfig, *, now: datetime) -> Edition:
    edition = compose_edition(
        sample_items(campaign, now=now), campaign, now=now, history=CampaignHistory()
    )
    if edition is None:  # a campaign with only cta sections and skip_if_empty
        campaign = campaign.model_copy(update={"skip_if_empty": False})
        edition = compose_edition([], campaign, now=now, history=CampaignHistory())
    assert edition is not None
    return edition
