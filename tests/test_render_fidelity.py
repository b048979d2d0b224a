"""Text fidelity: whatever characters an item carries arrive unchanged in the decoded MIME
parts (HTML text and attributes, plain text) and in the feeds; placeholders stay
template-only without leaving a trace in content."""

from __future__ import annotations

import email
import email.policy
import json
from dataclasses import replace
from email.message import EmailMessage
from html.parser import HTMLParser

import feedparser
import pytest

from publisher.compose.edition import CampaignHistory, compose_edition
from publisher.config import PublisherConfig
from publisher.items import Item
from publisher.pipeline import preview_email, unstored_edition
from publisher.publish.documents import FORMATS, FeedMeta, plan_pages
from publisher.publish.entries import EntryCache
from publisher.render import PLACEHOLDERS, personalise
from publisher.render.email import render_edition
from publisher.render.mjml import compile_mjml
from publisher.render.personalise import neutralise
from publisher.render.preview import PREVIEW_TOKEN
from tests.conftest import present
from tests.test_render_fixtures import assert_golden, item, sample_campaign, sample_config

WEB_URL = "https://www.example.org/news/archive/economic-justice-weekly/1.html"
ZWNJ, ZWJ, SHY, LS, RLM, LRM = "\u200c", "\u200d", "\u00ad", "\u2028", "\u200f", "\u200e"
FSI, PDI = "\u2068", "\u2069"
# Persian with ZWNJ (the alt text), Urdu, Hindi with a ZWJ, a soft hyphen, a line
# separator, bidirectional marks and isolates, emoji sequences (ZWJ, skin tone, flag).
PERSIAN_ALT = f"نمودار دستمزد{ZWNJ}ها"
TITLE = f"می{ZWNJ}خواهیم: دستمزد {FSI}Local 32BJ{PDI} {RLM}— ۱۴۰۵"
SUMMARY = (
    f"اردو: مزدوروں کی اجرت۔ हिन्दी: क्ष{ZWJ}ेत्र. Wage{SHY}earners{LS}next line "
    f"{LRM}👩🏽{ZWJ}💻 🇮🇷 👨{ZWJ}👩{ZWJ}👧 100%% sure"
)
URL = "https://www.example.org/fa/%D8%AF%D8%B3%D8%AA%D9%85%D8%B2%D8%AF/?q=100%%&r=%%x%%#%E2%80%8C"
IMAGE = "https://www.example.org/img/%D9%86%D9%85%D9%88%D8%AF%D8%A7%D8%B1.png?w=600&%%"
HOSTILE_TITLE = "Free %%NAME%% and %%UNSUBSCRIBE_URL%%"


def persian_items() -> list[Item]:
    featured = replace(
        item("persian", days_ago=1, kind="resource"),
        title=TITLE,
        summary=SUMMARY,
        url=URL,
        image=IMAGE,
        image_alt=PERSIAN_ALT,
        author=f"سارا{ZWNJ}ی محمدی",
    )
    listed = replace(
        item("urdu", days_ago=2, kind="article", image=False),
        title=f"{RLM}مزدوروں کی اجرت{ZWNJ} {SHY}",
        summary=SUMMARY,
        url=URL + "&list",
    )
    hostile = replace(
        item("hostile", days_ago=3, kind="news", image=False),
        title=HOSTILE_TITLE,
        url="https://www.example.org/track?u=%%UNSUBSCRIBE_URL%%",
    )
    return [featured, listed, hostile]


def rtl_config() -> PublisherConfig:
    config = sample_config()
    org = config.organisation.model_copy(update={"language": "fa", "direction": "rtl"})
    return config.model_copy(update={"organisation": org})


def mime_parts(fixed_now) -> tuple[str, str]:
    """(HTML, text) as a recipient's client decodes them, built by the delivery path."""
    config = rtl_config()
    edition = present(
        compose_edition(
            persian_items(), sample_campaign(config), now=fixed_now, history=CampaignHistory()
        )
    )
    rendered = render_edition(edition, config.organisation, web_url=WEB_URL)
    stored = unstored_edition("economic-justice-weekly", edition, rendered, now=fixed_now)
    raw = preview_email(config, stored, now=fixed_now)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content().replace("\r\n", "\n")


