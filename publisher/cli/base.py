"""What every command module shares: the typer app, consoles, per-invocation state, the clock
and the option parsers (addresses, --at)."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text
from typer.core import TyperCommand

from publisher.config import DEFAULT_CONFIG, PublisherConfig, load_config
from publisher.errors import ConfigError, ConfigErrors
from publisher.store import Store, open_store

# Help is click's plain text (rich_markup_mode=None): typer's rich panels print a `<bool>`
# placeholder beside every flag, keep a docstring's line breaks in the command list, and
# squeeze options into a narrow column at 80. Plain help re-flows each docstring paragraph
# (a paragraph starting with a line holding only \b is kept as written) and lists each
# command by its first sentence: keep that sentence short.
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Collect content, publish feeds and send email digests.",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class PlainCommand(TyperCommand):
    """A command whose help lists each argument by its name alone (`CAMPAIGN  Campaign
    name.`): typer writes a type placeholder (`<str>`) beside it. Every command uses it
    (`@app.command(cls=PlainCommand)`)."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments: list[tuple[str, str]] = []
        options: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((param.metavar or record[0], record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def command_group(name: str, help: str, **options: Any) -> typer.Typer:
    """A `publisher NAME ...` group with the same plain help as the app."""
    group = typer.Typer(help=help, rich_markup_mode=None, **options)
    app.add_typer(group, name=name)
    return group


console = Console(soft_wrap=True)
# Lines are never re-wrapped: a `file:line: key`, a path or a header split over two lines
# would mislead, and scripts read the output line by line. (Tables size themselves.)
err_console = Console(stderr=True, soft_wrap=True)


@dataclass
class AppState:
    config_path: Path
    verbose: int
    _config: PublisherConfig | None = None
    _store: Store | None = None

    @property
    def config(self) -> PublisherConfig:
        """The validated configuration: every command refuses what `publisher check` does
        about the file itself (names, references, addresses, header values, and subjects and
        preheaders rendered in the sandbox), before anything is opened or written."""
        if self._config is None:
            from publisher.render.checks import config_string_errors

            config = load_config(self.config_path)
            errors = config_string_errors(config)
            if errors:
                raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
            self._config = config
        return self._config

    @property
    def pool_size(self) -> int:
        """Connections: the sending threads, the claiming thread, the heartbeat, one spare."""
        delivery = self.config.delivery
        workers = max(
            delivery.sendgrid.workers, delivery.smtp.workers, self.config.webhooks.workers
        )
        return max(5, workers + 3)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.config.effective_database_url, pool_size=self.pool_size)
        return self._store


def state(ctx: typer.Context) -> AppState:
    found: AppState = ctx.obj
    return found


CLOCK_VARIABLE = "PUBLISHER_NOW"


def utc_now() -> datetime:
    """The one clock of the CLI: inner code is always given `now`. PUBLISHER_NOW (an ISO
    8601 date/time; without an offset, UTC) fixes it, for tests and demos of another day:
    every command then works as if it were that moment. Never set it in production."""
    fixed = os.environ.get(CLOCK_VARIABLE, "").strip()
    if not fixed:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(fixed)
    except ValueError:
        raise ConfigError(
            f"{CLOCK_VARIABLE}='{fixed}' is not an ISO 8601 date/time "
            "(e.g. 2031-06-02T09:00:00Z); unset it to use the real clock"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Option("--config", "-c", metavar="PATH", help="Configuration file.")
    ] = Path(DEFAULT_CONFIG),
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="Log what happens (-vv: debug).")
    ] = 0,
) -> None:
    configure_logging(verbose)
    ctx.obj = AppState(config_path=config, verbose=verbose)


def configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=verbose > 1)],
        force=True,
    )


# Options of the `publisher` command itself that people also type after the subcommand
# (`publisher check --config x.yaml -v`): main() moves them in front of it.
GLOBAL_VALUE_OPTIONS = ("--config", "-c")
GLOBAL_FLAGS = ("--verbose",)


def _is_global(token: str) -> bool:
    if token in GLOBAL_VALUE_OPTIONS or token in GLOBAL_FLAGS:
        return True
    if token.startswith("--config="):
        return True
    return len(token) > 1 and token[0] == "-" and set(token[1:]) == {"v"}  # -v, -vv


def hoist_global_options(args: list[str], command: Any) -> list[str]:
    """Move --config/-c/-v/--verbose found after a subcommand to the front. `command` is the
    click group: the values of the subcommands' own options (`--to -v`) are never moved,
    and nothing after `--` is touched."""
    hoisted: list[str] = []
    rest: list[str] = []
    current = command
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            rest.append(token)
            rest.extend(tokens)
            break
        if _is_global(token):
            hoisted.append(token)
            if token in GLOBAL_VALUE_OPTIONS:
                hoisted.extend(islice(tokens, 1))
            continue
        rest.append(token)
        subcommands = getattr(current, "commands", None)
        if isinstance(subcommands, dict) and token in subcommands:
            current = subcommands[token]
        elif token.startswith("-") and _takes_value(current, token):
            rest.extend(islice(tokens, 1))
    return hoisted + rest


def _takes_value(command: Any, token: str) -> bool:
    for param in getattr(command, "params", []):
        if token in getattr(param, "opts", ()) and not getattr(param, "is_flag", False):
            return not getattr(param, "count", False)
    return False


def warn(message: str, label: str = "warning", style: str = "yellow") -> None:
    """One labelled line on stderr; markup off, since messages quote user input."""
    err_console.print(Text.assemble((f"{label}: ", style), str(message)), highlight=False)


def email_address(value: str) -> str:
    """A plain address (user@domain.tld); anything else is a usage error (exit 2)."""
    address = value.strip()
    if not re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\".]+", address):
        raise typer.BadParameter(f"'{value}' is not an email address")
    return address


# --at and --send-at: any time the tool can reason about (lookbacks, windows, a year of
# cadence ahead) without leaving the calendar datetime can represent.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, tzinfo=UTC)


def parse_at(value: str | None, zone: str, *, option: str = "--at") -> datetime:
    """--at / --send-at: an ISO 8601 date/time; without an offset it is in the campaign's
    time zone. Unreadable or out of range (year 9999) is a usage error (exit 2)."""
    if not value:
        return utc_now()
    from zoneinfo import ZoneInfo

    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(zone))
        moment = moment.astimezone(UTC)
    except ValueError:
        raise typer.BadParameter(
            f"'{value}' is not an ISO 8601 date/time", param_hint=option
        ) from None
    except OverflowError:
        moment = LATEST + timedelta(days=1)
    if not EARLIEST <= moment <= LATEST:
        raise typer.BadParameter(
            f"'{value}' is out of range ({EARLIEST:%Y} to {LATEST:%Y})", param_hint=option
        )
    return moment
