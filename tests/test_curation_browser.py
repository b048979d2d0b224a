"""A real browser (Debian's Chromium) curates the next edition on the campaign page, on
SQLite and PostgreSQL: an editor writes a note, pins a left-out item, excludes one,
reorders, sets a one-time subject and sees each in the preview, then sends a test and the
email in the outbox carries the note, the order and the subject; a viewer sees the choices
and no control, and a forced POST is refused. axe-core on every page."""

from __future__ import annotations

import email
from email.policy import default

import pytest
from playwright.sync_api import expect

from publisher.pipeline import compose_campaign
from publisher.sources.collect import collect_all
from publisher.store import audit
from publisher.store.curation import get_curation
from publisher.store.sink import StoreSink
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts, write_posts
from tests.conftest import present
from tests.test_admin_browser import browser, log_in, new_page, status_of  # noqa: F401
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser

MORE = {  # labor news for the one section: three chosen, newest first
    "teachers": ("Teachers vote to strike", "2026-11-24T12:00:00Z"),
    "bakers": ("Bakers unionise", "2026-11-24T08:00:00Z"),
}


def write_more_posts(project) -> None:
    write_posts(project)  # "Nurses win their strike" (labor), "Rent board meets Tuesday"
    for slug, (title, date) in MORE.items():
        (project / "content" / f"{slug}.md").write_text(
            f"---\ntitle: {title}\ndate: {date}\nkind: news\ntopics: [labor]\n---\n{title}.\n",
            encoding="utf-8",
        )


def chosen(page) -> list[str]:
    return [t.split(" (")[0] for t in page.locator("li.chosen").all_inner_texts()]


