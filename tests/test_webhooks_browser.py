"""A real browser (Debian's Chromium via Playwright) through the Webhooks page against a real
server, on SQLite and PostgreSQL: an owner adds an endpoint and sees its secret once, an
event is delivered signed to a receiver on 127.0.0.1, a failed attempt is shown and sent
again from the page; a receiver that keeps failing turns the endpoint off and the overview
says so. axe-core on every page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from standardwebhooks import Webhook

from publisher.deliver.webhooks import BACKOFF, Deliverer
from publisher.store import audit, webhooks
from publisher.store.consent import CLI, add_pending, set_subscriber_status
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts
from tests.conftest import FIXED_NOW
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401 - the fixture
from tests.test_web_browser import Checked
from tests.web_support import serve
from tests.webhook_receiver import receiving
from tests.webhook_support import SETTINGS, Clock

pytestmark = pytest.mark.browser

CONFIG = ADMIN_CONFIG + "webhooks:\n  allow_private_addresses: true\n"


def test_owner_adds_a_webhook_sees_deliveries_and_replays_a_failure(
    browser,  # noqa: F811
    project,
    store,
    tmp_path,
    guide_shot,
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    page = new_page(browser)
    pages = Checked(page, shots)
    clock = Clock()
    with receiving() as receiver, serve(project, store, config_text=CONFIG) as served:
        sender = Deliverer(store, SETTINGS, clock=clock)
        log_in(page, served.url, STAFF["owner"])
        page.get_by_role("link", name="Webhooks", exact=True).click()
        expect(page.get_by_role("heading", name="Add a webhook")).to_be_visible()
        # one heading named "Webhooks" (the page's); the list is "Your webhooks"
        expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
        expect(page.get_by_role("region", name="Your webhooks")).to_contain_text("No webhook yet")
        pages.check("webhooks-empty")
        page.get_by_label("Address (URL)").fill("http://10.1.2.3/hook")
        page.get_by_role("button", name="Add webhook").click()
        expect(page.get_by_role("alert")).to_contain_text("private or local address")
        page.get_by_label("Address (URL)").fill(receiver.url)
        page.get_by_label("Description").fill("Our CRM")
        page.get_by_label("A post was published").uncheck()
        guide_shot(page, "webhooks-add")
        page.get_by_role("button", name="Add webhook").click()
        secret = page.get_by_label("Signing secret").input_value()
        assert secret.startswith("whsec_")
        expect(page.get_by_role("status")).to_contain_text("shown only this once")
        guide_shot(page, "webhooks-secret")
        pages.check("webhook-secret")
        (found,) = webhooks.list_endpoints(store)
        assert "post.published" not in found.events
        page.reload()  # the secret is never shown again
        expect(page.get_by_role("heading", name="Settings")).to_be_visible()
        assert secret not in page.content()
        assert all(secret not in e.target for e in audit.recent(store, limit=50))
        page.get_by_role("button", name="Make a new secret").click()
        renewed = page.get_by_label("Signing secret").input_value()
        assert renewed.startswith("whsec_") and renewed != secret
        secret = renewed
        page.reload()
        expect(page.get_by_role("heading", name="Settings")).to_be_visible()
        assert secret not in page.content()

        someone = add_pending(
            store, "ana@example.org", name=None, topics=(), ctx=CLI, now=FIXED_NOW
        )
        set_subscriber_status(store, someone.id, "active", action="confirm", ctx=CLI, now=FIXED_NOW)
        delivered = sender.run_until_idle().delivered
        assert delivered == 1
        (got,) = receiver.received
        assert Webhook(secret).verify(got.body, got.headers)["type"] == "subscriber.confirmed"

        receiver.status = 503
        set_subscriber_status(
            store, someone.id, "unsubscribed", action="unsubscribe", ctx=CLI, now=FIXED_NOW
        )
        assert sender.run_until_idle().retrying == 1
        page.reload()
        failed = page.locator("tr.failed").first
        expect(failed.locator("td.result")).to_have_text("failed: HTTP 503")
        expect(page.locator("tr.ok").first.locator("td.result")).to_have_text("delivered (200)")
        guide_shot(page, "webhooks-attempts", full_page=True)
        pages.check("webhook-failed-attempt")
        receiver.status = 200
        newest = page.locator("tr[data-delivery]").first
        number = newest.get_attribute("data-delivery")
        newest.get_by_role("button", name=f"Send delivery {number} again").click()
        expect(page.get_by_role("status")).to_contain_text("will be sent again shortly")
        assert sender.run_until_idle().delivered == 1  # at once: not waiting for the retry
        page.reload()
        expect(newest.locator("td.state")).to_contain_text("delivered")
        assert [r.headers["webhook-id"] for r in receiver.received][-1].startswith("msg_")

        # a receiver that keeps failing: turned off after about a day, and the overview says so
        receiver.status = 500
        set_subscriber_status(store, someone.id, "active", action="confirm", ctx=CLI, now=FIXED_NOW)
        for wait in (*BACKOFF, timedelta(0)):
            sender.run_until_idle()
            clock.now += wait
        page.get_by_role("link", name="Overview", exact=True).click()
        alert = page.get_by_role("link", name=f"webhook {receiver.url} turned off")
        expect(alert).to_be_visible()
        pages.check("overview-webhook-alert")
        alert.click()
        expect(page.get_by_role("alert")).to_contain_text("after repeated failure")
        receiver.status = 200
        page.get_by_role("button", name="Turn on").click()
        expect(page.get_by_role("status")).to_contain_text("Turned on")
        page.get_by_label("Failed deliveries of").select_option("the last 30 days")
        page.get_by_role("button", name="Send failed deliveries again").click()
        expect(page.get_by_role("status")).to_contain_text("1 failed deliveries")
        assert sender.run_until_idle().delivered == 1
        sender.close()
