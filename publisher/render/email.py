"""Render a composed edition into its subject, HTML and plain text. Pure: no I/O but reading
templates.

The MJML is compiled once per edition; what comes out is final except for the placeholders
of publisher.render.personalise, so delivery never compiles anything.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from markupsafe import Markup

from publisher.compose.curation import clean_subject, note_text
from publisher.compose.edition import ComposedSection, Edition
from publisher.config import CampaignConfig, Organisation
from publisher.errors import RenderError, TemplateError
from publisher.items import Item
from publisher.render.environment import (
    BUILTIN_TEMPLATES,
    render_string,
    render_template,
    template_environment,
    wrap_text,
)
from publisher.render.mjml import compile_mjml
from publisher.render.personalise import (
    NAME,
    PLACEHOLDERS,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    Trusted,
    neutralise,
    personalise,
    sample_copy,
    subscriber_url,
)

log = logging.getLogger(__name__)

KB = 1024
WARN_BYTES = 90 * KB  # leave room below Gmail's clipping
MAX_BYTES = 102 * KB  # Gmail clips messages larger than this, hiding the unsubscribe link


class TooLargeError(RenderError):
    """The email would be clipped by Gmail; `size` is how large it is, in bytes."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


@dataclass(frozen=True)
class RenderedEdition:
    subject: str
    preheader: str
    html: str
    text: str
    size: int  # bytes of the HTML once personalised for a long name and token
    warnings: list[str] = field(default_factory=list)


def archive_url(public_url: str, campaign: str, number: int) -> str:
    """Where the web copy of an edition lives (publish/archive.py writes it there)."""
    return f"{public_url.rstrip('/')}/archive/{campaign}/{number}.html"


def _section_view(section: ComposedSection) -> SimpleNamespace:
    # Namespaces, not dicts: in Jinja `section.items` on a dict would be the dict method.
    cfg = section.config
    return SimpleNamespace(
        name=cfg.name,
        type=cfg.type,
        title=cfg.title,
        items=list(section.items),
        text=cfg.text,
        button_label=cfg.button_label,
        button_url=cfg.button_url,
    )


def public_links(public_url: str, campaign: str) -> dict[str, str]:
    """The links of a copy that belongs to nobody: sign up, the campaign's editions, the feeds."""
    base = public_url.rstrip("/")
    return {
        "subscribe": f"{base}/subscribe",
        "archive": f"{base}/archive/{campaign}/",
        "feeds": f"{base}/feeds/",
    }


def edition_context(
    edition: Edition, org: Organisation, *, web_url: str, public: bool = False
) -> dict[str, Any]:
    """Everything the templates see. Per-recipient values are placeholders; `public` is the
    web archive copy (templates leave out the greeting and the personal links)."""
    campaign = edition.campaign
    context: dict[str, Any] = {
        "org": org,
        "colours": org.colours,
        "campaign": campaign,
        "tz": campaign.timezone or org.timezone,
        "edition": SimpleNamespace(
            number=edition.number,
            date=edition.date,
            since=edition.since,
            sections=[_section_view(s) for s in edition.sections],
            items=edition.items,
        ),
        "public": public,
        "links": {
            **public_links(org.public_url, campaign.name),
            "web": web_url,
            "unsubscribe": Trusted(UNSUBSCRIBE_URL),
            "preferences": Trusted(PREFERENCES_URL),
        },
        "recipient": {"name": Trusted(NAME)},
        "reason": campaign.reason
        or f"You receive {campaign.title} because you subscribed to updates from {org.name}.",
    }
    # Staff wrote these, so placeholders they spell stay live; values they interpolate
    # were neutralised by the string environment.
    context["subject"] = Trusted(
        render_string(campaign.subject, context, what=f"campaign '{campaign.name}' subject")
    )
    if edition.curation.subject:  # an editor's one-time subject: plain text, never a template
        context["subject"] = neutralise(clean_subject(edition.curation.subject))
    # the editor's note: sanitised HTML (Markup, so it is not escaped; its `%%` are still
    # neutralised by finalize), and its text for the plain part
    context["note"] = Markup(edition.note_html)
    context["note_text"] = note_text(edition.note_html)
    context["preheader"] = Trusted(
        render_string(campaign.preheader, context, what=f"campaign '{campaign.name}' preheader")
    )
    return context


def render_edition(
    edition: Edition,
    org: Organisation,
    *,
    web_url: str,
    search_path: tuple[Path, ...] = (BUILTIN_TEMPLATES,),
) -> RenderedEdition:
    """Subject, compiled HTML and wrapped text of an edition; raises TemplateError for a
    template problem and RenderError for a result that must not be sent."""
    campaign = edition.campaign
    env = template_environment(search_path)
    context = edition_context(edition, org, web_url=web_url)
    mjml_name = f"{campaign.template}.mjml"
    html = compile_mjml(render_template(env, mjml_name, context), template=mjml_name)
    text = wrap_text(render_template(env, f"{campaign.template}.txt", context))
    _check_links(html, campaign)
    size, warnings = _check_size(html, campaign)
    return RenderedEdition(
        subject=context["subject"].strip(),
        preheader=context["preheader"],
        html=html,
        text=text,
        size=size,
        warnings=warnings,
    )


