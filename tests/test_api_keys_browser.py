"""The API keys page in a real browser against a real server, on SQLite and PostgreSQL: an
owner makes a key, sees its secret once, the key works against the API, is listed with its
last use, and is revoked; an editor has no such page. Every page is checked with axe-core."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from publisher.store import audit
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401 - the fixture
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser


def test_an_owner_makes_a_key_sees_it_once_and_revokes_it(
    browser,  # noqa: F811 - the fixture imported above
    project,
    store,
    tmp_path,
    guide_shot,
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        page = new_page(browser)
        pages = Checked(page, shots)
        log_in(page, served.url, STAFF["owner"])
        page.get_by_role("link", name="API keys").click()
        expect(page.get_by_role("heading", name="API keys", exact=True)).to_be_visible()
        pages.check("api-keys-empty")

        page.get_by_label("Name").fill("CRM sync")
        page.get_by_label("subscribers:read").check()
        guide_shot(page, "api-keys-make")
        page.get_by_role("button", name="Make the key").click()
        secret = page.get_by_label("Secret of CRM sync")
        expect(secret).to_be_visible()
        token = secret.input_value()
        assert token.startswith("pk_")
        guide_shot(page, "api-keys-made")
        pages.check("api-keys-made")

        answer = httpx.get(
            f"{served.url}/api/v1/subscribers", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200
        page.get_by_role("link", name="API keys").click()
        expect(page.get_by_role("row", name="CRM sync")).to_contain_text("subscribers:read")
        assert token not in page.content()  # shown once only
        row = page.get_by_role("row", name="CRM sync")
        assert "never" not in row.locator("td").nth(3).inner_text()  # last used: now

        page.get_by_role("button", name="Revoke CRM sync").click()
        expect(page.get_by_role("status")).to_have_text("The key was revoked: it no longer works.")
        expect(page.get_by_role("row", name="CRM sync")).to_contain_text("revoked")
        pages.check("api-keys-revoked")
        answer = httpx.get(
            f"{served.url}/api/v1/subscribers", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 401
        actions = [e.action for e in audit.recent(store) if e.actor == STAFF["owner"]]
        assert "api key made" in actions and "api key revoked" in actions

        editor = new_page(browser)
        log_in(editor, served.url, STAFF["editor"])
        expect(editor.get_by_role("link", name="Overview")).to_be_visible()
        assert editor.get_by_role("link", name="API keys").count() == 0
        editor.goto(f"{served.url}/admin/api-keys")
        expect(editor.get_by_role("heading", name="Not allowed")).to_be_visible()