def test_editor_curates_the_next_edition_and_sends_a_test(
    browser,  # noqa: F811
    project,
    store,
    tmp_path,
    guide_shot,
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    write_more_posts(project)
    page = new_page(browser)
    pages = Checked(page, shots)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        collect_all(served.config, StoreSink(store), now=served.clock.now)
        log_in(page, served.url, STAFF["editor"])
        page.get_by_role("link", name="weekly", exact=True).click()
        expect(page.locator("li.chosen").first).to_be_visible()
        assert chosen(page) == [
            "Teachers vote to strike",
            "Nurses win their strike",
            "Bakers unionise",
        ]
        frame = page.frame_locator("iframe.preview")

        page.get_by_label("Editor's note").fill("**Big week** for labor: {{ 7*7 }} %%EMAIL%%")
        page.get_by_role("button", name="Save note").click()
        expect(page.get_by_role("status")).to_have_text("Note saved.")
        expect(frame.get_by_text("Big week").first).to_be_visible()
        expect(frame.get_by_text("for labor: {{ 7*7 }}", exact=False).first).to_be_visible()
        pages.check("note-saved")
        guide_shot(page, "next-edition-note", full_page=True)

        page.get_by_role("button", name="Pin Rent board meets Tuesday").click()
        expect(page.get_by_role("status")).to_have_text("Pinned: Rent board meets Tuesday.")
        assert chosen(page)[0] == "Rent board meets Tuesday"
        expect(frame.get_by_text("Rent board meets Tuesday").first).to_be_visible()

        page.get_by_role("button", name="Exclude Bakers unionise").click()
        expect(page.get_by_role("status")).to_have_text("Excluded: Bakers unionise.")
        excluded = page.locator("li.left-out", has_text="Bakers unionise")
        expect(excluded).to_contain_text("excluded by an editor")
        expect(frame.get_by_text("Bakers unionise")).to_have_count(0)

        page.get_by_role("button", name="Move up Nurses win their strike").click()
        expect(page.get_by_role("status")).to_have_text("Moved up: Nurses win their strike.")
        order = ["Rent board meets Tuesday", "Nurses win their strike", "Teachers vote to strike"]
        assert chosen(page) == order
        page.get_by_role("button", name="Move down Rent board meets Tuesday").click()
        expect(page.get_by_role("status")).to_have_text("Moved down: Rent board meets Tuesday.")
        order = ["Nurses win their strike", "Rent board meets Tuesday", "Teachers vote to strike"]
        assert chosen(page) == order
        text_part = page.locator("pre.text-part").text_content() or ""
        assert text_part.index("Nurses win") < text_part.index("Rent board")
        assert text_part.index("Rent board") < text_part.index("Teachers vote")
        pages.check("curated")
        guide_shot(page, "next-edition-items", full_page=True)

        page.get_by_label("One-time subject").fill("Strike special {{ 7*7 }} %%NAME%%")
        page.get_by_role("button", name="Save subject").click()
        expect(page.get_by_role("status")).to_contain_text("The next edition's subject")
        subject = page.locator("dd.subject").inner_text().replace("\u200c", "")
        assert subject == "Strike special {{ 7*7 }} %%NAME%%"
        pages.check("subject-saved")

        page.get_by_role("button", name="Send a test to me").click()
        expect(page.get_by_role("status")).to_have_text("A test of #1 was sent to edu@example.org.")
        (sent,) = (served.outbox / "weekly" / "1").glob("test-*.eml")
        message = email.message_from_bytes(sent.read_bytes(), policy=default)
        assert str(message["Subject"]).replace("\u200c", "") == "Strike special {{ 7*7 }} %%NAME%%"
        text = present(message.get_body(("plain",))).get_content()
        assert "Big week for labor: {{ 7*7 }}" in text and "49" not in text
        positions = [text.index(title) for title in order]
        assert positions == sorted(positions) and "Bakers unionise" not in text
        assert text.index("Big week") < positions[0]  # the note above the sections
        html = present(message.get_body(("html",))).get_content()
        assert "<strong>Big week</strong>" in html
        guide_shot(page, "next-edition-test-sent")
        saved = get_curation(store, "weekly")
        assert saved.choices.subject == "Strike special {{ 7*7 }} %%NAME%%"
        assert saved.changed_by == STAFF["editor"] and saved.revision == 6

        # the slot comes: the edition goes out with the choices, which are then used up
        record = present(compose_campaign(served.config, store, "weekly", now=served.clock.now))
        page.goto(f"{served.url}/admin/editions/{record.id}")
        choices = page.locator("dl.choices")
        expect(choices).to_contain_text("**Big week** for labor")
        expect(choices).to_contain_text("Rent board meets Tuesday")  # pinned, by its title
        expect(choices).to_contain_text(STAFF["editor"])
        pages.check("edition-with-choices")
        page.goto(f"{served.url}/admin/campaigns/weekly")
        expect(page.locator("p.curated")).to_contain_text("No editor's choices")
        assert chosen(page) == ["Bakers unionise"]  # the others went out in #1

        # exclude, pin back, unpin, exclude again, then clear every choice
        page.get_by_role("button", name="Exclude Bakers unionise").click()
        expect(page.locator("li.left-out", has_text="Bakers unionise")).to_be_visible()
        page.get_by_role("button", name="Pin Bakers unionise").click()
        expect(page.locator("li.chosen", has_text="Bakers unionise")).to_contain_text("pinned")
        page.get_by_role("button", name="Unpin Bakers unionise").click()
        expect(page.get_by_role("status")).to_have_text("Unpinned: Bakers unionise.")
        expect(page.locator("li.chosen", has_text="Bakers unionise")).not_to_contain_text("pinned")
        page.get_by_role("button", name="Exclude Bakers unionise").click()
        expect(page.locator("li.left-out", has_text="Bakers unionise")).to_be_visible()
        page.get_by_role("button", name="Clear choices").click()
        expect(page.get_by_role("status")).to_contain_text("Choices cleared")
        assert chosen(page) == ["Bakers unionise"]
        assert get_curation(store, "weekly").revision == 0

    targets = {e.action: e.target for e in reversed(audit.recent(store))}  # the latest wins
    assert targets["pin"] == "weekly: Bakers unionise"
    assert targets["move up"] == "weekly: Nurses win their strike"
    assert targets["compose with choices"].startswith("weekly #1: choices of edu@example.org")
    assert "clear choices" in targets
    assert len(pages.seen) == 4


def test_a_viewer_sees_the_choices_and_no_controls(browser, project, store, tmp_path):  # noqa: F811
    from dataclasses import replace

    from publisher.store.curation import change_curation

    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    write_more_posts(project)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        collect_all(served.config, StoreSink(store), now=served.clock.now)
        change_curation(
            store, "weekly", lambda c: replace(c, note="Hello"), by=STAFF["editor"],
            now=served.clock.now,
        )  # fmt: skip
        viewer = new_page(browser, 390)
        checked = Checked(viewer, shots)
        log_in(viewer, served.url, STAFF["viewer"])
        viewer.get_by_role("link", name="weekly", exact=True).click()
        expect(viewer.locator("p.curated")).to_contain_text(f"by {STAFF['editor']}")
        for name in ("Save note", "Save subject", "Clear choices", "Pin", "Exclude", "Move up"):
            expect(viewer.get_by_role("button", name=name)).to_have_count(0)
        expect(viewer.get_by_label("Editor's note")).to_have_count(0)
        checked.check("campaign-as-viewer")
        token = viewer.locator("form.logout input[name=csrf]").input_value()
        for verb, form in (
            ("note", {"note": "Taken over"}),
            ("subject", {"subject": "Taken over"}),
            ("pin", {"item": "posts:rent"}),
            ("exclude", {"item": "posts:strike"}),
            ("move", {"item": "posts:strike", "direction": "up"}),
            ("clear", {}),
        ):
            refused = viewer.request.post(
                f"{served.url}/admin/campaigns/weekly/{verb}", form={"csrf": token, **form}
            )
            assert refused.status == 403, verb
        assert get_curation(store, "weekly").choices.note == "Hello"
        assert get_curation(store, "weekly").revision == 1
