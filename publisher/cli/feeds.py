"""`publisher feeds ...`: static feed files."""

from __future__ import annotations

import typer

from publisher.cli.base import PlainCommand, command_group, console, state, utc_now, warn

# --- feeds ----------------------------------------------------------------------------------

feeds_app = command_group("feeds", "Static RSS, Atom and JSON feeds.", no_args_is_help=True)


@feeds_app.command("build", cls=PlainCommand)
def feeds_build(ctx: typer.Context) -> None:
    """Write every configured feed (unchanged files are left untouched)."""
    from publisher.pipeline import build_feeds

    st = state(ctx)
    report = build_feeds(st.config, st.store, now=utc_now())
    for message in report.left_out + report.problems:
        warn(message)
    console.print(report.note, highlight=False)


# Feeds naming an unknown campaign are refused when the file is loaded (config.loader).
