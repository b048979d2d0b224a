"""Approval in /admin over plain HTTP against a real server (issue 21): the send permission
on the staff page (owners only, editors only), approving the next edition on the campaign
page (the permission, self-approval, a stale version), the Approvals page, and
`publisher staff send`. Both databases."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from publisher.cli import app
from publisher.deliver import approval
from publisher.pipeline import collect_before_slot, compose_campaign, prepare_edition
from publisher.store import approvals, audit
from publisher.store.curation import Choices, change_curation
from publisher.store.staff import find_staff
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts, csrf_of, log_in, write_posts
from tests.conftest import FIXED_NOW, present
from tests.web_support import serve

APPROVAL_CONFIG = ADMIN_CONFIG + "approval:\n  editions: true\n"


@pytest.fixture
def served(project, store):
    add_accounts(store)
    write_posts(project)
    with serve(project, store, config_text=APPROVAL_CONFIG) as running:
        yield running


def client(served) -> httpx.Client:
    return httpx.Client(base_url=served.url, follow_redirects=True, timeout=30)


def post(http: httpx.Client, page: str, action: str, **data: str) -> httpx.Response:
    csrf = csrf_of(http.get(page).text)
    return http.post(action, data={"csrf": csrf, **data})


def editor(store):
    return present(find_staff(store, STAFF["editor"]))


def next_version(served, store) -> str:
    edition, rendered = present(prepare_edition(served.config, store, "weekly", now=FIXED_NOW))
    return approval.edition_version(edition, rendered.subject, editor=None).version


def version_on(page: str) -> str:
    marker = 'name="version" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def test_only_an_owner_grants_the_send_permission_and_only_to_an_editor(served, store):
    with client(served) as http:
        log_in(http, STAFF["editor"])
        refused = post(
            http, "/admin/", "/admin/staff/send-permission", email=STAFF["editor"], allow="yes"
        )
        assert refused.status_code == 403
    assert not approval.may_send(store, editor(store))
    with client(served) as http:
        log_in(http, STAFF["owner"])
        page = http.get("/admin/staff").text
        assert 'aria-label="Grant the send permission to edu@example.org"' in page
        assert "Grant the send permission to vera@example.org" not in page  # a viewer: never
        viewer = post(
            http, "/admin/staff", "/admin/staff/send-permission", email=STAFF["viewer"], allow="yes"
        )
        assert "Not changed: vera@example.org: viewers may not send" in viewer.text
        granted = post(
            http, "/admin/staff", "/admin/staff/send-permission", email=STAFF["editor"], allow="yes"
        )
        assert "edu@example.org may now send." in granted.text
        assert 'aria-label="Take the send permission of edu@example.org"' in granted.text
        assert approval.may_send(store, editor(store))
        taken = post(
            http, "/admin/staff", "/admin/staff/send-permission", email=STAFF["editor"], allow="no"
        )
        assert "edu@example.org may no longer send." in taken.text
    assert not approval.may_send(store, editor(store))
    assert [e.action for e in audit.recent(store)][:2] == [
        "send permission taken",
        "send permission granted",
    ]


def test_the_next_edition_is_approved_by_a_second_staff_member_with_the_permission(served, store):
    collect_before_slot(served.config, store, now=FIXED_NOW)
    change_curation(
        store, "weekly", lambda c: Choices(note="Rally Friday"), by=STAFF["editor"], now=FIXED_NOW
    )
    with client(served) as http:
        log_in(http, STAFF["editor"])
        page = http.get("/admin/campaigns/weekly").text
        assert "Approve this edition" not in page and 'id="approval"' in page
        # a direct POST with the right version is refused all the same
        forged = post(
            http,
            "/admin/campaigns/weekly",
            "/admin/campaigns/weekly/approve",
            version=next_version(served, store),
        )
        assert "Not approved: edu@example.org may not send" in forged.text
        forged = post(
            http,
            "/admin/campaigns/weekly",
            "/admin/campaigns/weekly/refuse",
            version=next_version(served, store),
            reason="no",
        )
        assert "Not refused: edu@example.org may not send" in forged.text
    approval.set_send_permission(
        store, editor(store), True, by=STAFF["owner"], now=FIXED_NOW, ip=None
    )
    with client(served) as http:
        log_in(http, STAFF["editor"])
        page = http.get("/admin/campaigns/weekly").text
        assert "You changed this edition's choices last" in page
    with client(served) as http:  # the owner approves what the page shows
        log_in(http, STAFF["owner"])
        page = http.get("/admin/campaigns/weekly").text
        version = version_on(page)
        stale = post(
            http, "/admin/campaigns/weekly", "/admin/campaigns/weekly/approve", version="0" * 64
        )
        assert "The edition changed since you looked" in stale.text
        unsaid = post(
            http, "/admin/campaigns/weekly", "/admin/campaigns/weekly/refuse",
            version=version, reason="   ",
        )  # fmt: skip
        assert "Not refused: say why weekly #1 is refused." in unsaid.text
        assert approvals.find_approval(store, "edition", "weekly", version) is None
        done = post(
            http, "/admin/campaigns/weekly", "/admin/campaigns/weekly/approve", version=version
        )
        assert "Approved weekly #1: it goes at its slot as it is now." in done.text
        assert "weekly #1 is <strong>approved</strong> by olga@example.org" in " ".join(
            done.text.split()
        )
    assert (
        present(approvals.find_approval(store, "edition", "weekly", version)).status == "approved"
    )
    record = present(
        compose_campaign(served.config, store, "weekly", now=FIXED_NOW + timedelta(hours=2))
    )
    approval.require_approved(served.config, store, "edition", record.id)  # the slot may send it


def test_the_approvals_page_and_the_overview_list_a_held_edition(served, store):
    collect_before_slot(served.config, store, now=FIXED_NOW)
    slot = datetime(2026, 11, 25, 14, 0, tzinfo=FIXED_NOW.tzinfo)
    record = present(compose_campaign(served.config, store, "weekly", now=FIXED_NOW, slot=slot))
    held = approval.Version("broadcast", "3", "v1", "Vote tomorrow", editor=STAFF["editor"])
    approval.ask(store, held, editor(store), now=FIXED_NOW, ip=None)
    with client(served) as http:
        log_in(http, STAFF["viewer"])
        page = " ".join(http.get("/admin/approvals").text.split())
        assert 'data-approval="weekly #1"' in page and "the schedule (slot" in page
        assert 'data-approval="Vote tomorrow"' in page and "edu@example.org" in page
        assert 'href="../admin/broadcasts/3"' in page
        overview = http.get("/admin/").text
        assert "weekly #1 waits for approval" in overview
        campaign = " ".join(http.get("/admin/campaigns/weekly").text.split())
        assert (
            "Waits for approval</strong>: weekly #1 is composed" in campaign
            and "so it is late" in campaign
        )
    version = present(approval.stored_edition_version(store, record.id))
    approval.approve(
        store, version, present(find_staff(store, STAFF["owner"])), now=FIXED_NOW, ip=None
    )
    with client(served) as http:
        log_in(http, STAFF["viewer"])
        assert 'data-approval="weekly #1"' not in http.get("/admin/approvals").text


def test_publisher_staff_send_grants_and_takes(project, store, database_url, monkeypatch):
    add_accounts(store)
    (project / "schedules.yaml").write_text(APPROVAL_CONFIG.format(public_url="https://x.example"))
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", database_url)
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(
            app, ["-c", str(project / "schedules.yaml"), *args], standalone_mode=False
        )

    granted = cli("staff", "send", STAFF["editor"])
    assert granted.exception is None and "edu@example.org may send" in granted.output
    assert "edu@example.org  editor" in cli("staff", "list").output
    assert "may send" in next(
        line for line in cli("staff", "list").output.splitlines() if "edu@" in line
    )
    viewer = cli("staff", "send", STAFF["viewer"])
    assert isinstance(viewer.exception, approval.PermissionRefused)
    taken = cli("staff", "send", STAFF["editor"], "--take")
    assert taken.exception is None and "edu@example.org may not send" in taken.output
    assert not approval.may_send(store, editor(store))
    assert [e.actor for e in audit.recent(store)][:2] == ["cli", "cli"]
