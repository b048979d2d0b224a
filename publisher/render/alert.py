"""A broadcast (action alert, issue 21) rendered from templates/<template>.mjml and .txt
(`alert` unless a templates/ folder of the organisation has its own), compiled once per
broadcast; personal links are placeholders, filled per recipient by delivery as in a
digest. Pure: no I/O but reading templates.

The subject, preheader, name and call to action are staff text, not templates: shown as
written (escaped in HTML, unable to spell a placeholder). The body is Markdown through the
one Markdown renderer (publisher.sources.markdown.markdown_html: sanitised HTML)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from publisher.config import Organisation, SenderConfig
from publisher.items import Item
from publisher.render.email import public_links
from publisher.render.environment import (
    BUILTIN_TEMPLATES,
    render_template,
    template_environment,
    wrap_text,
)
from publisher.render.mjml import compile_mjml
from publisher.render.personalise import (
    NAME,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    Trusted,
    neutralise,
    sample_copy,
)
from publisher.sources.markdown import markdown_html
from publisher.store.broadcasts import BroadcastDraft
from publisher.support.sanitize import strip_control_chars

__all__ = ["ARCHIVE_FOLDER", "TEMPLATE", "RenderedAlert", "alert_url", "render_alert"]

TEMPLATE = "alert"
ARCHIVE_FOLDER = "broadcasts"  # archive/broadcasts/<id>.html: the public copies


@dataclass(frozen=True)
class RenderedAlert:
    subject: str  # for the Subject header: as written, unable to spell a placeholder
    preheader: str
    html: str
    text: str


def alert_url(public_url: str, broadcast_id: int) -> str:
    """Where a broadcast's public copy lives (publisher.publish.broadcasts.write_broadcast_pages
    writes it there, as the page of edition <id> of the archive folder `broadcasts`)."""
    return f"{public_url.rstrip('/')}/archive/{ARCHIVE_FOLDER}/{broadcast_id}.html"


def _context(
    draft: BroadcastDraft,
    org: Organisation,
    sender: SenderConfig,
    items: Sequence[Item],
    web_url: str,
    public: bool,
) -> dict[str, Any]:
    cta = (
        {"label": draft.cta_label, "url": draft.cta_url}
        if draft.cta_label and draft.cta_url
        else None
    )
    return {
        "org": org,
        "colours": org.colours,
        # plain strings: escaped and neutralised by the environment (staff text, as is)
        "name": draft.name,
        "subject": draft.subject,
        "preheader": draft.preheader,
        "sender": sender,
        "body": Markup(markdown_html(draft.body, base_url=org.public_url)),
        "body_text": strip_control_chars(draft.body).strip(),
        "items": list(items),
        "cta": cta,
        "public": public,
        "links": {
            **public_links(org.public_url, ARCHIVE_FOLDER),
            "web": web_url,
            "unsubscribe": Trusted(UNSUBSCRIBE_URL),
            "preferences": Trusted(PREFERENCES_URL),
        },
        "recipient": {"name": Trusted(NAME)},
        "reason": f"You receive this email because you subscribed to updates from {org.name}.",
    }


def render_alert(
    draft: BroadcastDraft,
    org: Organisation,
    sender: SenderConfig,
    *,
    items: Sequence[Item] = (),
    web_url: str,
    public: bool = False,
    template: str = TEMPLATE,
    search_path: tuple[Path, ...] = (BUILTIN_TEMPLATES,),
) -> RenderedAlert:
    """The broadcast as compiled once (`public`: the archive's copy, nobody's, without the
    personal links); raises TemplateError for a template problem."""
    env = template_environment(search_path)
    context = _context(draft, org, sender, items, web_url, public)
    mjml_name = f"{template}.mjml"
    html = compile_mjml(render_template(env, mjml_name, context), template=mjml_name)
    text = wrap_text(render_template(env, f"{template}.txt", context))
    if public:
        html = sample_copy(html, org.public_url)
    return RenderedAlert(
        subject=neutralise(draft.subject.strip()),
        preheader=draft.preheader,
        html=html,
        text=text,
    )
