"""Fixture items and helpers shared by the compose, render and archive tests (no tests here)."""

from __future__ import annotations

import difflib
import os
from datetime import datetime, timedelta
from pathlib import Path

from publisher.config import CampaignConfig, PublisherConfig, load_config
from publisher.items import Item
from tests.conftest import FIXED_NOW, ROOT

GOLDEN = Path(__file__).parent / "golden" / "email"


def item(
    slug: str,
    *,
    days_ago: float,
    kind: str = "article",
    topics: tuple[str, ...] = ("economic-justice",),
    title: str | None = None,
    image: bool = True,
    summary: str | None = None,
) -> Item:
    return Item(
        id=f"test:{slug}",
        title=title or slug.replace("-", " ").capitalize(),
        url=f"https://www.example.org/{slug}/",
        published=FIXED_NOW - timedelta(days=days_ago),
        source="test",
        kind=kind,
        summary=summary
        if summary is not None
        else f"What {slug.replace('-', ' ')} means for local leaders, and what to do next.",
        author="Local Progress staff",
        topics=topics,
        image=f"https://www.example.org/img/{slug}.jpg" if image else None,
        image_alt=f"Illustration for {slug}" if image else None,
    )


def fixture_items() -> list[Item]:
    """Eight items around FIXED_NOW: six inside the 14-day window, one too old, one future."""
    return [
        item("cba-toolkit", days_ago=6, kind="resource"),
        item("older-guide", days_ago=10, kind="resource"),
        item("sign-on-letter", days_ago=5, kind="action"),
        item(
            "wages-and-benefits",
            days_ago=11.5,
            title='Wages & <Benefits>: a "fair" fall',
        ),
        item("fair-workweek", days_ago=7, kind="news", image=False),
        item("recap", days_ago=1, kind="news", topics=("economic-justice", "labor")),
        item("ancient-news", days_ago=40, kind="news"),
        item("tomorrow", days_ago=-1, kind="news"),
    ]


def sample_config() -> PublisherConfig:
    """The repository's own schedules.yaml: the sample organisation and campaign."""
    return load_config(ROOT / "schedules.yaml")


def sample_campaign(config: PublisherConfig | None = None) -> CampaignConfig:
    config = config or sample_config()
    return next(c for c in config.campaigns if c.name == "economic-justice-weekly")


def assert_golden(name: str, actual: str) -> None:
    """Compare with tests/golden/email/<name>; PUBLISHER_REGEN_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if os.environ.get("PUBLISHER_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        raise AssertionError(f"{path} is missing; create it with PUBLISHER_REGEN_GOLDEN=1")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"golden/email/{name}",
                tofile="rendered",
                n=2,
            )
        )
        raise AssertionError(
            f"{name} differs from its golden file (PUBLISHER_REGEN_GOLDEN=1 to accept):\n{diff}"
        )


def now() -> datetime:
    return FIXED_NOW
