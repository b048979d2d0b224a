"""Test data for delivery tests: a stored edition with placeholders and many subscribers."""

from __future__ import annotations

from datetime import datetime, timedelta

from publisher.store import Store
from publisher.store.items import upsert_items
from publisher.store.models import EditionRow
from publisher.store.subscribers import SubscriberInput, import_subscribers

CAMPAIGN_YAML = """
campaigns:
  - name: weekly
    title: Economic Justice Weekly
    subject: This week
    audience: {audience}
delivery:
  backend: {backend}
  backoff_base: 0.01
  backoff_max: 0.05
{delivery}
"""

HTML = (
    "<!doctype html><html><body><p>Hello, %%NAME%%!</p>"
    "<p>" + "Long paragraph with caf\u00e9 and <b>bold</b> words. " * 40 + "</p>"
    '<p><a href="%%UNSUBSCRIBE_URL%%">Unsubscribe</a> | '
    '<a href="%%PREFERENCES_URL%%">Preferences</a></p></body></html>'
)
TEXT = (
    "Hello, %%NAME%%!\n\n" + "Line of text with caf\u00e9. " * 10 + "\n\n"
    "Unsubscribe: %%UNSUBSCRIBE_URL%%\nPreferences: %%PREFERENCES_URL%%\n"
)


def config_text(backend: str = "file", audience: str = "[]", delivery: str = "") -> str:
    return CAMPAIGN_YAML.format(backend=backend, audience=audience, delivery=delivery)


def add_edition(
    store: Store,
    now: datetime,
    *,
    campaign: str = "weekly",
    number: int = 1,
    subject: str = "Economic Justice Weekly #1: wages and rent",
) -> int:
    with store.session() as session:
        row = EditionRow(
            campaign=campaign,
            number=number,
            composed_at=now,
            subject=subject,
            preheader="",
            html=HTML,
            text=TEXT,
            status="composed",
        )
        session.add(row)
        session.flush()
        return row.id


def add_subscribers(
    store: Store,
    now: datetime,
    count: int,
    *,
    start: int = 0,
    topics: tuple[str, ...] = (),
    status: str | None = None,
) -> list[str]:
    emails = [f"person{i}@example.org" for i in range(start, start + count)]
    rows = (SubscriberInput(e, f"Person {i}", topics, status) for i, e in enumerate(emails, start))
    import_subscribers(store, rows, now=now)
    return emails


def add_subscribers_fast(store: Store, now: datetime, count: int) -> list[str]:
    """`count` active subscribers written with one multi-row INSERT per 10,000 (benchmarks
    and the large worker tests: import_subscribers checks every row, which is the slow part
    there); the same addresses and names as add_subscribers."""
    import secrets

    from sqlalchemy import insert

    from publisher.store.models import SubscriberRow

    emails = [f"person{i}@example.org" for i in range(count)]
    for start in range(0, count, 10_000):
        rows = [
            {
                "email": emails[i],
                "name": f"Person {i}",
                "topics": [],
                "status": "active",
                "token": secrets.token_urlsafe(24),
                "created_at": now,
                "updated_at": now,
            }
            for i in range(start, min(count, start + 10_000))
        ]
        with store.session() as session:
            session.execute(insert(SubscriberRow), rows)
    return emails


def add_posts(store: Store, now: datetime, count: int = 2) -> None:
    """`count` articles published an hour apart before `now` (something for an edition)."""
    from publisher.items import Item

    upsert_items(
        store,
        [
            Item(
                id=f"test:post-{n}",
                title=f"Post {n}",
                url=f"https://www.example.org/post-{n}",
                published=now - timedelta(hours=n + 1),
                source="test",
                kind="article",
            )
            for n in range(count)
        ],
        now=now,
    )
