"""Staff accounts in a real browser (Debian's Chromium through Playwright) against a real
server, the way a person does it, controls found by their visible labels: an owner invites,
the invitee chooses a password through the emailed link, registers a passkey with the
DevTools virtual authenticator and logs in with it (alone, and as the step after the
password), sets up an authenticator app; the new pages pass axe-core. WebAuthn needs a
secure context: the pages are opened on http://localhost (the relying party)."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from publisher.store import audit
from publisher.store.passkeys import list_passkeys
from publisher.store.staff import find_staff
from tests.admin_support import ADMIN_CONFIG, PASSWORD, STAFF, add_accounts
from tests.conftest import present
from tests.test_admin_browser import browser, log_in, new_page, status_of  # noqa: F401
from tests.test_staff_accounts import staff_mail
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser
INVITEE = "ina@example.org"
CHOSEN = "my own chosen password"


def authenticator(page) -> tuple[Any, str]:
    """A virtual platform authenticator with user verification for this page."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    found = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {"options": {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                     "hasUserVerification": True, "isUserVerified": True}},
    )  # fmt: skip
    return cdp, str(found["authenticatorId"])


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()
    assert page.url.endswith("/admin/login")


def test_invitation_passkey_and_authenticator_app(browser, project, store, tmp_path):  # noqa: F811
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        url = served.url.replace("127.0.0.1", "localhost")
        owner = new_page(browser)
        pages = Checked(owner, shots)
        log_in(owner, url, STAFF["owner"])
        owner.get_by_role("link", name="Staff", exact=True).click()
        owner.get_by_label("Email address").fill(INVITEE)
        owner.get_by_label("Role").select_option("editor")
        owner.get_by_role("button", name="Invite").click()
        assert status_of(owner) == f"Invited {INVITEE} as editor: the link works for 3 days."
        pages.check("staff-invited")

        page = new_page(browser)
        pages.page = page
        _, link = staff_mail(served, INVITEE)
        page.goto(url + link)
        pages.check("invitation")
        page.get_by_label("New password", exact=True).fill(CHOSEN)
        page.get_by_label("New password again").fill(CHOSEN)
        page.get_by_role("button", name="Set password").click()
        assert status_of(page) == "Your account is ready: log in."
        pages.check("login-after-invitation")
        log_in(page, url, INVITEE, CHOSEN)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()

        cdp, authenticator_id = authenticator(page)
        page.get_by_role("link", name="Your account").click()
        pages.check("account")
        page.get_by_label("Name of the new passkey").fill("Laptop")
        page.get_by_role("button", name="Add a passkey").click()
        expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
        assert page.get_by_role("status").inner_text().startswith("The passkey was added.")
        assert len(page.locator("#recovery-codes li").all()) == 10
        pages.check("recovery-codes")
        credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
        assert len(credentials["credentials"]) == 1
        ina = present(find_staff(store, INVITEE))
        assert [p.name for p in list_passkeys(store, ina.id)] == ["Laptop"]

        page.goto(f"{url}/admin/")
        log_out(page)
        page.get_by_role("button", name="Use a passkey").click()  # no password at all
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        log_out(page)
        log_in(page, url, INVITEE, CHOSEN)  # a password alone is not enough any more
        expect(
            page.get_by_label("Code from your authenticator app, or a recovery code")
        ).to_be_visible()
        pages.check("second-factor")
        page.get_by_role("button", name="Use your passkey").click()
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()

        page.get_by_role("link", name="Your account").click()
        page.get_by_role("button", name="Set up an authenticator app").click()
        expect(page.get_by_role("img", name="QR code of the authenticator key")).to_be_visible()
        pages.check("authenticator-app")
        key = page.locator("#totp-key").inner_text()
        page.get_by_label("Code shown by the app").fill(pyotp.TOTP(key).at(served.clock.now))
        page.get_by_role("button", name="Turn on").click()
        assert page.get_by_role("status").inner_text().startswith("The authenticator app is on.")
        log_out(page)

        page.get_by_role("link", name="Forgot your password?").click()
        pages.check("reset")
    actions = [e.action for e in audit.recent(store)]
    assert actions.count("second factor added") == 2 and "invitation accepted" in actions
    assert len(list(shots.glob("*.png"))) == len(pages.seen) == 8
    assert re.match(r"\$argon2id\$", ina.password_hash)


def test_password_change_reset_sessions_and_policy(browser, project, store, tmp_path):  # noqa: F811
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        url = served.url
        laptop, phone = new_page(browser), new_page(browser, 390)
        pages = Checked(laptop, shots)
        log_in(laptop, url, STAFF["editor"])
        log_in(phone, url, STAFF["editor"])
        laptop.get_by_role("link", name="Your account").click()
        assert laptop.locator("#sessions-table tbody tr").count() == 2
        laptop.get_by_label("Current password").fill(PASSWORD)
        laptop.get_by_label("New password (at least 12 characters)").fill(CHOSEN)
        laptop.get_by_label("New password again").fill(CHOSEN)
        laptop.get_by_role("button", name="Change password").click()
        assert status_of(laptop) == "Your password was changed; your other sessions were ended."
        assert laptop.locator("#sessions-table tbody tr").count() == 1
        pages.check("password-changed")
        phone.goto(f"{url}/admin/")
        assert phone.url.endswith("/admin/login")  # the other session ended

        phone.get_by_role("link", name="Forgot your password?").click()
        phone.get_by_label("Email address").fill(STAFF["editor"])
        phone.get_by_role("button", name="Email me a link").click()
        assert status_of(phone).startswith("If this address has a staff account")
        _, link = staff_mail(served, STAFF["editor"])
        phone.goto(url + link)
        phone.get_by_label("New password", exact=True).fill(PASSWORD)
        phone.get_by_label("New password again").fill(PASSWORD)
        phone.get_by_role("button", name="Set password").click()
        assert status_of(phone) == "Your password was changed: log in with the new one."
        laptop.goto(f"{url}/admin/")
        assert laptop.url.endswith("/admin/login")  # a reset ends every session
        log_in(phone, url, STAFF["editor"])
        expect(phone.get_by_role("heading", name="Overview")).to_be_visible()

        owner = new_page(browser)
        pages.page = owner
        log_in(owner, url, STAFF["owner"])
        owner.get_by_role("link", name="Staff", exact=True).click()
        owner.get_by_role("button", name=f"End the sessions of {STAFF['editor']}").click()
        assert status_of(owner) == f"Ended 1 session of {STAFF['editor']}."
        phone.goto(f"{url}/admin/")
        assert phone.url.endswith("/admin/login")
        owner.get_by_label("Who must use a second factor").select_option("senders")
        owner.get_by_role("button", name="Save").click()
        expect(owner.get_by_role("heading", name="Your account")).to_be_visible()  # owners send
        assert "The owners require a second factor" in owner.locator("main").inner_text()
        pages.check("second-factor-required")
    assert len(list(shots.glob("*.png"))) == len(pages.seen) == 2
