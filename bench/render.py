"""Render benchmark: one MJML compile per edition (10 and 50 items) and personalisation of
100,000 recipients, beside the baseline of compiling MJML once per recipient.

    .venv/bin/python -m bench.render
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from functools import partial

from bench.common import measure, row
from publisher.compose.edition import CampaignHistory, Edition, compose_edition
from publisher.config import CampaignConfig, Organisation
from publisher.items import Item
from publisher.render import personalise
from publisher.render.email import render_edition

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RECIPIENTS = 100_000
BASELINE_SAMPLE = 20
ORG = Organisation(
    name="Bench Org",
    website="https://www.example.org",
    public_url="https://www.example.org/news",
    postal_address="1 Main St, Springfield",
    from_email="news@example.org",
    logo="https://www.example.org/logo.png",
)


def campaign(items: int) -> CampaignConfig:
    listed = items - 3
    return CampaignConfig.model_validate(
        {
            "name": "bench",
            "title": "Bench Weekly",
            "subject": "Bench Weekly — {{ edition.date | date }}",
            "sections": [
                {"name": "featured", "type": "featured", "kinds": ["resource"], "max": 3},
                {"name": "posts", "kinds": ["article"], "max": (listed + 1) // 2},
                {"name": "news", "kinds": ["news"], "max": listed // 2},
                {
                    "name": "join",
                    "type": "cta",
                    "text": "Join a steering committee.",
                    "button_label": "Join",
                    "button_url": "https://www.example.org/join",
                },
            ],
        }
    )


def items(count: int) -> list[Item]:
    kinds = ["resource"] * 3 + ["article", "news"] * count
    return [
        Item(
            id=f"bench-{n}",
            title=f"Item {n}: what the new ordinance means for local workers",
            url=f"https://www.example.org/posts/{n}/",
            published=NOW - timedelta(hours=n + 1),
            source="bench",
            kind=kinds[n],
            summary="A summary of the item in a sentence or two, as editors write them.",
            image=f"https://www.example.org/img/{n}.jpg",
            image_alt="An illustration",
        )
        for n in range(count)
    ]


def edition(count: int) -> Edition:
    composed = compose_edition(items(count), campaign(count), now=NOW, history=CampaignHistory())
    assert composed is not None  # every bench item is new
    return composed


def personalise_all(html: str, text: str, n: int) -> int:
    total = 0
    for i in range(n):
        token = f"{i:064x}"
        for document in (html, text):
            total += len(
                personalise(
                    document,
                    name=f"Reader {i}" if i % 3 else None,
                    unsubscribe_url=f"https://www.example.org/news/unsubscribe?token={token}",
                    preferences_url=f"https://www.example.org/news/preferences?token={token}",
                )
            )
    return total


def main() -> None:
    web = "https://www.example.org/news/archive/bench/1.html"
    rendered = {}
    for count in (10, 50):
        composed = edition(count)
        seconds, peak, result = measure(partial(render_edition, composed, ORG, web_url=web))
        rendered[count] = result
        print(
            row(
                f"compile edition, {count} items",
                seconds,
                f"{result.size / 1024:.1f} KB html, peak {peak:.1f} MiB",
            ),
            flush=True,
        )

    # baseline: what sending would cost if each recipient's email were compiled from MJML
    composed = edition(10)
    start = time.perf_counter()
    for _ in range(BASELINE_SAMPLE):
        render_edition(composed, ORG, web_url=web)
    per_recipient = (time.perf_counter() - start) / BASELINE_SAMPLE
    baseline_rate = 1 / per_recipient
    print(
        row(
            f"baseline: compile per recipient ({BASELINE_SAMPLE} sampled)",
            per_recipient,
            f"{baseline_rate:,.0f} recipients/s",
        ),
        flush=True,
    )

    html, text = rendered[10].html, rendered[10].text
    tracemalloc.start()
    start = time.perf_counter()
    personalise_all(html, text, RECIPIENTS)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rate = RECIPIENTS / elapsed
    print(
        row(
            f"compile once + personalise {RECIPIENTS:,} (html+text)",
            elapsed,
            f"{rate:,.0f} recipients/s, peak {peak / 2**20:.1f} MiB (traced)",
        ),
        flush=True,
    )
    print(
        f"personalisation is {rate / baseline_rate:,.0f}x the per-recipient-compile baseline; "
        f"100,000 recipients: {elapsed:.1f} s vs ~{RECIPIENTS * per_recipient / 60:.0f} min"
    )


if __name__ == "__main__":
    main()
