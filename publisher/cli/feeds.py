"""`publisher feeds ...`: static feed files."""

from __future__ import annotations

import typer

from publisher.cli.base import app, console, state, utc_now, warn

# --- feeds ----------------------------------------------------------------------------------

feeds_app = typer.Typer(no_args_is_help=True, help="Static RSS, Atom and JSON feeds.")
app.add_typer(feeds_app, name="feeds")


@feeds_app.command("build")
def feeds_build(ctx: typer.Context) -> None:
    """Write every configured feed (unchanged files are left untouched)."""
    from publisher.pipeline import build_feeds

    st = state(ctx)
    report = build_feeds(st.config, st.store, now=utc_now())
    for message in report.left_out + report.problems:
        warn(message)
    console.print(report.note, highlight=False)


# Feeds naming an unknown campaign are refused when the file is loaded (config.loader).
