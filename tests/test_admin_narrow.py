"""The staff pages on a phone: at 375 px wide no page scrolls sideways, even with a
120-character address, a long title and a long link on it (they wrap); every page passes
axe-core. Chromium through Playwright against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from publisher.sources.collect import collect_all
from publisher.store import audit
from publisher.store.models import DeliveryRow, SubscriberRow
from publisher.store.sink import StoreSink
from publisher.store.staff import add_staff
from publisher.subscribers.events import record_events
from tests.admin_support import ADMIN_CONFIG, PASSWORD, SENT_AT, STAFF, add_accounts, seed_edition
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401 (fixture)
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser

WIDTH = 375
LONG = "a" * 60 + "." + "b" * 45 + "@example.org"  # 118 characters, no place to break
LONG_URL = "https://www.example.org/" + "story-" * 20 + "x" * 40
LONG_TITLE = "Nurses" + "-and-doctors" * 8 + " win their strike after a very long winter"
assert len(LONG) >= 118 and len(LONG_URL) > 120


def _seed_long(store, project) -> tuple[int, int]:
    """Edition #1 with a long recipient, a long link clicked; a long staff address in the
    staff list and the audit log; a post with a long title."""
    edition = seed_edition(store)
    with store.session() as session:
        person = SubscriberRow(
            email=LONG, name=LONG_TITLE, topics=["labor"], status="active", token="long",
            created_at=SENT_AT - timedelta(days=1), updated_at=SENT_AT,
        )  # fmt: skip
        session.add(person)
        session.flush()
        session.add(
            DeliveryRow(
                edition_id=edition,
                subscriber_id=person.id,
                status="failed",
                attempts=1,
                error="HTTP 550 " + LONG_URL,
                updated_at=SENT_AT,
            )  # fmt: skip
        )
        subscriber = person.id
    click = {
        "sg_event_id": "long-click", "event": "click", "email": LONG,
        "timestamp": int(SENT_AT.timestamp()) + 60, "edition_id": str(edition), "url": LONG_URL,
    }  # fmt: skip
    record_events(store, [click], now=SENT_AT)
    add_staff(store, "c" * 100 + "@example.org", "viewer", PASSWORD, now=SENT_AT)
    audit.record(
        store, STAFF["owner"], "test send", f"weekly #1 to {LONG}", ip="192.0.2.1", now=SENT_AT
    )
    (project / "content" / "long.md").write_text(
        f"---\ntitle: {LONG_TITLE}\ndate: 2026-11-24T10:00:00Z\nkind: news\ntopics: [labor]\n"
        f"url: {LONG_URL}\n---\nThe story.\n",
        encoding="utf-8",
    )
    return edition, subscriber


def _scroll_width(page) -> int:
    return int(page.evaluate("document.scrollingElement.scrollWidth"))


def test_no_admin_page_scrolls_sideways_at_375_px(browser, project, store, tmp_path, guide_shot):  # noqa: F811
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    (project / "content").mkdir(exist_ok=True)
    edition, subscriber = _seed_long(store, project)
    page = new_page(browser, width=WIDTH)
    pages = Checked(page, shots)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        collect_all(served.config, StoreSink(store), now=served.clock.now)
        log_in(page, served.url, STAFF["owner"])
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        walk = [
            ("overview", "/admin/", "Overview"),
            ("campaign", "/admin/campaigns/weekly", "Campaign weekly"),
            ("edition", f"/admin/editions/{edition}", "weekly #1"),
            ("subscribers", f"/admin/subscribers?q={LONG[:20]}", "Subscribers"),
            ("subscriber", f"/admin/subscribers/{subscriber}", LONG),
            ("audit", "/admin/audit", "Audit log"),
            ("staff", "/admin/staff", "Staff"),
            ("account", "/admin/account", "Your account"),
            ("broadcasts", "/admin/broadcasts", "Broadcasts"),
            ("approvals", "/admin/approvals", "Approvals"),
            ("webhooks", "/admin/webhooks", "Webhooks"),
            ("api-keys", "/admin/api-keys", "API keys"),
        ]
        for name, path, heading in walk:
            page.goto(f"{served.url}{path}")
            expect(page.get_by_role("heading", name=heading, exact=True).first).to_be_visible()
            if name == "edition":  # the recipients' table is folded away: open it
                page.get_by_text("Every recipient").click()
                expect(page.get_by_role("cell", name=LONG)).to_be_visible()
            if name == "subscribers":
                expect(page.get_by_role("link", name=LONG)).to_be_visible()
            width = _scroll_width(page)
            assert width <= WIDTH, f"{name}: the page is {width} px wide at {WIDTH} px"
            pages.check(f"narrow-{name}")
            if name in ("edition", "subscribers"):
                guide_shot(page, f"admin-narrow-{name}")
    assert len(pages.seen) == len(walk)
