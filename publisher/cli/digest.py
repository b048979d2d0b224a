"""Digest commands: preview, editions."""

from __future__ import annotations

import textwrap
from datetime import UTC
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from publisher.cli.base import (
    PlainCommand,
    app,
    console,
    parse_at,
    state,
    warn,
)
from publisher.config import PublisherConfig
from publisher.support.screen import count, edition_outcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from publisher.items import Item
    from publisher.store.editions import EditionSummary

# --- digest editions ------------------------------------------------------------------------


@app.command(cls=PlainCommand)
def preview(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(metavar="CAMPAIGN", help="Campaign name.")],
    at: Annotated[
        str | None,
        typer.Option("--at", metavar="DATETIME", help="Compose as if at this ISO date/time."),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the HTML preview in a browser.")
    ] = False,
) -> None:
    """Compose a campaign's next edition without storing it.

    Writes preview/CAMPAIGN.html, .txt and .eml.
    """
    from publisher.pipeline import next_selection, prepare_edition, preview_email, unstored_edition
    from publisher.render.preview import preview_documents

    st = state(ctx)
    config = st.config
    found = config.campaign(campaign)
    now = parse_at(at, found.timezone or config.organisation.timezone)
    prepared = prepare_edition(config, st.store, campaign, now=now)
    if prepared is None:
        console.print(f"{campaign}: nothing new to compose at {now:%Y-%m-%d %H:%M} UTC")
        print_left_out(next_selection(config, st.store, campaign, now=now).left_out)
        return
    edition, rendered = prepared
    folder = config.resolve("preview")
    folder.mkdir(parents=True, exist_ok=True)
    table = Table(title=f"{rendered.subject} (edition {edition.number})", title_justify="left")
    for column in ("section", "published", "kind", "title"):
        table.add_column(column)
    for section, _position, item in edition.placements():
        table.add_row(section, f"{item.published:%Y-%m-%d}", item.kind, item.title)
    console.print(table)
    documents = preview_documents(rendered, config.organisation)
    documents[".eml"] = preview_email(
        config, unstored_edition(campaign, edition, rendered, now=now), now=now
    )
    for suffix, content in documents.items():
        path = folder / f"{campaign}{suffix}"
        path.write_bytes(content)
        console.print(f"wrote {path}", highlight=False)
    console.print(f"{count(len(edition.items), 'item')}, HTML {rendered.size / 1024:.1f} KB")
    print_left_out(edition.left_out)
    for warning in rendered.warnings:
        warn(warning)
    if open_browser:
        import webbrowser

        webbrowser.open((folder / f"{campaign}.html").resolve().as_uri())


def print_left_out(left_out: Sequence[tuple[Item, str]]) -> None:
    """Every stored item the next edition leaves out and why, newest first: a late or
    future-dated item is never silently missing."""
    if not left_out:
        console.print("left out: none (every stored item is in it or went out before)")
        return
    console.print(f"left out: {count(len(left_out), 'item')}")
    for item, reason in sorted(left_out, key=lambda entry: entry[0].published, reverse=True):
        line = f"  {item.published:%Y-%m-%d}  {item.title} ({item.id}): {reason}"
        console.print(line, highlight=False, markup=False)


@app.command(cls=PlainCommand)
def editions(
    ctx: typer.Context,
    campaign: Annotated[
        str | None, typer.Argument(metavar="CAMPAIGN", help="Only this campaign.")
    ] = None,
) -> None:
    """List stored editions with their kind and counts.

    Kind: digest (a campaign's edition), welcome (the welcome email, campaign "~welcome")
    or broadcast (an action alert, campaign "~broadcast"). Counts: items; recipients sent,
    uncertain (assumed sent), failed or bounced, skipped; and the numbers of the uncertain
    batches (`publisher send CAMPAIGN --resend-batch N`).
    """
    from publisher.store.editions import list_editions

    st = state(ctx)
    if campaign:
        st.config.campaign(campaign)  # an unknown name is an error, not an empty table
    rows = list_editions(st.store, campaign)
    # A few short lines per edition rather than an 11-column table: readable at 80 columns,
    # and each line says what its numbers are.
    console.file.write("".join(edition_lines(e, width=max(console.width, 40)) for e in rows))
    console.print(count(len(rows), "edition"))


def edition_kind(campaign: str) -> str:
    """What an edition is, by its campaign key: the reserved keys ("~...", never a
    campaign's name) hold the welcome email's and broadcasts' editions."""
    from publisher.config.models import BROADCAST_CAMPAIGN
    from publisher.store.welcome import WELCOME

    return {WELCOME: "welcome", BROADCAST_CAMPAIGN: "broadcast"}.get(campaign, "digest")


def edition_lines(e: EditionSummary, *, width: int) -> str:
    """One edition for `publisher editions`: its header line, its kind and counts, its
    subject."""
    lines = [
        f"{e.campaign} #{e.number}: {edition_outcome(e.status, e.uncertain)}",
        f"  {edition_kind(e.campaign)}, composed "
        + f"{e.composed_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC, {count(e.item_count, 'item')}",
        f"  sent {e.sent}, uncertain {e.uncertain}, failed {e.failed}, skipped {e.skipped}",
    ]
    if e.uncertain_batches:
        lines.append("  uncertain batches: " + ", ".join(map(str, e.uncertain_batches)))
    lines += textwrap.wrap(
        f"subject: {e.subject}", width, initial_indent="  ", subsequent_indent="    "
    )
    return "\n".join(lines) + "\n"


def check_digest_templates(config: PublisherConfig) -> list[str]:
    """Templates compile with sample data; MJML elements/attributes known; colours AA."""
    from publisher.render.checks import check_templates

    return check_templates(config)
