"""The /admin pages stay bounded at any size: a campaign's edition history 10 editions at a
time (the ledger counted for those only), an edition's recipients 100 at a time (keyset by
status then subscriber), each page's numbers equal to the store's."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from lxml import html as lxml_html
from playwright.sync_api import expect
from sqlalchemy import insert

from publisher.store import Store
from publisher.store.dashboard import ledger_counts, recipients
from publisher.store.models import DeliveryRow, EditionRow, SubscriberRow
from tests.admin_support import ADMIN_CONFIG, SENT_AT, STAFF, add_accounts, log_in
from tests.test_admin_browser import browser, new_page  # noqa: F401 (a fixture)
from tests.test_admin_browser import log_in as browser_log_in
from tests.test_web_browser import Checked
from tests.web_support import serve

STATUSES = ("failed", "sent", "skipped", "uncertain")


def seed(store: Store, editions: int, recipients_of_last: int) -> int:
    """`editions` sent editions of weekly (#1..#n), edition #k with k ledger rows (the last
    one `recipients_of_last`), statuses in turn; returns the last edition's id."""
    people = max(editions, recipients_of_last)
    with store.session() as session:
        session.execute(
            insert(SubscriberRow),
            [
                dict(
                    email=f"p{i:04}@example.org",
                    topics=[],
                    status="active",
                    token=f"t{i}",
                    created_at=SENT_AT,
                    updated_at=SENT_AT,
                )  # fmt: skip
                for i in range(people)
            ],
        )
        ids = [r.id for r in session.query(SubscriberRow.id).order_by(SubscriberRow.id)]
        for number in range(1, editions + 1):
            edition = EditionRow(
                campaign="weekly", number=number, slot=None, composed_at=SENT_AT, status="sent",
                subject=f"Weekly #{number}", preheader="", html="<p>x</p>", text="x",
                sent_at=SENT_AT,
            )  # fmt: skip
            session.add(edition)
            session.flush()
            rows = recipients_of_last if number == editions else number
            session.execute(
                insert(DeliveryRow),
                [
                    dict(
                        edition_id=edition.id,
                        subscriber_id=ids[k],
                        attempts=1,
                        status=STATUSES[k % 4],
                        updated_at=SENT_AT + timedelta(seconds=k),
                        error="HTTP 550" if k % 4 == 0 else None,
                    )  # fmt: skip
                    for k in range(rows)
                ],
            )
        return edition.id


def test_recipients_come_a_page_at_a_time_in_status_then_subscriber_order(store):
    edition_id = seed(store, 1, 250)
    seen, after, pages = [], None, 0
    while True:
        page, after = recipients(store, edition_id, limit=100, after=after)
        seen += page
        pages += 1
        if after is None:
            break
    assert pages == 3 and len(seen) == 250 == len(set(seen))
    statuses = [s for _, s, _ in seen]
    assert statuses == sorted(statuses)  # failed first, then sent, skipped, uncertain
    for status in STATUSES:
        emails = [e for e, s, _ in seen if s == status]
        assert emails == sorted(emails) and len(emails) in (62, 63)
    assert {r for _, s, r in seen if s == "failed"} == {"HTTP 550"}
    exact, last = recipients(store, edition_id, limit=250)
    assert exact == seen and last is None  # a page that ends the list says so


@pytest.fixture
def admin_server(project, store):
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        yield served


def _get(http: httpx.Client, url: str) -> lxml_html.HtmlElement:
    response = http.get(url)
    assert response.status_code == 200
    return lxml_html.fromstring(response.text)


def test_the_edition_history_is_paged_ten_at_a_time(admin_server, store):
    seed(store, 23, 23)
    numbers, url, pages = [], "/admin/campaigns/weekly", 0
    with httpx.Client(base_url=admin_server.url, follow_redirects=True, timeout=30) as http:
        log_in(http, STAFF["viewer"])
        while url:
            tree = _get(http, url)
            rows = tree.xpath('//section[@aria-labelledby="history"]//tr[@data-edition]')
            assert len(rows) <= 10
            for row in rows:  # each edition's counts are the ledger's
                number = int(row.get("data-edition"))
                sent = int(row.xpath('td[@data-count="sent"]/text()')[0])
                assert sent == len([k for k in range(number) if k % 4 == 1])
            numbers += [int(r.get("data-edition")) for r in rows]
            older = tree.xpath('//a[text()="Older editions"]/@href')
            newest = tree.xpath('//a[text()="Newest editions"]/@href')
            assert bool(newest) == (pages > 0)
            url, pages = (older[0] if older else ""), pages + 1
    assert numbers == list(range(23, 0, -1)) and pages == 3


def test_the_edition_page_lists_recipients_a_hundred_at_a_time(admin_server, store):
    edition_id = seed(store, 1, 250)
    total = sum(ledger_counts(store, [edition_id])[edition_id].values())
    shown, url = [], f"/admin/editions/{edition_id}"
    with httpx.Client(base_url=admin_server.url, follow_redirects=True, timeout=30) as http:
        log_in(http, STAFF["viewer"])
        while url:
            tree = _get(http, url)
            summary = " ".join(tree.xpath('//details[@id="recipients"]/summary//text()'))
            assert summary == f"Every recipient ({total}) with the reason"
            rows = tree.xpath('//details[@id="recipients"]//tbody/tr/td[1]/text()')
            assert 0 < len(rows) <= 100
            shown += rows
            following = tree.xpath('//a[text()="Next recipients"]/@href')
            url = following[0] if following else ""
        assert len(shown) == 250 == len(set(shown))
        assert http.get(f"/admin/editions/{edition_id}?after=nonsense").status_code == 200


@pytest.mark.browser
def test_paging_in_a_browser(browser, admin_server, store, tmp_path, guide_shot):  # noqa: F811
    edition_id = seed(store, 23, 250)
    page = new_page(browser)
    pages = Checked(page, tmp_path)
    browser_log_in(page, admin_server.url, STAFF["viewer"])
    page.goto(f"{admin_server.url}/admin/campaigns/weekly")
    history = page.locator('section[aria-labelledby="history"] tr[data-edition]')
    expect(history).to_have_count(10)
    expect(history.first.get_by_role("link")).to_have_text("#23")
    pages.check("history-newest")
    guide_shot(page, "paged-history", full_page=True)
    page.get_by_role("link", name="Older editions").click()
    expect(history.first.get_by_role("link")).to_have_text("#13")
    expect(page.get_by_role("link", name="Newest editions")).to_be_visible()
    pages.check("history-older")
    page.goto(f"{admin_server.url}/admin/editions/{edition_id}")
    page.get_by_text("Every recipient (250) with the reason").click()
    rows = page.locator("#recipients tbody tr")
    expect(rows).to_have_count(100)
    expect(rows.first.locator("td").nth(1)).to_have_text("failed")
    page.get_by_role("link", name="Next recipients").click()
    expect(page.get_by_role("link", name="First recipients")).to_be_visible()
    expect(rows).to_have_count(100)
    pages.check("recipients-next")
    guide_shot(page, "paged-recipients", full_page=True)
