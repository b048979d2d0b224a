"""Rendering editions: golden email, HTML properties, personalisation, size, bad templates."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

import publisher.render.mjml as mjml_module
from publisher.compose.edition import CampaignHistory, compose_edition
from publisher.config import CampaignConfig, Colours
from publisher.errors import RenderError, TemplateError
from publisher.render import PLACEHOLDERS, personalise, subscriber_url
from publisher.render.checks import colour_pairs, contrast_ratio
from publisher.render.email import KB, archive_url, render_edition
from publisher.render.environment import BUILTIN_TEMPLATES
from tests.conftest import present
from tests.test_render_fixtures import (
    assert_golden,
    fixture_items,
    item,
    sample_campaign,
    sample_config,
)

WEB_URL = "https://www.example.org/news/archive/economic-justice-weekly/1.html"


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser


def render_sample(fixed_now, items=None, campaign=None):
    config = sample_config()
    campaign = campaign or sample_campaign(config)
    edition = present(
        compose_edition(
            fixture_items() if items is None else items,
            campaign,
            now=fixed_now,
            history=CampaignHistory(),
        )
    )
    return edition, render_edition(edition, config.organisation, web_url=WEB_URL)


@pytest.fixture
def compiles(monkeypatch):
    """Count MJML compiles (the real compiler still runs)."""
    calls = []
    real = mjml_module.mjml2html

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mjml_module, "mjml2html", counting)
    return calls


def test_golden_email_for_the_sample_campaign(fixed_now):
    _edition, rendered = render_sample(fixed_now)
    assert rendered.subject == "Economic Justice Weekly — 25 November 2026"
    assert_golden("economic-justice-weekly.html", rendered.html)
    assert_golden("economic-justice-weekly.txt", rendered.text)


def test_html_is_complete_and_accessible(fixed_now):
    edition, rendered = render_sample(fixed_now)
    html = rendered.html
    doc = parse(html)
    for marker in ("{{", "{%", "<mj-", "</mj-", "<mjml"):
        assert marker not in html
    root = next(attrs for tag, attrs in doc.tags if tag == "html")
    assert (root["lang"], root["dir"]) == ("en", "ltr")
    hrefs = {attrs.get("href") for tag, attrs in doc.tags if tag == "a"}
    text = " ".join(doc.text)
    assert len(edition.items) == 5
    for selected in edition.items:
        assert selected.title in text
        assert selected.url in hrefs
    images = [attrs for tag, attrs in doc.tags if tag == "img"]
    assert images
    for attrs in images:
        assert attrs.get("alt"), attrs
        assert attrs.get("width"), attrs
    # escaping: a title with markup characters arrives as text, not as markup
    assert "Wages &amp; &lt;Benefits&gt;" in html
    # preheader, view in browser, preferences, unsubscribe, reason, postal address
    assert "New resources, posts and news" in html
    assert WEB_URL in hrefs
    assert {"%%PREFERENCES_URL%%", "%%UNSUBSCRIBE_URL%%"} <= hrefs
    assert "because you signed up" in text
    assert "1 Civic Plaza, Suite 200" in text
    assert "Join a steering committee" in text


def test_styles_arrive_inline(fixed_now):
    _edition, rendered = render_sample(fixed_now)
    doc = parse(rendered.html)
    h3 = [attrs for tag, attrs in doc.tags if tag == "h3"]
    assert h3 and all("font-size: 17px" in (a.get("style") or "") for a in h3)
    meta = [a for tag, a in doc.tags if "meta" in (a.get("class") or "").split()]
    assert meta and all("color: #595959" in (a.get("style") or "") for a in meta)
    # the button's own colours win over the generic link rule
    buttons = [a for tag, a in doc.tags if tag == "a" and "background" in (a.get("style") or "")]
    assert buttons and "color: #ffffff" in (buttons[0]["style"] or "")


def test_text_part_is_wrapped_with_links_listed(fixed_now):
    edition, rendered = render_sample(fixed_now)
    # As a recipient gets it: a real token makes the footer links long.
    received = personalise(
        rendered.text,
        name="Alexandria Ocasio-Fernández",
        unsubscribe_url=subscriber_url("https://www.example.org/news", "unsubscribe", "t" * 43),
        preferences_url=subscriber_url("https://www.example.org/news", "preferences", "t" * 43),
    )
    lines = received.splitlines()
    for line in lines:  # a long URL stands alone on its line, never after words
        assert len(line) <= 78 or " " not in line.strip(), line
    for selected in edition.items:
        assert selected.title in rendered.text
        assert any(line.strip().endswith(selected.url) for line in lines)
    assert "Unsubscribe:\n%%UNSUBSCRIBE_URL%%" in rendered.text
    assert "&amp;" not in rendered.text  # text is never HTML-escaped
    assert 'Wages & <Benefits>: a "fair" fall' in rendered.text


def test_thousand_recipients_one_compile(fixed_now, compiles):
    _edition, rendered = render_sample(fixed_now)
    assert len(compiles) == 1
    urls = set()
    for n in range(1000):
        html = personalise(
            rendered.html,
            name=f"Reader {n}" if n % 2 else None,
            unsubscribe_url=f"https://www.example.org/news/unsubscribe?token=t{n:04d}",
            preferences_url=f"https://www.example.org/news/preferences?token=t{n:04d}",
        )
        assert not any(p in html for p in PLACEHOLDERS)
        urls.update(re.findall(r"unsubscribe\?token=t\d{4}", html))
        if n == 1:
            assert "Hello Reader 1," in html
        if n == 2:
            assert "Hello friend," in html
    assert len(urls) == 1000
    assert len(compiles) == 1


def test_personalise_escapes_for_html_not_for_text():
    html = "<!doctype html><p>Hi %%NAME%%</p><a href='%%UNSUBSCRIBE_URL%%'>u</a>"
    out = personalise(
        html,
        name="Ann & <Bob>",
        unsubscribe_url="https://x/u?a=1&b=2",
        preferences_url="https://x/p",
    )
    assert "Ann &amp; &lt;Bob&gt;" in out and "a=1&amp;b=2" in out
    text = personalise(
        "Hi %%NAME%% %%PREFERENCES_URL%%",
        name="Ann & Bob",
        unsubscribe_url="u",
        preferences_url="https://x/p?a&b",
    )
    assert text == "Hi Ann & Bob https://x/p?a&b"
    assert personalise("Hi %%NAME%%", name="  ", unsubscribe_url="", preferences_url="") == (
        "Hi friend"
    )


def big_campaign(featured: int, listed: int) -> CampaignConfig:
    return sample_campaign().model_copy(
        update={
            "sections": [
                sample_campaign().sections[0].model_copy(update={"max": featured}),
                sample_campaign()
                .sections[1]
                .model_copy(update={"kinds": ["article"], "max": min(listed, 50)}),
                sample_campaign().sections[3],
            ]
        }
    )


def many_items(resources: int, articles: int) -> list:
    long = "A summary that runs on for a while to look like a real one. " * 6
    return [
        item(f"resource-{n}", days_ago=0.1 + n / 100, kind="resource", summary=long)
        for n in range(resources)
    ] + [item(f"article-{n}", days_ago=0.1 + n / 100, summary=long) for n in range(articles)]


def test_a_thirty_item_edition_stays_under_90_kb(fixed_now):
    edition, rendered = render_sample(fixed_now, many_items(3, 27), big_campaign(3, 27))
    assert len(edition.items) == 30
    assert rendered.size < 90 * KB, rendered.size
    assert rendered.warnings == []


def test_an_edition_above_102_kb_fails_naming_campaign_and_size(fixed_now):
    with pytest.raises(RenderError) as info:
        render_sample(fixed_now, many_items(30, 0), big_campaign(30, 1))
    message = str(info.value)
    assert "economic-justice-weekly" in message
    assert re.search(r"\d+\.\d KB", message) and "102 KB" in message


def test_default_and_sample_colours_meet_wcag_aa():
    for colours in (Colours(), sample_config().organisation.colours):
        for what, fg, bg in colour_pairs(colours):
            assert contrast_ratio(fg, bg) >= 4.5, what


def test_archive_url():
    assert archive_url("https://x.org/news/", "c", 3) == "https://x.org/news/archive/c/3.html"


# --- bad templates and bad input --------------------------------------------------------


def render_with(tmp_path, fixed_now, files: dict[str, str], items=None):
    folder = tmp_path / "templates"
    for name, source in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(source, encoding="utf-8")
    config = sample_config()
    edition = present(
        compose_edition(
            fixture_items() if items is None else items,
            sample_campaign(config),
            now=fixed_now,
            history=CampaignHistory(),
        )
    )
    return render_edition(
        edition, config.organisation, web_url=WEB_URL, search_path=(folder, BUILTIN_TEMPLATES)
    )


def test_jinja_syntax_error_names_file_and_line(tmp_path, fixed_now):
    source = "{% extends 'base.mjml' %}\n{% block content %}\n{% if %}\n{% endblock %}\n"
    with pytest.raises(TemplateError) as info:
        render_with(tmp_path, fixed_now, {"digest.mjml": source})
    assert re.search(r"digest\.mjml:3: syntax error", str(info.value)), str(info.value)


def test_undefined_variable_names_variable_and_template(tmp_path, fixed_now):
    partial = (BUILTIN_TEMPLATES / "sections" / "list.mjml").read_text()
    partial = partial.replace("{{ item.title }}", "{{ item.headline }}")
    with pytest.raises(TemplateError) as info:
        render_with(tmp_path, fixed_now, {"sections/list.mjml": partial})
    message = str(info.value)
    assert "headline" in message and "sections/list.mjml" in message
    assert "undefined" in message


def test_unknown_mjml_element_and_attribute_are_rejected(tmp_path, fixed_now):
    cta = (BUILTIN_TEMPLATES / "sections" / "cta.mjml").read_text()
    with pytest.raises(TemplateError, match=r"digest\.mjml.*unknown MJML element <mj-colum>"):
        bad = cta.replace("mj-column", "mj-colum")
        render_with(tmp_path, fixed_now, {"sections/cta.mjml": bad})
    with pytest.raises(TemplateError, match=r"unknown attribute 'colour' on <mj-button>"):
        render_with(tmp_path, fixed_now, {"sections/cta.mjml": cta.replace(" color=", " colour=")})


def test_a_template_link_that_is_not_absolute_https_is_reported(tmp_path, fixed_now):
    # (Items with such links never reach render: compose leaves them out and reports them.)
    cta = (BUILTIN_TEMPLATES / "sections" / "cta.mjml").read_text()
    cta = cta.replace("<p>{{ section.text }}</p>", '<a href="http://www.example.org/plain/">x</a>')
    with pytest.raises(RenderError, match=r"http://www\.example\.org/plain/"):
        render_with(tmp_path, fixed_now, {"sections/cta.mjml": cta})


def test_an_edition_between_90_and_102_kb_renders_with_a_warning(fixed_now):
    _edition, rendered = render_sample(fixed_now, many_items(24, 0), big_campaign(24, 1))
    assert 90 * KB < rendered.size <= 102 * KB, rendered.size
    assert rendered.warnings and "economic-justice-weekly" in rendered.warnings[0]


def test_subject_with_an_undefined_variable_names_it(fixed_now):
    campaign = sample_campaign().model_copy(update={"subject": "{{ edition.nomber }}"})
    with pytest.raises(TemplateError, match=r"'economic-justice-weekly' subject.*nomber"):
        render_sample(fixed_now, campaign=campaign)
