"""`publisher check` for templates: every template compiles, every campaign renders with
sample data, MJML uses only known elements and attributes, colours meet WCAG AA."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import TemplateSyntaxError

from publisher.config import CampaignConfig, Colours, PublisherConfig
from publisher.errors import ConfigError, PublisherError, TemplateError
from publisher.render.alert import alert_url, render_alert
from publisher.render.email import archive_url, edition_context, render_edition, render_public
from publisher.render.environment import (
    TEMPLATE_SUFFIXES,
    render_string,
    search_path_for,
    template_environment,
)
from publisher.render.mjml import mjml_problems
from publisher.render.sample import sample_edition
from publisher.render.welcome import LatestEdition, render_welcome
from publisher.store.broadcasts import Audience, BroadcastDraft

# A fixed time keeps `publisher check` deterministic; any date would do.
SAMPLE_NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
WCAG_AA = 4.5


def _luminance(colour: str) -> float:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1 to 21)."""
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def colour_pairs(colours: Colours) -> list[tuple[str, str, str]]:
    """(what, foreground, background) for every text colour the templates use."""
    return [
        ("text on surface", colours.text, colours.surface),
        ("muted text on surface", colours.muted, colours.surface),
        ("muted text on background", colours.muted, colours.background),
        ("links (primary) on surface", colours.primary, colours.surface),
        ("white button text on primary", "#ffffff", colours.primary),
    ]


def check_colours(colours: Colours) -> list[str]:
    problems = []
    for what, fg, bg in colour_pairs(colours):
        try:
            ratio = contrast_ratio(fg, bg)
        except ValueError:
            problems.append(f"organisation.colours: '{fg}' or '{bg}' is not a #rrggbb colour")
            continue
        if ratio < WCAG_AA:
            problems.append(
                f"organisation.colours: {what} ({fg} on {bg}) has contrast {ratio:.2f}:1, "
                f"below the WCAG AA {WCAG_AA}:1"
            )
    return problems


def check_template_files(search_path: tuple[Path, ...]) -> list[str]:
    """Jinja syntax of every template and MJML elements/attributes of every .mjml file."""
    env = template_environment(search_path)
    # /admin's `when` filter (web/context.py moment_filter) is the web's: a stand-in here,
    # so the dashboard's templates compile (Jinja checks filter names when compiling)
    env.filters.setdefault("when", lambda moment, style="minute": moment)
    problems = []
    for name in env.list_templates(extensions=[s.lstrip(".") for s in TEMPLATE_SUFFIXES]):
        try:
            template = env.get_template(name)
        except TemplateSyntaxError as exc:
            problems.append(f"{exc.filename or name}:{exc.lineno}: syntax error: {exc.message}")
            continue
        if name.endswith(".mjml"):
            source = Path(template.filename or name).read_text(encoding="utf-8")
            problems.extend(f"{template.filename}: {p}" for p in mjml_problems(source))
    return problems


def check_campaign(config: PublisherConfig, campaign: CampaignConfig) -> list[str]:
    """Render the campaign with sample items filling every section: the email and its
    public copy (the archive page)."""
    org = config.organisation
    edition = sample_edition(campaign, now=SAMPLE_NOW)
    web_url = archive_url(org.public_url, campaign.name, edition.number)
    search_path = search_path_for(config.root)
    try:
        render_edition(edition, org, web_url=web_url, search_path=search_path)
        render_public(edition, org, web_url=web_url, search_path=search_path)
    except PublisherError as exc:
        return [f"campaign '{campaign.name}': {exc}"]
    return []


def check_templates(config: PublisherConfig) -> list[str]:
    """Everything `publisher check` verifies about templates and digest configuration
    (names, references and config strings were checked when the file was loaded)."""
    problems = check_template_files(search_path_for(config.root))
    problems += check_colours(config.organisation.colours)
    for campaign in config.campaigns:
        problems += check_campaign(config, campaign)
    return problems + check_welcome(config) + check_alert(config)


def check_alert(config: PublisherConfig) -> list[str]:
    """Render the broadcasts' template (`alert`, or the organisation's own) with a sample
    broadcast and one sample item, as staff would send it and as its public copy."""
    org = config.organisation
    draft = BroadcastDraft(
        name="Sample", subject="Sample alert", preheader="Sample", sender="organisation",
        audience=Audience(), body="A **sample** body.", cta_label="Act",
        cta_url=org.website,
    )  # fmt: skip
    campaign = config.campaigns[0] if config.campaigns else None
    items = sample_edition(campaign, now=SAMPLE_NOW).items[:1] if campaign else []
    try:
        for public in (False, True):
            render_alert(
                draft, org, config.sender("organisation"), items=items,
                web_url=alert_url(org.public_url, 1), public=public,
                search_path=search_path_for(config.root),
            )  # fmt: skip
    except PublisherError as exc:
        return [f"broadcasts (template alert): {exc}"]
    return []


def check_welcome(config: PublisherConfig) -> list[str]:
    """Render the welcome email, when one is configured (with a sample latest edition
    when it links one)."""
    welcome = config.welcome
    if welcome is None:
        return []
    latest = None
    if welcome.latest_edition:
        url = archive_url(config.organisation.public_url, welcome.latest_edition, 1)
        latest = LatestEdition(config.campaign(welcome.latest_edition).title, "Sample", url)
    try:
        render_welcome(
            welcome, config.organisation, latest=latest, search_path=search_path_for(config.root)
        )
    except PublisherError as exc:
        return [f"welcome: {exc}"]
    return []


def config_string_errors(config: PublisherConfig) -> list[ConfigError]:
    """Render every campaign's subject and preheader (sandboxed) with a sample edition, so
    a template error or a disallowed expression in them is a configuration error of every
    command, before anything is collected, stored or sent."""
    org = config.organisation
    errors = []
    for index, campaign in enumerate(config.campaigns):
        # The context itself renders subject and preheader: build it from harmless ones.
        plain = campaign.model_copy(update={"subject": "sample", "preheader": ""})
        edition = sample_edition(plain, now=SAMPLE_NOW)
        context = edition_context(
            edition, org, web_url=archive_url(org.public_url, campaign.name, edition.number)
        )
        for key in ("subject", "preheader"):
            try:
                render_string(getattr(campaign, key), context, what=key)
            except TemplateError as exc:
                reason = str(exc).removeprefix(f"{key}: ")
                errors.append(config.error_at(("campaigns", index, key), reason))
    return errors
