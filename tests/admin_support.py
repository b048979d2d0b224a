"""The staff dashboard's test project: a campaign with a cadence, a Markdown source, three
staff accounts (one per role), and a store seeded with known ledger rows and events."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
from lxml import html as lxml_html

from publisher.store import Store
from publisher.store.models import DeliveryRow, EditionRow, SubscriberRow
from publisher.store.staff import add_staff
from publisher.subscribers.events import record_events
from tests.conftest import BASE_CONFIG, FIXED_NOW, present

PASSWORD = "correct horse battery staple"
STAFF = {"owner": "olga@example.org", "editor": "edu@example.org", "viewer": "vera@example.org"}
# the organisation is conftest's (one copy); then the dashboard's source and campaign
ADMIN_CONFIG = (
    BASE_CONFIG
    + """\
sources:
  - name: posts
    type: markdown
    path: content
campaigns:
  - name: weekly
    title: Weekly
    subject: "Weekly #{{{{ edition.number }}}}"
    preheader: News from Test Org
    audience: [labor, housing]
    lookback_days: 30
    cadence: "daily: 09:00"
    sections:
      - name: news
        type: list
        topics: [labor]
delivery:
  backend: file
  backoff_base: 0.01
  backoff_max: 0.05
"""
)


def add_accounts(store: Store) -> None:
    for role, email in STAFF.items():
        add_staff(store, email, role, PASSWORD, now=FIXED_NOW)


def write_posts(project: Path) -> None:
    posts = {
        "strike": ("Nurses win their strike", "[labor]"),
        "rent": ("Rent board meets Tuesday", "[housing]"),
    }
    for slug, (title, topics) in posts.items():
        (project / "content" / f"{slug}.md").write_text(
            f"---\ntitle: {title}\ndate: 2026-11-24T10:00:00Z\nkind: news\ntopics: {topics}\n"
            f"---\nThe story of {title.lower()}.\n",
            encoding="utf-8",
        )


def log_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/admin/login")
    csrf = present(re.search(r'name="csrf" value="([^"]+)"', page.text)).group(1)
    return client.post("/admin/login", data={"email": email, "password": password, "csrf": csrf})


def csrf_of(html: str) -> str:
    return present(re.search(r'name="csrf" value="([^"]+)"', html)).group(1)


# --- a sent edition with known ledger rows and events ---------------------------------------

LEDGER = {"sent": 6, "uncertain": 2, "failed": 1, "skipped": 1}  # 10 recipients
SENT_AT = FIXED_NOW - timedelta(hours=3)


def seed_edition(store: Store) -> int:
    """Edition #1 of weekly; recipient i is r<i>@example.org, rows in LEDGER's order."""
    statuses = [s for s, n in LEDGER.items() for _ in range(n)]
    with store.session() as session:
        edition = EditionRow(
            campaign="weekly", number=1, slot=None, composed_at=SENT_AT, subject="Weekly #1",
            preheader="", html="<p>archived copy</p>", text="archived copy", status="sent",
            sent_at=SENT_AT,
        )  # fmt: skip
        session.add(edition)
        session.flush()
        for i, status in enumerate(statuses):
            subscriber = SubscriberRow(
                email=f"r{i}@example.org", topics=["labor"], status="active", token=f"tok{i}",
                created_at=SENT_AT - timedelta(days=i), updated_at=SENT_AT,
            )  # fmt: skip
            session.add(subscriber)
            session.flush()
            error = "HTTP 550 mailbox unavailable" if status == "failed" else None
            session.add(
                DeliveryRow(
                    edition_id=edition.id,
                    subscriber_id=subscriber.id,
                    status=status,
                    attempts=1,
                    error=error,
                    updated_at=SENT_AT + timedelta(minutes=i),
                )  # fmt: skip
            )
        edition_id = edition.id
    record_events(store, events_for(edition_id), now=FIXED_NOW)
    return edition_id


def events_for(edition_id: int) -> list[dict]:
    """6 delivered; r0 opens 3 times, r1 and r2 once (3 unique opens); r0 clicks link A
    twice and B once, r1 clicks A (2 unique clickers); r3 bounces; r4 complains."""

    def event(n: int, kind: str, who: int, hour: int, **extra: object) -> dict:
        stamp = (SENT_AT + timedelta(hours=hour)).timestamp()
        return dict(
            sg_event_id=f"e{n}", event=kind, email=f"r{who}@example.org",
            timestamp=int(stamp), edition_id=str(edition_id), **extra,
        )  # fmt: skip

    out = [event(i, "delivered", i, 0) for i in range(6)]
    out += [event(10 + i, "open", who, 1) for i, who in enumerate([0, 0, 0, 1, 2])]
    a, b = "https://www.example.org/a", "https://www.example.org/b"
    out += [event(20, "click", 0, 1, url=a), event(21, "click", 0, 2, url=a)]
    out += [event(22, "click", 0, 2, url=b), event(23, "click", 1, 2, url=a)]
    out += [event(30, "bounce", 3, 0, type="bounce"), event(31, "spamreport", 4, 2)]
    return out


EXPECTED = {
    "delivered": 6, "bounced": 1, "complained": 1, "unsubscribed": 0,
    "unique opens": 3, "unique clicks": 2,
}  # fmt: skip
ACCEPTED = LEDGER["sent"] + LEDGER["uncertain"]


def xpath_list(tree: lxml_html.HtmlElement, xpath: str) -> list:
    """The nodes or strings an XPath that selects a node-set finds."""
    found = tree.xpath(xpath)
    assert isinstance(found, list), found
    return found


def xpath_strings(tree: lxml_html.HtmlElement, xpath: str) -> list[str]:
    """The strings a text() or @attribute XPath finds."""
    found = xpath_list(tree, xpath)
    strings = [x for x in found if isinstance(x, str)]
    assert len(strings) == len(found), found
    return strings
