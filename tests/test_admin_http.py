"""The staff dashboard over plain HTTP against a real server: the numbers on the pages equal
the numbers in a store seeded with known ledger rows and events; cookies, CSP, CSRF, roles,
lock-out and the audit log."""

from __future__ import annotations

import csv
import io
import re

import httpx
import pytest
from lxml import html as lxml_html

from publisher.store import audit
from publisher.store.schedule_state import paused_campaigns
from publisher.store.subscribers import count_by_status
from publisher.subscribers.events import engagement, timeline
from tests.admin_support import (
    ACCEPTED,
    ADMIN_CONFIG,
    EXPECTED,
    LEDGER,
    STAFF,
    add_accounts,
    csrf_of,
    log_in,
    seed_edition,
    xpath_list,
    xpath_strings,
)
from tests.web_support import serve


@pytest.fixture
def admin_server(project, store):
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        yield served


def client(served) -> httpx.Client:
    return httpx.Client(base_url=served.url, follow_redirects=True, timeout=30)


def cells(page: str, xpath: str) -> list[str]:
    return [" ".join(t.split()) for t in xpath_strings(lxml_html.fromstring(page), xpath)]


def test_edition_numbers_equal_the_store(admin_server, store):
    edition_id = seed_edition(store)
    with client(admin_server) as http:
        log_in(http, STAFF["viewer"])
        page = http.get(f"/admin/editions/{edition_id}").text
        archived = http.get(f"/admin/editions/{edition_id}/email")
    assert archived.text == "<p>archived copy</p>"
    assert "sandbox" in archived.headers["content-security-policy"]
    for name, count in EXPECTED.items():
        row = f'//tr[@data-outcome="{name}"]'
        assert cells(page, f"{row}/td[1]/text()") == [str(count)]
        assert cells(page, f"{row}/td[2]/text()") == [f"{100 * count / ACCEPTED:.1f}%"]
    assert engagement(store, edition_id) == EXPECTED  # the store says the same
    for status, count in LEDGER.items():
        assert cells(page, f'//tr[@data-status="{status}"]/td/text()') == [str(count)]
    clicks = cells(page, '//table[@id="clicks-table"]/tbody/tr/td/text()')
    assert clicks == ["https://www.example.org/a", "3", "2", "https://www.example.org/b", "1", "1"]
    assert "HTTP 550 mailbox unavailable" in page  # the failed recipient's reason
    # the chart's bars carry the store's numbers per hour, and the table fallback too
    hours, series = timeline(store, edition_id)
    assert series["accepted"] == [ACCEPTED, 0, 0] and series["opens"] == [0, 5, 0]
    assert series["clicks"] == [0, 1, 3] and series["complained"] == [0, 0, 1]
    tree = lxml_html.fromstring(page)
    for index, values in enumerate(series.values()):
        bars = xpath_strings(tree, f'//*[@id="chart-{index}"]//*[local-name()="rect"]/@data-value')
        # a series with nothing in it draws no bars and no scale: it says so
        assert [int(v) for v in bars] == (values if any(values) else [])
        if not any(values):
            words = xpath_strings(tree, f'//*[@id="chart-{index}"]//*[local-name()="text"]/text()')
            assert words == ["No data yet"]
    assert len(xpath_list(tree, "//figure//details//table")) == len(series)


def test_overview_and_subscriber_numbers_equal_the_store(admin_server, store):
    edition_id = seed_edition(store)
    with client(admin_server) as http:
        log_in(http, STAFF["viewer"])
        overview = http.get("/admin/").text
        subscribers = http.get("/admin/subscribers").text
        found = http.get("/admin/subscribers", params={"q": "r3@"}).text
    row = '//tr[@data-campaign="weekly"]'
    for status in ("sent", "uncertain", "failed"):
        assert cells(overview, f'{row}/td[@data-count="{status}"]/text()') == [str(LEDGER[status])]
    # alerts: failed and uncertain recipients, a complaint rate of 1/8 (above 0.1%)
    alerts = cells(overview, '//ul[@class="alerts"]/li/a/text()')
    assert alerts == ["weekly #1: 1 failed or bounced", "weekly #1: 2 uncertain",
                      "weekly #1: complaint rate 12.5% (above 0.1%)"]  # fmt: skip
    assert len(cells(overview, f"{row}/td[3]/div/time/@datetime")) == 3  # the next three runs
    for status, count in count_by_status(store).items():
        assert cells(subscribers, f'//tr[@data-status="{status}"]/td/text()') == [str(count)]
    assert cells(subscribers, '//tr[@data-topic="labor"]/td/text()') == ["8"]  # active ones
    totals = xpath_strings(
        lxml_html.fromstring(subscribers),
        '//*[@id="growth-total"]//*[local-name()="rect"]/@data-value',
    )
    assert int(totals[-1]) == sum(count_by_status(store).values())
    assert cells(found, '//ul[@class="found"]/li/a/text()') == ["r3@example.org"]
    assert edition_id


