"""Digest commands: preview, editions."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from publisher.cli.base import (
    CHECKS,
    app,
    console,
    parse_at,
    state,
    warn,
)
from publisher.config import PublisherConfig

# --- digest editions ------------------------------------------------------------------------


@app.command()
def preview(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="Campaign name.")],
    at: Annotated[
        str | None, typer.Option("--at", help="Compose as if at this ISO date/time.")
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the HTML preview in a browser.")
    ] = False,
) -> None:
    """Compose a campaign's next edition without storing it; write preview/ files."""
    from publisher.pipeline import prepare_edition, preview_email, unstored_edition
    from publisher.render.preview import preview_documents

    st = state(ctx)
    config = st.config
    found = config.campaign(campaign)
    now = parse_at(at, found.timezone or config.organisation.timezone)
    prepared = prepare_edition(config, st.store, campaign, now=now)
    if prepared is None:
        console.print(f"{campaign}: nothing new to compose at {now:%Y-%m-%d %H:%M} UTC")
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
    console.print(f"{len(edition.items)} item(s), HTML {rendered.size / 1024:.1f} KB")
    for warning in rendered.warnings:
        warn(warning)
    if open_browser:
        import webbrowser

        webbrowser.open((folder / f"{campaign}.html").resolve().as_uri())


@app.command()
def editions(
    ctx: typer.Context,
    campaign: Annotated[str | None, typer.Argument(help="Only this campaign.")] = None,
) -> None:
    """List stored editions with their item and recipient counts."""
    from publisher.store.editions import list_editions
    from publisher.support.screen import edition_outcome

    st = state(ctx)
    if campaign:
        st.config.campaign(campaign)  # an unknown name is an error, not an empty table
    rows = list_editions(st.store, campaign)
    table = Table()
    counted = ("no.", "items", "sent", "uncertain", "failed", "skipped")
    columns = ("campaign", "no.", "composed", "status", "items", "sent", "uncertain", "failed")
    for column in (*columns, "skipped", "uncertain batches", "subject"):
        table.add_column(column, justify="right" if column in counted else "left")
    for e in rows:
        table.add_row(
            e.campaign,
            str(e.number),
            f"{e.composed_at:%Y-%m-%d %H:%M}",
            edition_outcome(e.status, e.uncertain),
            str(e.item_count),
            str(e.sent),
            str(e.uncertain),
            str(e.failed),
            str(e.skipped),
            ", ".join(map(str, e.uncertain_batches)),
            e.subject,
        )
    console.print(table)
    console.print(f"{len(rows)} edition(s)")


def check_digest_templates(config: PublisherConfig) -> list[str]:
    """Templates compile with sample data; MJML elements/attributes known; colours AA."""
    from publisher.render.checks import check_templates

    return check_templates(config)


CHECKS.append(check_digest_templates)
