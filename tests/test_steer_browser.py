"""A real browser through the campaign page's steering (issue 21), on SQLite and PostgreSQL:
an owner sends the next edition now after a confirmation naming the count and the audience
(each person once), skips the next slot, undoes it, moves it (the overview shows the new
time, the daemon runs it then and not at its own time); and a `publisher send` killed with
SIGKILL mid-way (after its first batch, against a local SMTP server) is resumed from the
page: everyone gets the edition exactly once. axe-core on every page."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from publisher.schedule.daemon import Daemon
from publisher.store import ledger
from publisher.store import schedule_state as state
from publisher.store.editions import list_editions
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts
from tests.conftest import FIXED_NOW, ROOT, present
from tests.servers.smtp import SmtpServer
from tests.steer_support import REACHED, collect, outbox_recipients, seed
from tests.test_admin_browser import browser, log_in, new_page, status_of  # noqa: F401
from tests.test_schedule import Recorder
from tests.test_steer_http import NEXT_SLOT, wait_for_send
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser
MOVED_TO = FIXED_NOW.replace(hour=21, minute=45)  # 16:45 in New York


def test_send_now_skip_undo_and_move_from_the_campaign_page(
    browser,  # noqa: F811
    project,
    store,
    tmp_path,
    guide_shot,
):
    add_accounts(store)
    seed(project, store)
    page = new_page(browser)
    pages = Checked(page, tmp_path)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        collect(served, store)
        log_in(page, served.url, STAFF["owner"])
        page.goto(f"{served.url}/admin/campaigns/weekly")
        expect(page.locator("#next-slot")).to_contain_text("Next slot: Wed 25 Nov 2026, 09:00")
        pages.check("campaign")
        guide_shot(page, "steer-campaign", full_page=True)

        page.get_by_role("button", name="Send the next edition now…").click()
        question = "Send Weekly #1 to 3 people following labor, housing?"
        expect(page.locator("#send-question")).to_have_text(question)
        pages.check("send-confirm")
        guide_shot(page, "steer-send-confirm")
        page.get_by_role("button", name="Send to 3 people").click()
        expect(page.get_by_role("status").first).to_contain_text("Sending #1 now")
        wait_for_send()
        page.reload()
        expect(page.locator("#latest-send .outcome")).to_have_text("sent")
        assert outbox_recipients(served.outbox) == REACHED
        make_uncertain(store, "p4@example.org")
        page.reload()
        resend_uncertain(page, pages, guide_shot)
        assert outbox_recipients(served.outbox) == REACHED
        assert ledger.counts(store, list_editions(store, "weekly")[0].id)["sent"] == 3

        page.get_by_role("button", name="Skip the next slot").click()
        expect(page.get_by_role("status").first).to_contain_text(
            "Skipped: Wed 25 Nov 2026 09:00 EST"
        )
        expect(page.locator("#next-slot")).to_contain_text("skipped by olga@example.org")
        pages.check("skipped")
        page.get_by_role("button", name="Undo the change to the next slot").click()
        expect(page.get_by_role("status").first).to_contain_text("Undone")
        expect(page.locator("#next-slot")).not_to_contain_text("skipped")

        page.get_by_label("Move the next slot to (time in America/New_York)").fill(
            "2026-11-25T16:45"
        )
        page.get_by_role("button", name="Move the slot").click()
        expect(page.get_by_role("status").first).to_contain_text(
            "moved to Wed 25 Nov 2026 16:45 EST"
        )
        expect(page.locator("#next-slot")).to_contain_text("moved to Wed 25 Nov 2026, 16:45")
        pages.check("moved")
        guide_shot(page, "steer-moved", full_page=True)
        page.get_by_role("link", name="Overview").click()
        row = page.locator('tr[data-campaign="weekly"]')
        expect(row).to_contain_text("Wed 25 Nov 2026, 16:45 EST")
        expect(row).not_to_contain_text("Wed 25 Nov 2026, 09:00 EST")

    # the daemon's own slot logic, fixed clock: not at 09:00, once at 16:45
    recorder = Recorder()
    daemon = Daemon(served.config, store, run_slot=recorder, clock=lambda: NEXT_SLOT)
    assert daemon.dispatch("weekly", NEXT_SLOT, NEXT_SLOT).startswith("moved to")
    assert daemon.dispatch("weekly", NEXT_SLOT, MOVED_TO).startswith("sent")
    assert daemon.dispatch("weekly", NEXT_SLOT, MOVED_TO + timedelta(minutes=1)).startswith(
        "already taken"
    )
    assert recorder.runs == [("weekly", NEXT_SLOT)]
    assert present(state.get_slot(store, "weekly", NEXT_SLOT)).status == "sent"


def smtp_config(server: SmtpServer) -> str:
    head, _, _ = ADMIN_CONFIG.partition("delivery:")
    return head + (
        "delivery:\n  backend: smtp\n  backoff_base: 0.01\n  backoff_max: 0.05\n"
        f"  smtp:\n    host: 127.0.0.1\n    port: {server.port}\n    security: starttls\n"
        f"    ca_file: {server.ca_file}\n    timeout: 5\n    batch_size: 2\n    workers: 1\n"
    )


def killed_send(project, store) -> int:
    """`publisher send weekly`, killed with SIGKILL right after its first batch finished."""
    env = {
        **os.environ,
        "PUBLISHER_DATABASE_URL": store.url,
        "PUBLISHER_KILL_AT": "finish.after:1",
        "PUBLISHER_NOW": FIXED_NOW.isoformat(),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "publisher.cli", "-c", str(project / "schedules.yaml"),
         "send", "weekly"],
        env=env, capture_output=True, timeout=120, cwd=project,
    )  # fmt: skip
    return done.returncode


def test_a_send_killed_mid_way_is_resumed_from_the_page_exactly_once(
    browser,  # noqa: F811
    project,
    store,
    tmp_path,
    guide_shot,
):
    add_accounts(store)
    seed(project, store)
    page = new_page(browser)
    pages = Checked(page, tmp_path)
    with (
        SmtpServer(project) as smtp,
        serve(project, store, config_text=smtp_config(smtp)) as served,
    ):
        collect(served, store)
        assert killed_send(project, store) == -9  # reaped: its pid is gone, its leases free
        before = Counter(a for m in smtp.messages for a in m.recipients)
        assert len(before) == 2 and set(before.values()) == {1}  # its first batch of two
        [edition] = list_editions(store, "weekly")
        assert edition.status == "sending"
        log_in(page, served.url, STAFF["owner"])
        page.goto(f"{served.url}/admin/campaigns/weekly")
        expect(page.locator("#latest-send")).to_contain_text("#1, sending (inflight 1, sent 2")
        pages.check("interrupted")
        guide_shot(page, "steer-resume", full_page=True)
        page.get_by_role("button", name="Resume the send").click()
        expect(page.get_by_role("status").first).to_contain_text("Resuming the send")
        wait_for_send()
        page.reload()
        expect(page.locator("#latest-send .outcome")).to_have_text("sent")
        expect(page.get_by_role("button", name="Resume the send")).to_have_count(0)
        pages.check("resumed")
    received = Counter(a for m in smtp.messages for a in m.recipients)
    assert sorted(received) == REACHED and set(received.values()) == {1}


def make_uncertain(store, address: str) -> None:
    """As a send that stopped while this person's batch was with the provider leaves it."""
    from sqlalchemy import select, update

    from publisher.store.ledger import set_edition_status
    from publisher.store.models import DeliveryRow, EditionRow
    from publisher.store.subscribers import find_subscriber

    person = present(find_subscriber(store, email=address)).id
    with store.session() as session:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.subscriber_id == person)
            .values(status="uncertain")
        )
        editions = list(session.scalars(select(EditionRow.id)))
    for edition in editions:  # the send's end, as the sender records it (tally included)
        set_edition_status(store, edition, "uncertain")


def resend_uncertain(page, pages, guide_shot) -> None:
    """The page explains what resending means; the tick that the provider was checked is
    required; then the uncertain person is sent the edition again, once."""
    expect(page.locator("#latest-send .outcome")).to_have_text("sent with 1 uncertain")
    page.get_by_role("button", name="Resend uncertain…").click()
    expect(page.get_by_role("heading", name="What checking them means")).to_be_visible()
    pages.check("uncertain")
    guide_shot(page, "steer-uncertain", full_page=True)
    page.get_by_role("button", name="Resend the uncertain messages").click()
    # without the tick the form does not go (required): still the same page
    expect(page.get_by_role("heading", name="What checking them means")).to_be_visible()
    page.get_by_label("I checked the provider's activity: these messages did not go out").check()
    page.get_by_role("button", name="Resend the uncertain messages").click()
    expect(page.get_by_role("status").first).to_contain_text("Resending the uncertain")
    wait_for_send()
    page.reload()
    expect(page.locator("#latest-send .outcome")).to_have_text("sent")
