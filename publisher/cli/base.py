"""What every command module shares: the typer app, consoles, per-invocation state, the clock
and the list of `publisher check` checks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from publisher.config import DEFAULT_CONFIG, PublisherConfig, load_config
from publisher.store import Store, open_store

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Collect content, publish feeds and send email digests.",
    pretty_exceptions_enable=False,
)
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
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.config.effective_database_url)
        return self._store


def state(ctx: typer.Context) -> AppState:
    return ctx.obj


def utc_now() -> datetime:
    """The one clock of the CLI: inner code is always given `now`."""
    return datetime.now(UTC)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[Path, typer.Option("--config", "-c", help="Configuration file.")] = Path(
        DEFAULT_CONFIG
    ),
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="Log what happens (-vv: debug).")
    ] = 0,
) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=verbose > 1)],
        force=True,
    )
    ctx.obj = AppState(config_path=config, verbose=verbose)


# Later stages add their own checks here (templates, cadences...): each takes the validated
# configuration and returns a list of human-readable problems.
CHECKS: list[Callable[[PublisherConfig], list[str]]] = []


def warn(message: str, label: str = "warning", style: str = "yellow") -> None:
    """One labelled line on stderr; markup off, since messages quote user input."""
    err_console.print(Text.assemble((f"{label}: ", style), str(message)), highlight=False)


def parse_at(value: str | None, zone: str) -> datetime:
    """--at: an ISO 8601 date/time; without an offset it is in the campaign's time zone."""
    if not value:
        return utc_now()
    from zoneinfo import ZoneInfo

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not an ISO 8601 date/time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(UTC)