def test_session_cookie_and_security_headers(admin_server):
    with client(admin_server) as http:
        answer = log_in(http, STAFF["editor"])
        cookie = answer.history[0].headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
        assert "frame-src 'self'" in answer.headers["content-security-policy"]
        preview = http.get("/admin/campaigns/weekly/preview")
        assert "sandbox" in preview.headers["content-security-policy"]
        assert "script" not in preview.headers["content-security-policy"]
    with client(admin_server) as http:  # behind a proxy speaking https: the cookie is Secure
        http.headers["x-forwarded-proto"] = "https"
        answer = log_in(http, STAFF["editor"])
        assert "Secure" in answer.history[0].headers["set-cookie"]
    with client(admin_server) as http:  # no session: every page sends you to log in
        assert http.get("/admin/subscribers").url.path == "/admin/login"


def test_refusals_csrf_roles_and_lock_out(admin_server, store):
    with client(admin_server) as http:
        log_in(http, STAFF["viewer"])
        page = http.get("/admin/campaigns/weekly").text
        assert "Pause" not in page and "Send a test" not in page
        viewer_token = csrf_of(page)
        refused = http.post("/admin/campaigns/weekly/pause", data={"csrf": viewer_token})
        assert refused.status_code == 403 and paused_campaigns(store) == set()
    with client(admin_server) as http:
        log_in(http, STAFF["editor"])
        assert http.post("/admin/campaigns/weekly/pause", data={}).status_code == 403  # no CSRF
        another = http.post("/admin/campaigns/weekly/pause", data={"csrf": viewer_token})
        assert another.status_code == 403  # a token of another session
        assert paused_campaigns(store) == set()
        token = csrf_of(http.get("/admin/").text)
        assert http.get("/admin/staff").status_code == 403
        added = http.post(
            "/admin/staff/invite", data={"csrf": token, "email": "x@example.org", "role": "owner"}
        )
        assert added.status_code == 403
        assert http.post("/admin/subscribers/export", data={"csrf": token}).status_code == 403
        assert http.post("/admin/campaigns/weekly/pause", data={"csrf": token}).status_code == 200
        assert paused_campaigns(store) == {"weekly"}
    with client(admin_server) as http:  # 5 failures pause this address at this account
        for _ in range(5):
            assert log_in(http, STAFF["owner"], "wrong password!").status_code == 401
        assert log_in(http, STAFF["owner"]).status_code == 429
        assert log_in(http, STAFF["viewer"]).url.path == "/admin/"  # not other accounts
        admin_server.clock.advance(minutes=16)
        assert log_in(http, STAFF["owner"]).url.path == "/admin/"
    entries = audit.recent(store)
    failed = [e for e in entries if e.action == "failed login"]
    assert [e.repeats for e in failed] == [5]  # one row counting them
    actions = [e.action for e in entries]
    assert "pause" in actions and "login refused (too many failures)" in actions


def test_owner_exports_and_manages_staff(admin_server, store):
    seed_edition(store)
    with store.session() as session:
        from publisher.store.models import SubscriberRow

        session.get(SubscriberRow, 1).name = '=HYPERLINK("http://evil")'
    viewer = client(admin_server)
    log_in(viewer, STAFF["viewer"])
    assert viewer.get("/admin/").url.path == "/admin/"
    with client(admin_server) as http:
        log_in(http, STAFF["owner"])
        token = csrf_of(http.get("/admin/staff").text)
        export = http.post("/admin/subscribers/export", data={"csrf": token})
        rows = list(csv.reader(io.StringIO(export.text)))
        assert rows[0][:4] == ["email", "name", "topics", "status"] and len(rows) == 11
        assert rows[1][1] == '\'=HYPERLINK("http://evil")'
        page = http.post(
            "/admin/staff/invite",
            data={"csrf": token, "email": "new@example.org", "role": "editor"},
        ).text
        assert "Invited new@example.org as editor" in page
        page = http.post("/admin/staff/remove", data={"csrf": token, "email": STAFF["viewer"]}).text
        assert re.search(r"Removed vera@example.org", page)
        assert viewer.get("/admin/").url.path == "/admin/login"  # her session ended with it
        viewer.close()
        audit_page = http.get("/admin/audit").text
    for action in ("export", "staff invited", "staff removed", "login"):
        assert f'<td class="action">{action}</td>' in audit_page