class Document(HTMLParser):
    """Attribute values and text as a browser reads them (references decoded)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: dict[str, list[str]] = {}
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            self.attributes.setdefault(name, []).append(value or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_every_character_arrives_in_the_decoded_html_part(fixed_now):
    html, _text = mime_parts(fixed_now)
    assert "\\u{" not in html  # no Rust escape
    doc = Document(html)
    text = "".join(doc.text)
    for value in (TITLE, f"{RLM}مزدوروں کی اجرت{ZWNJ} {SHY}", f"سارا{ZWNJ}ی محمدی"):
        assert value in text, value
    assert "Wage\u00adearners\u2028next line" in text and "👨\u200d👩\u200d👧" in text
    assert PERSIAN_ALT in doc.attributes["alt"]
    assert doc.attributes["src"].count(IMAGE) == 1
    assert doc.attributes["href"].count(URL) == 3  # the image, the title and the button
    assert URL + "&list" in doc.attributes["href"]
    # what content wrote stays what it wrote, and is no placeholder
    assert (
        HOSTILE_TITLE in text
        and "https://www.example.org/track?u=%%UNSUBSCRIBE_URL%%" in (doc.attributes["href"])
    )
    assert PREVIEW_TOKEN not in HOSTILE_TITLE and html.count(PREVIEW_TOKEN) == 2  # the footer


def test_every_character_arrives_in_the_decoded_text_part(fixed_now):
    _html, text = mime_parts(fixed_now)
    for value in (TITLE, URL, URL + "&list", f"سارا{ZWNJ}ی محمدی"):
        assert value in text, value
    assert "Wage\u00adearners\u2028next line" in text and "🇮🇷" in text
    # a placeholder spelt by content is broken by an invisible U+200C, nothing else
    assert HOSTILE_TITLE.replace("%%", f"%{ZWNJ}%") in text
    assert PREVIEW_TOKEN not in text.split("--\n")[0]  # only the footer has personal links


def test_golden_right_to_left_email(fixed_now):
    config = rtl_config()
    edition = present(
        compose_edition(
            persian_items(), sample_campaign(config), now=fixed_now, history=CampaignHistory()
        )
    )
    rendered = render_edition(edition, config.organisation, web_url=WEB_URL)
    assert '<html lang="fa" dir="rtl"' in rendered.html
    assert_golden("fidelity-rtl.html", rendered.html)
    assert_golden("fidelity-rtl.txt", rendered.text)


@pytest.mark.parametrize("attribute", ["alt", "title", "href"])
def test_mjml_keeps_format_characters_in_every_attribute(attribute):
    value = f"https://example.org/{PERSIAN_ALT}{SHY}{LS}{RLM}{FSI}x{PDI}👩🏽{ZWJ}💻?a=%%b"
    escaped = value.replace("&", "&amp;")
    source = (
        "<mjml><mj-body><mj-section><mj-column>"
        f'<mj-image src="https://example.org/i.png" alt="{escaped}" title="{escaped}" '
        f'href="{escaped}" />'
        f'<mj-text><a href="{escaped}" title="{escaped}">{escaped}</a></mj-text>'
        "</mj-column></mj-section></mj-body></mjml>"
    )
    doc = Document(compile_mjml(source, template="test.mjml"))
    assert doc.attributes[attribute].count(value) >= 1
    assert value in "".join(doc.text)


def test_content_percent_signs_in_html_are_references_not_placeholders():
    from publisher.render.environment import template_environment

    html = template_environment().overlay(autoescape=True)
    template_html = html.from_string("<a href='{{ url }}'>{{ title }}</a>{{ live }}")
    out = template_html.render(url="https://x.org/?a=%%NAME%%", title="50% of %%", live="ok")
    assert out == "<a href='https://x.org/?a=&#37;&#37;NAME&#37;&#37;'>50% of &#37;&#37;</a>ok"


def test_plain_text_breaks_only_what_could_spell_a_key():
    assert neutralise("https://x.org/?q=100%%20&r=%%2f") == "https://x.org/?q=100%%20&r=%%2f"
    for hostile in ("%%NAME%%", "%%%NAME%%%", "a%%NAME_HTML%%b", "%%NA", "ME%%", "%NAME", "x%%"):
        broken = neutralise(hostile)
        assert broken.replace(ZWNJ, "") == hostile
        for before in ("", "%", "%%", "%%NA"):
            for after in ("", "%", "%%", "ME%%"):
                assert not any(p in before + broken + after for p in PLACEHOLDERS), hostile


def test_personalising_a_neutralised_document_fills_only_the_template_placeholders():
    document = "<p>%&#37;NAME%&#37; %%NAME%%</p>"
    filled = personalise(document, name="Ann", unsubscribe_url="u", preferences_url="p")
    assert filled == "<p>%&#37;NAME%&#37; Ann</p>"


def test_feeds_carry_every_character():
    meta = FeedMeta(
        name="fa",
        title="خبرنامه",
        description=f"دستمزد{ZWNJ}ها",
        link="https://www.example.org/fa/",
        language="fa",
        path="fa",
        feeds_url="https://www.example.org/news/feeds",
        feed_id="urn:uuid:5f0c1b3e-0000-5000-8000-000000000002",
        author="Test Org",
        icon=None,
        hub=None,
    )
    items = persian_items()[:2]
    cache = EntryCache("https://www.example.org/news")
    page = plan_pages(items, 50, empty_updated=items[0].published)[-1]
    for name, fmt in FORMATS.items():
        document = fmt.render(meta, page, cache)
        if name == "json":
            entries = json.loads(document)["items"]
            titles = [e["title"] for e in entries]
            urls = [e["url"] for e in entries]
            summaries = [e.get("summary", "") for e in entries]
        else:
            parsed = feedparser.parse(document)
            titles = [e.title for e in parsed.entries]
            urls = [e.link for e in parsed.entries]
            summaries = [e.summary for e in parsed.entries]
        assert TITLE in titles, name
        assert URL in urls, name
        assert any("Wage\u00adearners\u2028next line" in s for s in summaries), name
