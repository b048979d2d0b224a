"""The scheduler's state in a real browser (Chromium through Playwright, axe-core on every
page): nothing running, a slot due, so the overview says nothing will be sent and marks
the campaign late; the killed daemon's row shows as stopped or killed; then a daemon seen
alive, and the warning is gone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from publisher.store.processes_seen import record_seen
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401 - the fixture
from tests.test_scheduler_seen import DUE
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser


def test_the_overview_says_nothing_will_be_sent(browser, project, store, tmp_path, guide_shot):  # noqa: F811
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    page = new_page(browser)
    pages = Checked(page, shots)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        served.clock.now = DUE + timedelta(minutes=20)  # the 09:00 slot has come
        killed = DUE - timedelta(hours=1)  # a daemon killed an hour before: its row stays
        record_seen(store, kind="daemon", host="newsroom-server", pid=4711, version="0.1.0",
                    started=killed - timedelta(days=0, hours=3), now=killed)  # fmt: skip
        log_in(page, served.url, STAFF["viewer"])
        expect(page.get_by_role("heading", name="Nothing will be sent")).to_be_visible()
        expect(
            page.get_by_text("No scheduler (publisher run) has been seen running")
        ).to_be_visible()
        row = page.locator('tr[data-process="daemon-4711"]')
        expect(row.locator("td.process-state")).to_have_text(
            "stopped or killed (last seen Wed 25 Nov 2026, 08:00 EST)"
        )
        late = page.locator('tr[data-campaign="weekly"] div.late')
        expect(late).to_have_text("late: due Wed 25 Nov 2026, 09:00 EST")
        pages.check("overview-nothing-running")
        guide_shot(page, "scheduler-nothing-running")

        page.get_by_role("link", name="weekly", exact=True).click()
        expect(page.locator("p.late")).to_contain_text("Late: the slot of Wed 25 Nov 2026")
        pages.check("campaign-late")

        record_seen(store, kind="daemon", host="newsroom-server", pid=4800, version="0.1.0",
                    started=served.clock.now, now=served.clock.now)  # fmt: skip
        page.get_by_role("link", name="Overview", exact=True).click()
        expect(page.get_by_text("The scheduler is running")).to_be_visible()
        expect(page.get_by_role("heading", name="Nothing will be sent")).to_have_count(0)
        expect(page.locator("div.late")).to_have_count(0)
        expect(page.locator('tr[data-process="daemon-4800"] td.process-state')).to_have_text(
            "running"
        )
        pages.check("overview-running")
        guide_shot(page, "scheduler-running")