def render_public(
    edition: Edition,
    org: Organisation,
    *,
    web_url: str,
    search_path: tuple[Path, ...] = (BUILTIN_TEMPLATES,),
) -> str:
    """The edition's public copy (the web archive page) from the same templates with
    `public` set; a placeholder a custom template still uses gets nobody's value."""
    env = template_environment(search_path)
    context = edition_context(edition, org, web_url=web_url, public=True)
    mjml_name = f"{edition.campaign.template}.mjml"
    html = compile_mjml(render_template(env, mjml_name, context), template=mjml_name)
    return sample_copy(html, org.public_url)


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.links.append((tag, name, value))


def _check_links(html: str, campaign: CampaignConfig) -> None:
    """Every link and image must be absolute https (relative or plain-http ones break or
    warn in mail clients); placeholders and mailto: are fine."""
    collector = _LinkCollector()
    collector.feed(html)
    bad = [
        f"<{tag} {attr}='{value}'>"
        for tag, attr, value in collector.links
        if not value.startswith(("https://", "mailto:")) and value not in PLACEHOLDERS
    ]
    if bad:
        raise RenderError(
            f"campaign '{campaign.name}': links and images must be absolute https URLs: "
            + ", ".join(sorted(set(bad)))
        )


def _check_size(html: str, campaign: CampaignConfig) -> tuple[int, list[str]]:
    # Measure as a recipient receives it: a long name and a 64-character token.
    sample = personalise(
        html,
        name="N" * 40,
        unsubscribe_url=subscriber_url("https://www.example.org", "unsubscribe", "t" * 64),
        preferences_url=subscriber_url("https://www.example.org", "preferences", "t" * 64),
    )
    size = len(sample.encode("utf-8"))
    if size > MAX_BYTES:
        raise TooLargeError(
            f"campaign '{campaign.name}': the email is {size / KB:.1f} KB, above the "
            f"{MAX_BYTES // KB} KB at which Gmail clips it; lower the sections' max counts",
            size,
        )
    warnings = []
    if size > WARN_BYTES:
        warnings.append(
            f"campaign '{campaign.name}': the email is {size / KB:.1f} KB, close to the "
            f"{MAX_BYTES // KB} KB at which Gmail clips it"
        )
        log.warning(warnings[-1])
    return size, warnings


def render_fitting(
    edition: Edition,
    org: Organisation,
    *,
    web_url: str,
    search_path: tuple[Path, ...] = (BUILTIN_TEMPLATES,),
) -> tuple[Edition, RenderedEdition]:
    """Render the edition; when that fails, leave out (in Edition.left_out, with the reason)
    each item that cannot be rendered even on its own, then, while the email is too large,
    the last items of the longest sections, so that one bad item never stops an edition. A
    failure that is no item's (a template error) is raised as it is."""

    def attempt(candidate: Edition) -> RenderedEdition:
        return render_edition(candidate, org, web_url=web_url, search_path=search_path)

    try:
        return edition, attempt(edition)
    except TooLargeError as exc:
        candidate, size = edition, exc.size
    except (RenderError, TemplateError):
        if not edition.items:
            raise
        candidate, size = _without_unrenderable(edition, attempt), 0
    while True:
        if size:
            candidate = _trimmed(candidate, size)
        try:
            return candidate, attempt(candidate)
        except TooLargeError as exc:
            if not candidate.items:
                raise
            size = exc.size


def _without_unrenderable(
    edition: Edition, attempt: Callable[[Edition], RenderedEdition]
) -> Edition:
    """The edition without the items that fail to render on their own; raises the error of
    the edition with no items at all when that fails too (a template problem)."""
    attempt(_keeping(edition, set()))
    broken: list[tuple[Item, str]] = []
    for item in edition.items:
        try:
            attempt(_keeping(edition, {item.id}))
        except TooLargeError:
            broken.append((item, f"it alone makes the email larger than {MAX_BYTES // KB} KB"))
        except (RenderError, TemplateError) as exc:
            broken.append((item, f"it cannot be rendered: {exc}"))
    return _leaving_out(edition, broken)


def _trimmed(edition: Edition, size: int) -> Edition:
    """Leave out about as many items as the excess size suggests (at least one), each time
    the last item of the longest section."""
    count = len(edition.items)
    excess = max(1, math.ceil(count * (size - MAX_BYTES) / size) + 1)
    lengths = {s.name: len(s.items) for s in edition.sections}
    removed: list[tuple[Item, str]] = []
    reason = f"the email would be larger than {MAX_BYTES // KB} KB with it"
    for _ in range(min(excess, count)):
        longest = max(edition.sections, key=lambda s: lengths[s.name])
        lengths[longest.name] -= 1
        removed.append((longest.items[lengths[longest.name]], reason))
    return _leaving_out(edition, removed)


def _keeping(edition: Edition, ids: set[str]) -> Edition:
    sections = tuple(
        replace(s, items=tuple(i for i in s.items if i.id in ids)) for s in edition.sections
    )
    return replace(edition, sections=sections)


def _leaving_out(edition: Edition, removed: list[tuple[Item, str]]) -> Edition:
    for item, reason in removed:
        log.warning(
            "%s: left out '%s' (%s): %s", edition.campaign.name, item.title, item.id, reason
        )
    gone = {item.id for item, _ in removed}
    kept = _keeping(edition, {i.id for i in edition.items} - gone)
    return replace(kept, left_out=edition.left_out + tuple(removed))
