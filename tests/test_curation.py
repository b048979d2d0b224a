"""The next edition, curated: an editor's exclusions, pins, order, note and one-time subject
applied by compose (pure, with Items), rendered inert, recorded in the edition, cleared
after composing, audited (the store tests run on SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace

from publisher.compose.curation import EXCLUDED, Curation, clean_subject
from publisher.compose.edition import CampaignHistory, compose_edition
from publisher.deliver.mime import prepare_skeleton
from publisher.deliver.service import build_message
from publisher.pipeline import compose_campaign, prepare_edition, preview_email, unstored_edition
from publisher.render.email import render_edition, render_public
from publisher.store import audit
from publisher.store.curation import Choices, change_curation, clear_curation, get_curation
from publisher.store.editions import get_edition
from tests.conftest import present
from tests.test_compose import campaign, ids
from tests.test_compose_campaign import CAMPAIGN, collect_as_dated
from tests.test_render import WEB_URL
from tests.test_render_fixtures import (
    assert_golden,
    fixture_items,
    item,
    sample_campaign,
    sample_config,
)


def composed(now, curation: Curation, **overrides):
    return present(
        compose_edition(
            fixture_items(),
            campaign(**overrides),
            now=now,
            history=CampaignHistory(),
            curation=curation,
        )
    )


def reasons(edition) -> dict[str, str]:
    return {item.id.removeprefix("test:"): why for item, why in edition.left_out}


def test_an_excluded_item_is_left_out_with_the_editors_reason(fixed_now):
    edition = composed(fixed_now, Curation(excluded=frozenset({"test:recap"})))
    assert ids(edition, "news") == ["fair-workweek"]
    assert reasons(edition)["recap"] == EXCLUDED == "excluded by an editor"


def test_a_pinned_item_enters_though_older_than_the_lookback(fixed_now):
    plain = composed(fixed_now, Curation())
    assert reasons(plain)["ancient-news"].startswith("older than the lookback")
    edition = composed(fixed_now, Curation(pinned=frozenset({"test:ancient-news"})))
    assert ids(edition, "news") == ["ancient-news", "recap", "fair-workweek"]  # first
    assert "ancient-news" not in reasons(edition)


def test_a_pinned_item_counts_against_the_max_but_is_never_cut(fixed_now):
    # featured (max 1) takes the newest resource; pinning the older one puts it there and
    # the newest goes on to the next section that wants it, or is left out as over the max
    edition = composed(fixed_now, Curation(pinned=frozenset({"test:older-guide"})))
    assert ids(edition, "featured") == ["older-guide"]
    assert reasons(edition)["cba-toolkit"] == "over the max of section 'featured' (1)"
    both = Curation(pinned=frozenset({"test:older-guide", "test:cba-toolkit"}))
    assert sorted(ids(composed(fixed_now, both), "featured")) == ["cba-toolkit", "older-guide"]


def test_a_pinned_item_no_section_wants_goes_to_the_first_item_section(fixed_now):
    sections = [
        {"name": "posts", "kinds": ["article"], "max": 5},
        {"name": "news", "kinds": ["news"], "max": 5},
    ]
    plain = composed(fixed_now, Curation(), sections=sections)
    assert reasons(plain)["cba-toolkit"].startswith("no section takes it")
    edition = composed(
        fixed_now, Curation(pinned=frozenset({"test:cba-toolkit"})), sections=sections
    )
    assert ids(edition, "posts")[0] == "cba-toolkit"


def test_a_pin_does_not_bring_in_a_held_or_excluded_item(fixed_now):
    pins = frozenset({"test:tomorrow", "test:recap"})
    edition = composed(fixed_now, Curation(pinned=pins, excluded=frozenset({"test:recap"})))
    assert reasons(edition)["tomorrow"].startswith("held until its date")
    assert reasons(edition)["recap"] == EXCLUDED


def test_the_editors_order_sorts_a_section(fixed_now):
    assert ids(composed(fixed_now, Curation()), "news") == ["recap", "fair-workweek"]
    order = ("test:fair-workweek", "test:recap")
    assert ids(composed(fixed_now, Curation(order=order)), "news") == ["fair-workweek", "recap"]
    # unordered items follow the ordered ones, newest first
    partial = Curation(order=("test:wages-and-benefits",))
    assert ids(composed(fixed_now, partial), "posts") == ["wages-and-benefits", "sign-on-letter"]


def render_with(fixed_now, curation: Curation):
    config = sample_config()
    edition = present(
        compose_edition(
            fixture_items(),
            sample_campaign(config),
            now=fixed_now,
            history=CampaignHistory(),
            curation=curation,
        )
    )
    return edition, render_edition(edition, config.organisation, web_url=WEB_URL), config


NOTE = (
    "**Big week.** The [rent board](https://www.example.org/rent) meets Tuesday.\n\nSee you there."
)


def test_golden_digest_with_an_editors_note(fixed_now):
    edition, rendered, config = render_with(fixed_now, Curation(note=NOTE))
    assert_golden("economic-justice-weekly-note.html", rendered.html)
    assert_golden("economic-justice-weekly-note.txt", rendered.text)
    html, text = rendered.html, rendered.text
    # above the sections, in both parts and in the archive's public copy
    assert html.index("Big week.") < html.index(edition.items[0].title.split()[0])
    assert "<strong>Big week.</strong>" in html and 'href="https://www.example.org/rent"' in html
    assert text.index("Big week. The rent board meets Tuesday.") < text.index("See you there.")
    public = render_public(edition, config.organisation, web_url=WEB_URL)
    assert "<strong>Big week.</strong>" in public


def test_without_a_note_nothing_is_added(fixed_now):
    _edition, rendered, _config = render_with(fixed_now, Curation())
    assert 'class="note"' not in rendered.html
    assert_golden("economic-justice-weekly.html", rendered.html)  # the existing golden


def test_a_hostile_note_stays_inert_text(fixed_now):
    hostile = (
        "<script>alert(1)</script> {{ 7*7 }} %%EMAIL%% %%UNSUBSCRIBE_URL%% "
        "[plain](http://example.org/x) [relative](/x) <img src=x onerror=alert(1)>"
    )
    _edition, rendered, _config = render_with(fixed_now, Curation(note=hostile))
    html, text = rendered.html, rendered.text
    assert "<script" not in html and "alert(1)" not in html and "onerror" not in html
    assert "{{ 7*7 }}" in html and "49" not in html.split("note", 1)[1][:400]
    assert "{{ 7*7 }}" in text
    # %% cannot spell a placeholder: a reader sees the text, personalising fills nothing
    assert "&#37;&#37;EMAIL&#37;&#37;" in html and "%%UNSUBSCRIBE_URL%% " not in html
    assert "%%EMAIL%%" not in text and "%\u200c%EMAIL%\u200c%" in text
    # only https links survive (an email links only to https)
    assert 'href="http://example.org/x"' not in html and 'href="/x"' not in html


def test_a_hostile_one_time_subject_stays_one_line_of_literal_text(fixed_now):
    subject = "Hi %%NAME%% {{ 7*7 }}\r\nBcc: victim@example.org\u2028now"
    edition, rendered, config = render_with(fixed_now, Curation(subject=subject))
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert rendered.subject == "Hi %\u200c%NAME%\u200c% {{ 7*7 }} Bcc: victim@example.org now"
    assert clean_subject(subject) == "Hi %%NAME%% {{ 7*7 }} Bcc: victim@example.org now"
    stored = unstored_edition("economic-justice-weekly", edition, rendered, now=fixed_now)
    raw = preview_email(config, stored, now=fixed_now)
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in headers
    skeleton = prepare_skeleton(build_message(config, stored, now=fixed_now))
    assert skeleton.subject_header is not None  # no placeholder: one subject for everyone


def test_store_changes_count_revisions_and_clear(store, fixed_now):
    assert get_curation(store, "weekly").revision == 0
    first = change_curation(
        store, "weekly", lambda c: replace(c, note="Hi"), by="edu@example.org", now=fixed_now
    )
    second = change_curation(
        store, "weekly", lambda c: replace(c, pinned=("a",)), by="olga@example.org", now=fixed_now
    )
    assert (first.revision, second.revision) == (1, 2)
    assert get_curation(store, "weekly").choices == Choices(note="Hi", pinned=("a",))
    assert get_curation(store, "weekly").changed_by == "olga@example.org"
    assert not clear_curation(store, "weekly", revision=1)  # a newer change stays
    assert clear_curation(store, "weekly") and get_curation(store, "weekly").revision == 0


def test_composing_records_the_choices_clears_them_and_audits(make_config, store, fixed_now):
    config = make_config(CAMPAIGN)
    old = item("three-weeks-old", days_ago=21, kind="news")  # older than the 14-day lookback
    collect_as_dated(store, [*fixture_items(), old], fixed_now)

    def choose(c: Choices) -> Choices:
        return Choices(
            note="A note", pinned=("test:three-weeks-old",), excluded=("test:recap",),
            order=("test:fair-workweek", "test:three-weeks-old"), subject="Strike special",
        )  # fmt: skip

    change_curation(store, "weekly", choose, by="edu@example.org", now=fixed_now)
    edition, rendered = present(prepare_edition(config, store, "weekly", now=fixed_now))
    assert rendered.subject == "Strike special"  # the preview uses the saved choices
    record = present(compose_campaign(config, store, "weekly", now=fixed_now))
    stored = present(get_edition(store, record.id))
    assert stored.subject == "Strike special" and "A note" in stored.html
    news = [i.id for i in edition.sections[2].items]
    assert news == ["test:fair-workweek", "test:three-weeks-old"]
    kept = present(stored.curation)
    assert kept["note"] == "A note" and kept["pinned"] == ["test:three-weeks-old"]
    assert kept["changed_by"] == "edu@example.org" and kept["revision"] == 1
    assert get_curation(store, "weekly").revision == 0  # cleared: used once
    (entry,) = [e for e in audit.recent(store) if e.action == "compose with choices"]
    assert entry.target.startswith("weekly #1: choices of edu@example.org (note, 1 pinned")
    archive = (config.root / "archive" / "weekly" / "1.html").read_text(encoding="utf-8")
    assert "A note" in archive


def test_the_edge_refuses_a_multi_line_subject_an_unknown_item_and_no_csrf(project, store):
    import httpx

    from publisher.sources.collect import collect_all
    from publisher.store.sink import StoreSink
    from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts, csrf_of, log_in, write_posts
    from tests.web_support import serve

    add_accounts(store)
    write_posts(project)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        collect_all(served.config, StoreSink(store), now=served.clock.now)
        with httpx.Client(base_url=served.url, follow_redirects=True, timeout=30) as http:
            log_in(http, STAFF["editor"])
            token = csrf_of(http.get("/admin/campaigns/weekly").text)
            url = "/admin/campaigns/weekly"
            page = http.post(f"{url}/subject", data={"csrf": token, "subject": "Hi\nBcc: x@y.z"})
            assert "A subject is one line of at most 200 characters." in page.text
            page = http.post(f"{url}/subject", data={"csrf": token, "subject": "x" * 201})
            assert "A subject is one line" in page.text
            page = http.post(f"{url}/pin", data={"csrf": token, "item": "posts:nothing"})
            assert "That item is no longer stored or went out already." in page.text
            assert http.post(f"{url}/note", data={"note": "no token"}).status_code == 403
            assert get_curation(store, "weekly").revision == 0  # nothing was stored
            page = http.post(f"{url}/pin", data={"csrf": token, "item": "posts:rent"})
            assert "Pinned: Rent board meets Tuesday." in page.text
    assert get_curation(store, "weekly").choices.pinned == ("posts:rent",)
