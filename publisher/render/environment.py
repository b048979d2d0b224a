"""The Jinja environment for email, text and archive templates, and its error messages.

Autoescaping is on for .mjml and .html templates (never for .txt) and undefined variables are
errors, so a typo in a template fails loudly with the template file and line instead of
sending an email with a blank where a title should be.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context

from publisher.errors import TemplateError
from publisher.render.personalise import neutralise

# Templates shipped with the project; an organisation may override any file by putting one
# with the same name in a `templates/` folder beside its schedules.yaml.
BUILTIN_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
TEMPLATE_SUFFIXES = (".mjml", ".txt", ".html")
TEXT_WIDTH = 78


@pass_context
def format_date(context: Context, value: datetime, fmt: str = "%-d %B %Y") -> str:
    """A date in the campaign's time zone (the template context carries `tz`)."""
    tz = ZoneInfo(context.get("tz") or "UTC")
    return value.astimezone(tz).strftime(fmt)


def excerpt(value: str, length: int = 220) -> str:
    """Shorten a summary at a word boundary: list entries must stay small (Gmail clips)."""
    value = " ".join((value or "").split())
    if len(value) <= length:
        return value
    return value[:length].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


@lru_cache(maxsize=8)
def template_environment(search_path: tuple[Path, ...] = (BUILTIN_TEMPLATES,)) -> Environment:
    env = Environment(
        loader=FileSystemLoader([str(p) for p in search_path]),
        autoescape=select_autoescape(
            enabled_extensions=("mjml", "html"), default_for_string=False, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Content can never spell a per-recipient placeholder (see render.personalise).
        finalize=neutralise,
    )
    env.filters["date"] = format_date
    env.filters["excerpt"] = excerpt
    return env


def search_path_for(root: Path) -> tuple[Path, ...]:
    local = root / "templates"
    if local.is_dir() and local.resolve() != BUILTIN_TEMPLATES:
        return (local, BUILTIN_TEMPLATES)
    return (BUILTIN_TEMPLATES,)


def string_environment() -> Environment:
    """For one-line templates from configuration (subjects): plain text, no autoescape."""
    env = Environment(undefined=StrictUndefined, autoescape=False, finalize=neutralise)
    env.filters["date"] = format_date
    return env


def _template_frame(tb: TracebackType | None) -> tuple[str | None, int | None]:
    """The innermost template file and line in a traceback (Jinja rewrites frames so that
    template code reports the template's own file name and line number)."""
    found: tuple[str | None, int | None] = (None, None)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(TEMPLATE_SUFFIXES) or filename == "<template>":
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def render_template(env: Environment, name: str, context: dict[str, Any]) -> str:
    """Render one template file; every failure is a TemplateError naming file and line."""
    try:
        return env.get_template(name).render(context)
    except TemplateSyntaxError as exc:
        where = f"{exc.filename or exc.name or name}:{exc.lineno}"
        raise TemplateError(f"{where}: syntax error: {exc.message}") from None
    except TemplateNotFound as exc:
        raise TemplateError(f"{name}: template not found: {exc.name}") from None
    except UndefinedError as exc:
        filename, line = _template_frame(exc.__traceback__)
        where = f"{filename}:{line}" if filename else name
        raise TemplateError(f"{where}: undefined variable: {exc.message}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        filename, line = _template_frame(exc.__traceback__)
        where = f"{filename}:{line}" if filename else name
        raise TemplateError(f"{where}: {type(exc).__name__}: {exc}") from None


def render_string(source: str, context: dict[str, Any], *, what: str) -> str:
    """Render a one-line template from configuration (`what` names where it came from)."""
    try:
        return string_environment().from_string(source).render(context)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{what}: syntax error: {exc.message}") from None
    except UndefinedError as exc:
        raise TemplateError(f"{what}: undefined variable: {exc.message}") from None


def wrap_text(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap every line of the plain-text part at `width` columns, keeping indentation and
    list markers as a hanging indent and never breaking a URL (clients would not link it)."""
    out: list[str] = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if len(line) <= width or " " not in stripped:
            out.append(line.rstrip())
            continue
        indent = line[: len(line) - len(stripped)]
        marker = next((m for m in ("- ", "* ", "• ") if stripped.startswith(m)), "")
        out.extend(
            textwrap.wrap(
                stripped,
                width=width,
                initial_indent=indent,
                subsequent_indent=indent + " " * len(marker),
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    joined = "\n".join(out).strip("\n") + "\n"
    while "\n\n\n\n" in joined:
        joined = joined.replace("\n\n\n\n", "\n\n\n")
    return joined
