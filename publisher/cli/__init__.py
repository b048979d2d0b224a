"""The `publisher` command. The only place a PublisherError becomes a message and exit code.

Commands live in one module per stage (content, feeds, digest, delivery, schedule); importing
them registers them on the shared typer app.
"""

from __future__ import annotations

import sys

import typer

from publisher.cli import (  # noqa: F401  (importing a module registers its commands)
    content,
    delivery,
    digest,
    feeds,
    schedule,
    subscribers,
    web,
)
from publisher.cli.base import app, err_console, warn
from publisher.errors import ConfigErrors, PublisherError

__all__ = ["app", "main"]


def main() -> None:
    try:
        code = app(standalone_mode=False)
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
        if callable(getattr(exc, "show", None)) and isinstance(
            getattr(exc, "exit_code", None), int
        ):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
