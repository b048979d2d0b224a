"""Content commands: collect, items, check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from publisher.cli.base import (
    PlainCommand,
    app,
    command_group,
    console,
    state,
    utc_now,
    warn,
)
from publisher.store.items import list_items, retire_item, unretire_item
from publisher.store.sink import StoreSink
from publisher.support.screen import count

if TYPE_CHECKING:
    from publisher.sources.collect import CollectReport


@app.command(cls=PlainCommand)
def collect(ctx: typer.Context) -> None:
    """Collect items from every configured source into the store."""
    from publisher.pipeline import publish_posts
    from publisher.sources.collect import collect_all

    st = state(ctx)
    now = utc_now()
    # The newsroom's posts that came due go live first, as the daemon's collect does.
    publish_posts(st.config, st.store, now=now, pages=True)
    report = collect_all(st.config, StoreSink(st.store), now=now)
    print_collect_report(report)


def print_collect_report(report: CollectReport) -> None:
    table = Table(title="Collected", title_justify="left")
    for column in ("source", "found", "new", "updated", "unchanged"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for s in report.sources:
        note = " (not modified)" if s.not_modified else ""
        table.add_row(
            s.name + note,
            str(s.found),
            str(s.upsert.inserted),
            str(s.upsert.updated),
            str(s.upsert.unchanged),
        )
    console.print(table)
    # Each problem was already logged as a warning (file/URL, line, why) by collect_all.
    retired = f", {report.retired} retired (file deleted)" if report.retired else ""
    console.print(
        f"{report.inserted} new, {report.updated} updated, {report.unchanged} unchanged"
        f"{retired}, {count(len(report.problems), 'problem')}",
        markup=False,
        highlight=False,
    )


items_app = command_group(
    "items", "Stored items: list them, retire one, or bring one back.", invoke_without_command=True
)


@items_app.callback()
def items(
    ctx: typer.Context,
    topic: Annotated[
        str | None, typer.Option(metavar="TOPIC", help="Only items with this topic.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(metavar="KIND", help="Only items of this kind.")
    ] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many rows.", min=1)] = 50,
) -> None:
    """List stored items, newest first (retired items are not listed)."""
    if ctx.invoked_subcommand is not None:
        return
    st = state(ctx)
    rows = list_items(st.store, topic=topic, kind=kind, limit=limit)
    zone = ZoneInfo(st.config.organisation.timezone)
    table = Table(caption=f"times in {zone.key}")
    for column in ("published", "kind", "title", "topics", "source", "id"):
        table.add_column(column)
    for item in rows:
        table.add_row(
            item.published.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            item.kind,
            item.title,
            ", ".join(item.topics),
            item.source,
            item.id,
        )
    console.print(table)
    console.print(count(len(rows), "item"))


@items_app.command("retire", cls=PlainCommand)
def retire(
    ctx: typer.Context,
    item_id: Annotated[str, typer.Argument(metavar="ID", help="The item's id (see `items`).")],
) -> None:
    """Retire an item: it never appears in an edition or a feed again."""
    st = state(ctx)
    item = retire_item(st.store, item_id, now=utc_now())
    console.print(
        f"retired {item.id} ('{item.title}'): left out of every future edition and feed "
        "from the next build (`publisher feeds build`)",
        markup=False,
        highlight=False,
    )


@items_app.command("unretire", cls=PlainCommand)
def unretire(
    ctx: typer.Context,
    item_id: Annotated[str, typer.Argument(metavar="ID", help="The item's id (see `items`).")],
) -> None:
    """Bring a retired item back into editions and feeds.

    The next collect updates it like any other item.
    """
    st = state(ctx)
    item = unretire_item(st.store, item_id, now=utc_now())
    console.print(
        f"brought back {item.id} ('{item.title}'): the next edition and feed build may carry it",
        markup=False,
        highlight=False,
    )


@app.command(cls=PlainCommand)
def check(ctx: typer.Context) -> None:
    """Validate the configuration and templates.

    Lists every problem found (exit 2); the configuration itself is checked first.
    """
    from publisher.cli.checks import CHECKS  # here: it imports the other command modules

    st = state(ctx)
    problems: list[str] = []
    config = st.config  # raises ConfigError(s) with file, line and key
    for checker in CHECKS:
        problems.extend(checker(config))
    if problems:
        for problem in problems:
            warn(str(problem), "problem", "red")
        raise typer.Exit(2)
    console.print(f"{config.file}: OK ({len(config.sources)} source(s))")
