"""A staff member keeps the list of people in a real browser (Debian's Chromium through
Playwright) against a real server, on SQLite and PostgreSQL: import a CSV with bad rows (the
report first, nothing written until confirmed), add a person, unsubscribe a person; a viewer
is refused every write; at 375 px a long address wraps (no horizontal scroll). Every page is
checked with axe-core (no serious or critical violation); the key steps are the staff
guide's screenshots (docs/staff/people.md)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from publisher.store.consent import CLI, set_subscriber_status
from publisher.store.subscriber_record import history
from publisher.store.subscribers import find_subscriber, iter_subscribers
from publisher.subscribers.consent import add_by_staff
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts
from tests.conftest import FIXED_NOW, present
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401 (fixture)
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser

LONG = (
    "averyveryverylongaddressofsomeonewholikeslongnamesverymuch"
    "@campaigns-and-organising.example-organisation-of-tenants.org"
)
NOTE = "sign-up sheet at the 3 Dec town hall"
SHEET = (
    "email,name,topics\n"
    "ana@example.org,Ana Lima,labor\n"
    "not an address,Bob,\n"
    "ana@example.org,Ana twice,\n"
    "left@example.org,Left,\n"
    f"{LONG},Long,housing\n"
)


def addresses(store) -> dict[str, str]:
    return {s.email: s.status for s in iter_subscribers(store)}


WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)
  .slice(0, 10)"""


def no_horizontal_scroll(page) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    wide = page.evaluate(WIDE) if overflow > 0 else []
    assert overflow <= 0, f"{page.url}: {overflow}px of horizontal scroll: {wide}"
    for region in page.locator("div.scroll:has(table.people)").all():  # addresses wrap inside
        assert region.evaluate("r => r.scrollWidth - r.clientWidth") <= 0


def test_import_add_and_unsubscribe_people(browser, project, store, tmp_path, guide_shot):  # noqa: F811
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    left, _ = add_by_staff(store, "left@example.org", name="Left", topics=[], now=FIXED_NOW)
    set_subscriber_status(store, left.id, "unsubscribed", action="x", ctx=CLI, now=FIXED_NOW)
    sheet = tmp_path / "town-hall.csv"
    sheet.write_text(SHEET, encoding="utf-8")
    page = new_page(browser)
    pages = Checked(page, shots)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        log_in(page, served.url, STAFF["editor"])
        page.get_by_role("link", name="Subscribers", exact=True).click()
        page.get_by_role("link", name="Import a CSV file").click()
        expect(page.get_by_role("heading", name="Import people")).to_be_visible()
        pages.check("people-import")
        page.get_by_label("CSV file").set_input_files(str(sheet))
        page.get_by_label("Where consent came from").fill(NOTE)
        page.get_by_role("button", name="Preview import").click()
        expect(page.get_by_role("heading", name="Import preview")).to_be_visible()
        rows = page.locator("#import-rows tbody tr")
        expect(rows).to_have_count(5)
        expect(page.locator('#import-rows tr[data-line="3"] td').last).to_contain_text(
            "skip: invalid email address"
        )
        expect(page.locator('#import-rows tr[data-line="4"] td').last).to_have_text(
            "skip: duplicate address ana@example.org (first one kept)"
        )
        expect(page.locator('#import-rows tr[data-line="5"] td').last).to_have_text(
            "skip: unsubscribed: only they can subscribe again"
        )
        expect(page.locator('#import-totals tr[data-outcome="add"] td')).to_have_text("2")
        assert addresses(store) == {"left@example.org": "unsubscribed"}  # nothing written yet
        pages.check("people-import-preview")
        guide_shot(page, "people-import-preview", full_page=True)

        page.get_by_role("button", name="Confirm import").click()
        expect(page.get_by_role("status")).to_have_text("Imported: 2 added, 0 updated.")
        assert addresses(store) == {
            "left@example.org": "unsubscribed", "ana@example.org": "active", LONG: "active",
        }  # fmt: skip
        pages.check("people-imported")

        page.get_by_role("link", name="Subscribers", exact=True).click()
        page.get_by_role("link", name="Add a person").click()
        page.get_by_label("Email address").fill("cleo@example.org")
        page.get_by_label("Name").fill("Cleo Martin")
        page.get_by_label("Labor").check()
        page.get_by_label("Where consent came from").fill("asked at the 5 Dec picket")
        pages.check("people-add")
        guide_shot(page, "people-add")
        page.get_by_role("button", name="Add this person").click()
        expect(page.get_by_role("status")).to_have_text(
            "Added cleo@example.org: active from now on."
        )
        cleo = present(find_subscriber(store, email="cleo@example.org"))
        assert (cleo.name, cleo.topics, cleo.status) == ("Cleo Martin", ("labor",), "active")
        assert history(store, cleo.id)[0]["consent_text"] == "asked at the 5 Dec picket"
        pages.check("person")

        page.get_by_role("button", name="Unsubscribe").click()
        expect(page.get_by_role("status")).to_have_text(
            "Unsubscribed cleo@example.org: they get no more email."
        )
        expect(page.locator("dd.status")).to_have_text("unsubscribed")
        assert present(find_subscriber(store, id=cleo.id)).status == "unsubscribed"
        expect(page.get_by_role("button", name="Email them a link to resubscribe")).to_be_visible()
        pages.check("person-unsubscribed")
        guide_shot(page, "people-unsubscribed")

        narrow = new_page(browser, width=375)
        narrow_pages = Checked(narrow, shots)
        log_in(narrow, served.url, STAFF["editor"])
        long_one = present(find_subscriber(store, email=LONG))
        narrow.goto(f"{served.url}/admin/subscribers/{long_one.id}")
        expect(narrow.get_by_role("heading", name=LONG)).to_be_visible()
        no_horizontal_scroll(narrow)
        narrow_pages.check("person-375")
        narrow.goto(f"{served.url}/admin/subscribers?q=averyvery")
        expect(narrow.get_by_role("link", name=LONG)).to_be_visible()
        no_horizontal_scroll(narrow)
        narrow.get_by_role("link", name="Import a CSV file").click()
        narrow.get_by_label("CSV file").set_input_files(str(sheet))
        narrow.get_by_label("Where consent came from").fill(NOTE)
        narrow.get_by_role("button", name="Preview import").click()
        expect(narrow.get_by_role("heading", name="Import preview")).to_be_visible()
        no_horizontal_scroll(narrow)
        narrow_pages.check("import-preview-375")


