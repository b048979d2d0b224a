"""The Jinja environment for email, text and archive templates, and its error messages.

Autoescaping is on for .mjml and .html templates (never for .txt) and undefined variables are
errors, so a typo in a template fails loudly with the template file and line instead of
sending an email with a blank where a title should be.
"""

from __future__ import annotations

import re
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
    TemplateRuntimeError,
    TemplateSyntaxError,
    UndefinedError,
    pass_context,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from publisher.config.models import control_characters
from publisher.errors import TemplateError
from publisher.render.personalise import finalize, neutralise

# Templates shipped with the project; an organisation may override any file by putting one
# with the same name in a `templates/` folder beside its schedules.yaml.
BUILTIN_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
TEMPLATE_SUFFIXES = (".mjml", ".txt", ".html", ".xsl")
TEXT_WIDTH = 78
_ASCII_SPACE = re.compile(r"[ \t\n\r\f\v]+")


@pass_context
def format_date(context: Context, value: datetime, fmt: str = "%-d %B %Y") -> str:
    """A date in the campaign's time zone (the template context carries `tz`)."""
    tz = ZoneInfo(context.get("tz") or "UTC")
    return value.astimezone(tz).strftime(fmt)


def excerpt(value: str, length: int = 220) -> str:
    """Shorten a summary at a word boundary: list entries must stay small (Gmail clips).
    Only ASCII whitespace is collapsed: a no-break space or a line separator is content."""
    value = _ASCII_SPACE.sub(" ", value or "").strip(" ")
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
        finalize=finalize,
    )
    env.filters["date"] = format_date
    env.filters["excerpt"] = excerpt
    return env


def search_path_for(root: Path) -> tuple[Path, ...]:
    local = root / "templates"
    if local.is_dir() and local.resolve() != BUILTIN_TEMPLATES:
        return (local, BUILTIN_TEMPLATES)
    return (BUILTIN_TEMPLATES,)


# Longest result of `*` / `**` in a configuration string: a subject never needs more, and
# `{{ 'x' * 10**9 }}` or `{{ 9**9**9 }}` would otherwise take the memory or the CPU.
MAX_PRODUCT = 10_000


class ConfigStringEnvironment(ImmutableSandboxedEnvironment):
    """Configuration strings are written by organisers, not developers: sandboxed (no
    attribute starting with '_', no mutating calls, so `cycler.__init__.__globals__` is a
    SecurityError), and no arithmetic that explodes."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        sizes = [len(v) if isinstance(v, str | list | tuple) else v for v in (left, right)]
        if operator == "**" and not all(isinstance(s, int | float) and abs(s) <= 64 for s in sizes):
            raise SecurityError("powers are limited to operands up to 64 in configuration")
        if operator == "*" and any(isinstance(s, int) and abs(s) > MAX_PRODUCT for s in sizes):
            raise SecurityError(f"products are limited to {MAX_PRODUCT:,} in configuration")
        return super().call_binop(context, operator, left, right)


@lru_cache(maxsize=1)
def string_environment() -> Environment:
    """For one-line templates from configuration (subjects, preheaders): plain text, no
    autoescape, sandboxed; values interpolated are neutralised (no live placeholder)."""
    env = ConfigStringEnvironment(undefined=StrictUndefined, autoescape=False, finalize=neutralise)
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
    """Render a one-line template from configuration (`what` names where it came from).
    The result goes into a header, so a control character in it is an error too."""
    try:
        text = string_environment().from_string(source).render(context)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{what}: syntax error: {exc.message}") from None
    except UndefinedError as exc:
        raise TemplateError(f"{what}: undefined variable: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateError(f"{what}: not allowed in configuration: {exc}") from None
    except (TemplateRuntimeError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise TemplateError(f"{what}: {type(exc).__name__}: {exc}") from None
    bad = control_characters(text)
    if bad:
        raise TemplateError(
            f"{what}: renders control characters ({', '.join(bad)}); it goes into a header"
        )
    return text


def wrap_text(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap every line of the plain-text part at `width` columns, keeping indentation and
    list markers as a hanging indent and never breaking a URL (clients would not link it)."""
    out: list[str] = []
    # split("\n"), not splitlines(): a line separator (U+2028) in a title is text, not a line
    for line in text.split("\n"):
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
