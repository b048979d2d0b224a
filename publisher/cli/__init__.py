"""The `publisher` command. The only place a PublisherError becomes a message and exit code.

Commands live in one module per stage (content, delivery, digest, feeds, schedule, staff,
subscribers, web); importing them registers them on the shared typer app. What `publisher
check` runs is one tuple in cli/checks.py.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import typer

from publisher.cli import (  # noqa: F401  (importing a module registers its commands)
    broadcasts,
    content,
    delivery,
    digest,
    feeds,
    keys,
    schedule,
    staff,
    subscribers,
    web,
    webhooks,
)
from publisher.cli.base import app, err_console, hoist_global_options, warn
from publisher.errors import ConfigErrors, PublisherError

__all__ = ["app", "main"]


def main(args: Sequence[str] | None = None) -> None:
    command = typer.main.get_command(app)
    argv = hoist_global_options(list(sys.argv[1:] if args is None else args), command)
    try:
        code = command(args=argv, prog_name="publisher", standalone_mode=False)
        if isinstance(code, int) and code:  # without standalone mode click returns
            sys.exit(code)  # the code of a typer.Exit instead of exiting
    except PublisherError as exc:
        errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
        for error in errors:
            warn(str(error), "error", "red")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        # A usage error (unknown command, bad option value) is click's ClickException; typer
        # ships its own copy of click, so recognise it by its interface, not its class.
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        if logging.getLogger().isEnabledFor(logging.DEBUG):  # -vv: the traceback, for a bug
            raise
        warn(f"{type(exc).__name__}: {exc} (a bug: run with -vv to see where)", "internal error")
        sys.exit(1)


if __name__ == "__main__":
    main()