def test_a_viewer_is_refused_every_write(browser, project, store, tmp_path):  # noqa: F811
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    kim, _ = add_by_staff(store, "kim@example.org", name="Kim", topics=[], now=FIXED_NOW)
    before = addresses(store)
    page = new_page(browser)
    pages = Checked(page, shots)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        log_in(page, served.url, STAFF["viewer"])
        page.get_by_role("link", name="Subscribers", exact=True).click()
        expect(page.get_by_role("heading", name="Subscribers", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name="Add a person")).to_have_count(0)
        expect(page.get_by_role("link", name="Import a CSV file")).to_have_count(0)
        expect(page.get_by_role("button", name="Download subscribers.csv")).to_have_count(0)
        page.goto(f"{served.url}/admin/subscribers/{kim.id}")
        expect(page.locator("dd.status")).to_have_text("active")
        expect(page.get_by_role("button", name="Unsubscribe")).to_have_count(0)
        expect(page.get_by_role("button", name="Save name and topics")).to_have_count(0)
        pages.check("viewer-person")
        csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
        for path in ("subscribers/new", "subscribers/import"):
            page.goto(f"{served.url}/admin/{path}")
            expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        pages.check("viewer-refused")
        # the forms a viewer never sees, posted anyway with the viewer's own valid token
        for path, form in (
            ("subscribers/new", {"email": "x@example.org", "note": NOTE}),
            (f"subscribers/{kim.id}/edit", {"name": "Changed"}),
            (f"subscribers/{kim.id}/unsubscribe", {}),
            (f"subscribers/{kim.id}/resubscribe", {}),
            ("subscribers/export", {}),
        ):
            answer = page.request.post(f"{served.url}/admin/{path}", form={"csrf": csrf} | form)
            assert answer.status == 403, path
    assert addresses(store) == before
    assert present(find_subscriber(store, id=kim.id)).name == "Kim"
