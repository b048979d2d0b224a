"""The `alert` template of broadcasts (issue 21): golden files with a fixed clock for the
email (HTML and text) and its public copy; the organisation's own templates/ folder
overrides it like the digest's."""

from __future__ import annotations

import lxml.html

from publisher.config import SenderConfig
from publisher.publish.broadcasts import sent_copy
from publisher.render.alert import alert_url, render_alert
from publisher.render.environment import BUILTIN_TEMPLATES
from publisher.render.personalise import PREFERENCES_URL, UNSUBSCRIBE_URL
from publisher.render.sample import sample_items
from publisher.store.broadcasts import Audience, BroadcastDraft
from tests.test_render_fixtures import assert_golden, sample_campaign, sample_config

DRAFT = BroadcastDraft(
    name="Council vote tomorrow",
    subject="The council votes on rent tomorrow",
    preheader="Write to your councillor tonight",
    sender="organisation",
    audience=Audience(("housing",)),
    body="The council votes **tomorrow** on the rent freeze.\n\n"
    "- Write to your councillor\n- Come to the hall at 6pm\n\n[Read the motion](/motion)",
    items=("a", "b"),
    cta_label="Write to your councillor",
    cta_url="https://www.example.org/act",
)


def _render(fixed_now, *, public: bool = False, search_path=(BUILTIN_TEMPLATES,)):
    config = sample_config()
    org = config.organisation
    sender = SenderConfig(name="organisation", from_email=org.from_email)
    items = sample_items(sample_campaign(config), now=fixed_now)[:2]
    url = alert_url(org.public_url, 7)
    return (
        render_alert(
            DRAFT, org, sender, items=items, web_url=url, public=public, search_path=search_path
        ),
        items,
        url,
    )


def test_golden_alert_email_and_its_public_copy(fixed_now):
    rendered, items, url = _render(fixed_now)
    assert_golden("alert.html", rendered.html)
    assert_golden("alert.txt", rendered.text)
    for item in items:
        assert item.title in rendered.html and item.title in rendered.text
    assert UNSUBSCRIBE_URL in rendered.html and PREFERENCES_URL in rendered.text
    assert url in rendered.html and "https://www.example.org/act" in rendered.html
    public, _, _ = _render(fixed_now, public=True)
    assert_golden("alert-public.html", public.html)
    assert UNSUBSCRIBE_URL not in public.html and "%%" not in public.html
    assert "View this email in your browser" not in public.html
    # the page made from the sent email (publish.broadcasts) reads as the public render
    sent = sent_copy(rendered.html, sample_config().organisation)
    assert _words(sent) == _words(public.html) and "Hello" not in _words(sent)


def _words(html: str) -> str:
    document = lxml.html.document_fromstring(html)
    return " ".join(document.text_content().split())  # type: ignore[attr-defined]


def test_an_organisations_own_alert_template_wins(fixed_now, tmp_path):
    (tmp_path / "alert.mjml").write_text(
        "<mjml><mj-body><mj-section><mj-column><mj-text>Ours: {{ subject }}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>",
        encoding="utf-8",
    )
    (tmp_path / "alert.txt").write_text("Ours: {{ subject }}\n", encoding="utf-8")
    rendered, _, _ = _render(fixed_now, search_path=(tmp_path, BUILTIN_TEMPLATES))
    assert "Ours: The council votes on rent tomorrow" in rendered.html
    assert rendered.text.startswith("Ours: The council votes")


def test_publisher_check_renders_the_alert_template(project):
    from publisher.config import load_config
    from publisher.render.checks import check_alert
    from tests.conftest import write_config

    config = load_config(write_config(project))
    assert check_alert(config) == []
    (project / "templates").mkdir()
    (project / "templates" / "alert.mjml").write_text("<mjml>{{ oops(</mjml>", encoding="utf-8")
    (project / "templates" / "alert.txt").write_text("{{ subject }}\n", encoding="utf-8")
    [problem] = check_alert(config)
    assert problem.startswith("broadcasts (template alert):") and "alert.mjml" in problem
