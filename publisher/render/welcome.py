"""The welcome email (issue 21): subject, HTML and text from templates/<template>.mjml and
.txt, compiled once per version; personal links are placeholders, filled per recipient by
delivery as in a digest. Pure: no I/O but reading templates.

The configured subject and preheader are text, not templates: they are shown as written
(escaped in HTML, and unable to spell a placeholder anywhere)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from publisher.config import Organisation, WelcomeConfig
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
)

__all__ = ["LatestEdition", "RenderedWelcome", "render_welcome"]


@dataclass(frozen=True)
class LatestEdition:
    """The attached campaign's latest sent edition, linked from the welcome."""

    title: str  # the campaign's title
    subject: str
    url: str  # its web copy


@dataclass(frozen=True)
class RenderedWelcome:
    subject: str  # for the Subject header: as configured, unable to spell a placeholder
    preheader: str
    html: str
    text: str


def render_welcome(
    welcome: WelcomeConfig,
    org: Organisation,
    *,
    latest: LatestEdition | None = None,
    search_path: tuple[Path, ...] = (BUILTIN_TEMPLATES,),
) -> RenderedWelcome:
    """The welcome as compiled once; raises TemplateError for a template problem."""
    env = template_environment(search_path)
    context: dict[str, Any] = {
        "org": org,
        "colours": org.colours,
        # plain strings: escaped and neutralised by the environment (staff text, shown as is)
        "subject": welcome.subject,
        "preheader": welcome.preheader,
        "latest": latest,
        "links": {
            **public_links(org.public_url, "welcome"),
            "unsubscribe": Trusted(UNSUBSCRIBE_URL),
            "preferences": Trusted(PREFERENCES_URL),
        },
        "recipient": {"name": Trusted(NAME)},
        "reason": f"You receive this email because you confirmed your subscription to {org.name}.",
    }
    mjml_name = f"{welcome.template}.mjml"
    html = compile_mjml(render_template(env, mjml_name, context), template=mjml_name)
    text = wrap_text(render_template(env, f"{welcome.template}.txt", context))
    return RenderedWelcome(
        subject=neutralise(welcome.subject),
        preheader=welcome.preheader,
        html=html,
        text=text,
    )
