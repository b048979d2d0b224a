"""A real browser (Debian's Chromium driven by Playwright) through the whole subscriber
journey against a real server: sign up -> the confirmation .eml in the outbox -> open the
link -> confirm -> change topics and pause -> unsubscribe. Every page is screenshotted into
the test's temp folder and checked with axe-core: no serious or critical violation."""

from __future__ import annotations

import email
import os
import re
from datetime import timedelta
from email.policy import default
from pathlib import Path

import pytest
from playwright.sync_api import expect

from publisher.store.subscriber_record import paused_until
from publisher.store.subscribers import find_subscriber
from tests.conftest import ROOT, present
from tests.web_support import serve

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.map(n => n.target.join(' '))}));
}"""

if os.environ.get("PUBLISHER_SKIP_BROWSER") == "1":  # only by explicit choice
    pytest.skip("PUBLISHER_SKIP_BROWSER=1", allow_module_level=True)


class Checked:
    """Screenshots and axe for every page the journey reaches."""

    def __init__(self, page, folder: Path) -> None:
        self.page, self.folder = page, folder
        self.seen: list[str] = []

    def check(self, name: str) -> None:
        self.page.screenshot(
            path=str(self.folder / f"{len(self.seen):02d}-{name}.png"), full_page=True
        )
        self.page.add_script_tag(path=str(AXE))
        violations = self.page.evaluate(AXE_RUN)
        bad = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert bad == [], f"{name}: {bad}"
        self.seen.append(name)


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium (make test does)"
    assert AXE.exists(), "run `npm ci` for axe-core (make test does)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # bypass_csp: our pages allow no script at all, axe must be injected
        context = browser.new_context(bypass_csp=True, viewport={"width": 390, "height": 844})
        yield context.new_page()
        browser.close()


def _confirm_link(outbox: Path) -> str:
    (path,) = sorted((outbox / "confirmations" / "0").glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=default)
    text = present(message.get_body(("plain",))).get_content()
    return present(re.search(r"(http://\S+/confirm\?token=\S+)", text)).group(1)


def test_sign_up_confirm_preferences_pause_unsubscribe(browser_page, project, store, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = browser_page
    with serve(project, store) as served:
        pages = Checked(page, shots)
        page.goto(f"{served.url}/subscribe")
        pages.check("subscribe")
        page.get_by_label("Email address").fill("not an address")
        page.get_by_role("button", name="Subscribe").click()
        expect(page.get_by_text("Enter an email address like")).to_be_visible()
        pages.check("subscribe-errors")
        page.get_by_label("Name (optional)").fill("Ana Lima")
        page.get_by_label("Email address").fill("ana@example.org")
        page.get_by_label("Labor").check()
        page.get_by_label("I agree to receive email").check()
        page.get_by_role("button", name="Subscribe").click()
        expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
        pages.check("check-inbox")
        served.wait_for_mail(1)  # stored and mailed after the answer
        assert present(find_subscriber(store, email="ana@example.org")).status == "pending"

        page.goto(_confirm_link(served.outbox))
        pages.check("confirm")
        assert present(find_subscriber(store, email="ana@example.org")).status == "pending"
        page.get_by_role("button", name="Confirm my subscription").click()
        expect(page.get_by_role("heading", name="You are subscribed")).to_be_visible()
        pages.check("subscribed")
        assert present(find_subscriber(store, email="ana@example.org")).status == "active"

        page.get_by_role("link", name="Choose your topics").click()
        pages.check("preferences")
        page.get_by_label("Housing").check()
        page.get_by_label("Labor").uncheck()
        page.get_by_label("Pause email").select_option("4")
        page.get_by_role("button", name="Save preferences").click()
        assert page.get_by_role("status").inner_text() == "Your preferences are saved."
        pages.check("preferences-saved")
        ana = present(find_subscriber(store, email="ana@example.org"))
        assert ana.topics == ("housing",)
        assert paused_until(store, ana.id, now=served.clock.now) == served.clock.now + timedelta(
            weeks=4
        )

        page.goto(f"{served.url}/unsubscribe?token={ana.token}")
        pages.check("unsubscribe")
        page.get_by_role("button", name="Unsubscribe").click()
        expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
        pages.check("unsubscribed")
        assert present(find_subscriber(store, email="ana@example.org")).status == "unsubscribed"

        page.goto(f"{served.url}/preferences?token=tampered")
        pages.check("invalid-link")
    assert len(list(shots.glob("*.png"))) == len(pages.seen) == 10


def test_the_proof_of_work_is_solved_by_the_browser_under_our_policy(project, store):
    """`subscribers.proof_of_work`: our own script, allowed by the page's policy (no
    bypass here), solves the challenge before the form goes."""
    from playwright.sync_api import sync_playwright

    from tests.web_support import WEB_CONFIG

    config = WEB_CONFIG + "subscribers:\n  proof_of_work: true\n"
    with serve(project, store, config_text=config) as served, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context().new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{served.url}/subscribe")
        page.get_by_label("Email address").fill("ana@example.org")
        page.get_by_label("I agree to receive email").check()
        page.get_by_role("button", name="Subscribe").click()
        page.get_by_role("heading", name="Check your inbox").wait_for(timeout=60_000)
        browser.close()
        served.wait_for_mail(1)  # stored and mailed after the answer
    assert [e for e in errors if "Content Security Policy" in e] == []  # (a favicon 404 is)
    assert present(find_subscriber(store, email="ana@example.org")).status == "pending"


def test_the_form_framed_on_the_organisations_site_still_signs_up(project, store, tmp_path):
    """The embed of staff.md: our page in an iframe on the website (another origin here:
    localhost beside 127.0.0.1). The Origin check must let its posts through."""
    import functools
    import http.server
    import threading

    from playwright.sync_api import sync_playwright

    from tests.web_support import WEB_CONFIG, free_port

    site = tmp_path / "site"
    site.mkdir()
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    website = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=website.serve_forever, daemon=True).start()
    config = WEB_CONFIG.replace("https://www.example.org", f"http://localhost:{port}")
    try:
        with serve(project, store, config_text=config) as served, sync_playwright() as p:
            (site / "index.html").write_text(
                f'<!doctype html><title>Org</title><iframe title="Subscribe" '
                f'src="{served.url}/subscribe?form=homepage" style="height:900px"></iframe>'
            )
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_context().new_page()
            page.goto(f"http://localhost:{port}/index.html")
            frame = page.frame_locator("iframe")
            frame.get_by_label("Email address").fill("ana@example.org")
            frame.get_by_label("I agree to receive email").check()
            frame.get_by_role("button", name="Subscribe").click()
            frame.get_by_role("heading", name="Check your inbox").wait_for(timeout=30_000)
            browser.close()
            served.wait_for_mail(1)  # stored and mailed after the answer
    finally:
        website.shutdown()
    assert present(find_subscriber(store, email="ana@example.org")).status == "pending"
