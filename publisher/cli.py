"""The `publisher` command. The only place a PublisherError becomes a message and exit code."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from publisher.config import DEFAULT_CONFIG, PublisherConfig, load_config
from publisher.errors import ConfigErrors, PublisherError, ScheduleError
from publisher.store import Store, open_store

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Collect content, publish feeds and send email digests.",
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


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
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Configuration file.")
    ] = Path(DEFAULT_CONFIG),
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


@app.command()
def collect(ctx: typer.Context) -> None:
    """Collect items from every configured source into the store."""
    from publisher.collect import collect_all

    st = state(ctx)
    report = collect_all(st.config, st.store, now=utc_now())
    print_collect_report(report)


def print_collect_report(report) -> None:  # type: ignore[no-untyped-def]
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
    for problem in report.problems:
        err_console.print(Text.assemble(("skipped: ", "yellow"), str(problem)), highlight=False)
    console.print(
        f"{report.inserted} new, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.problems)} problem(s)"
    )


@app.command()
def items(
    ctx: typer.Context,
    topic: Annotated[str | None, typer.Option(help="Only items with this topic.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only items of this kind.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
) -> None:
    """List stored items, newest first."""
    st = state(ctx)
    rows = st.store.list_items(topic=topic, kind=kind, limit=limit)
    zone = ZoneInfo(st.config.organisation.timezone)
    table = Table(caption=f"times in {zone.key}")
    for column in ("published", "kind", "title", "topics", "source"):
        table.add_column(column)
    for item in rows:
        table.add_row(
            item.published.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            item.kind,
            item.title,
            ", ".join(item.topics),
            item.source,
        )
    console.print(table)
    console.print(f"{len(rows)} item(s)")


@app.command()
def check(ctx: typer.Context) -> None:
    """Validate the configuration and templates; list every problem found."""
    st = state(ctx)
    problems: list[str] = []
    config = st.config  # raises ConfigError(s) with file, line and key
    for checker in CHECKS:
        problems.extend(checker(config))
    if problems:
        for problem in problems:
            err_console.print(Text.assemble(("problem: ", "red"), str(problem)), highlight=False)
        raise typer.Exit(2)
    console.print(f"{config.file}: OK ({len(config.sources)} source(s))")


# Later stages add their own checks here (templates, cadences...): each takes the validated
# configuration and returns a list of human-readable problems.
CHECKS: list = []


@app.command()
def run(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Run the whole job once now, then exit.")
    ] = False,
) -> None:
    """Run the publisher: the scheduling daemon (until SIGTERM/Ctrl-C), or --once."""
    st = state(ctx)
    if not once:
        run_daemon(st)
        return
    from publisher.pipeline import run_once

    report = run_once(st.config, st.store, now=utc_now())
    if report.collect:
        print_collect_report(report.collect)
    for note in report.notes:
        console.print(note, highlight=False)


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
        err_console.print(Text.assemble(("warning: ", "yellow"), message), highlight=False)
    console.print(report.note, highlight=False)


def check_feeds(config: PublisherConfig) -> list[str]:
    """Feeds naming a campaign that is not configured would stay empty forever."""
    campaigns = {campaign.name for campaign in config.campaigns}
    return [
        f"{config.file}: feeds.feeds[{index}].campaign: unknown campaign '{feed.campaign}'"
        for index, feed in enumerate(config.feeds.feeds)
        if feed.campaign and feed.campaign not in campaigns
    ]


CHECKS.append(check_feeds)


# --- digest editions ------------------------------------------------------------------------


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
    from publisher.compose import find_campaign
    from publisher.pipeline import prepare_edition
    from publisher.render.preview import preview_documents

    st = state(ctx)
    config = st.config
    found = find_campaign(config.campaigns, campaign)
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
    for suffix, content in preview_documents(rendered, config.organisation, now=now).items():
        path = folder / f"{campaign}{suffix}"
        path.write_bytes(content)
        console.print(f"wrote {path}", highlight=False)
    console.print(f"{len(edition.items)} item(s), HTML {rendered.size / 1024:.1f} KB")
    for warning in rendered.warnings:
        err_console.print(Text.assemble(("warning: ", "yellow"), warning), highlight=False)
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

    st = state(ctx)
    rows = list_editions(st.store, campaign)
    table = Table()
    for column in ("campaign", "no.", "composed", "status", "items", "recipients", "subject"):
        table.add_column(column, justify="right" if column in ("no.", "items") else "left")
    for e in rows:
        table.add_row(
            e.campaign,
            str(e.number),
            f"{e.composed_at:%Y-%m-%d %H:%M}",
            e.status,
            str(e.item_count),
            str(e.recipients),
            e.subject,
        )
    console.print(table)
    console.print(f"{len(rows)} edition(s)")


def check_digest_templates(config: PublisherConfig) -> list[str]:
    """Templates compile with sample data; MJML elements/attributes known; colours AA."""
    from publisher.render.checks import check_templates

    return check_templates(config)


CHECKS.append(check_digest_templates)


# --- delivery and subscribers ---------------------------------------------------------------


def _edition_to_send(st: AppState, campaign: str, *, resume: bool, resend_uncertain: bool,
                     preview_only: bool):  # type: ignore[no-untyped-def]
    """--resume: the unfinished edition; --dry-run/--to: the newest (or an unstored compose);
    otherwise compose a new edition now. None: nothing new to send."""
    from publisher.deliver import newest_edition, resumable_edition, unfinished_edition
    from publisher.deliver.service import campaign_of
    from publisher.pipeline import compose_campaign, prepare_edition

    campaign_of(st.config, campaign)  # a clear error for an unknown campaign
    if resume or resend_uncertain:
        return resumable_edition(st.store, campaign, resend_uncertain=resend_uncertain)
    unfinished = unfinished_edition(st.store, campaign)
    if preview_only:
        edition = unfinished or newest_edition(st.store, campaign)
        if edition is None:
            prepared = prepare_edition(st.config, st.store, campaign, now=utc_now())
            edition = prepared and _unstored(campaign, *prepared)
        return edition
    if unfinished is not None:
        raise PublisherError(
            f"{campaign}: edition {unfinished.number} was not fully sent; "
            f"run `publisher send {campaign} --resume` to finish it"
        )
    record = compose_campaign(st.config, st.store, campaign, now=utc_now())
    return record.id if record else None


def _unstored(campaign: str, edition, rendered):  # type: ignore[no-untyped-def]
    from publisher.store.editions import StoredEdition

    return StoredEdition(0, campaign, edition.number, None, utc_now(), rendered.subject,
                         rendered.preheader, rendered.html, rendered.text, "preview", None,
                         len(edition.items))


@app.command()
def send(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="Campaign name.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Counts, batches and a sample; send nothing.")
    ] = False,
    to: Annotated[
        str | None, typer.Option("--to", help="Test-send the edition to this address only.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Finish the campaign's interrupted edition.")
    ] = False,
    resend_uncertain: Annotated[
        bool,
        typer.Option("--resend-uncertain", help="Also resend batches whose fate is unknown."),
    ] = False,
    send_at: Annotated[
        str | None,
        typer.Option("--send-at", help="sendgrid: deliver at this ISO time (<= 72 h ahead)."),
    ] = None,
) -> None:
    """Compose a campaign's next edition and send it now (exactly once per subscriber)."""
    from publisher.deliver.registry import backend_name

    st = state(ctx)
    when = parse_at(send_at, st.config.organisation.timezone) if send_at else None
    if when is not None and backend_name(st.config) != "sendgrid":
        raise PublisherError("--send-at needs the sendgrid backend (it schedules at SendGrid)")
    edition = _edition_to_send(st, campaign, resume=resume, resend_uncertain=resend_uncertain,
                               preview_only=dry_run or bool(to))
    if edition is None:
        console.print(f"{campaign}: nothing new, nothing sent")
        return
    if dry_run:
        _print_dry_run(st, edition)
    elif to:
        _send_to_one(st, edition, to)
    else:
        _send_with_progress(st, edition, resend_uncertain=resend_uncertain, send_at=when)


def _print_dry_run(st: AppState, edition) -> None:  # type: ignore[no-untyped-def]
    from publisher.deliver import dry_run

    plan = dry_run(st.config, st.store, edition, now=utc_now())
    console.print(plan.sample, highlight=False, markup=False)
    console.print(
        f"dry run: {plan.campaign} #{plan.number} via {plan.backend} to {plan.destination}: "
        f"{plan.recipients} recipient(s) in {plan.batches} batch(es), "
        f"{plan.already_done} already sent; nothing was sent",
        highlight=False,
    )


def _send_to_one(st: AppState, edition, address: str) -> None:  # type: ignore[no-untyped-def]
    from publisher.deliver import send_test_message

    problem = send_test_message(st.config, st.store, edition, address, now=utc_now())
    if problem:
        raise PublisherError(f"test send to {address} failed: {problem}")
    console.print(f"test message sent to {address} (the ledger is unchanged)", highlight=False)


def _send_with_progress(
    st: AppState, edition_id: int, *, resend_uncertain: bool, send_at: datetime | None = None
) -> None:
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from publisher.pipeline import send_edition

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task("sending", total=None, rate="")

        def advance(count: int, total: int) -> None:
            bar.update(task, total=total, advance=count)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f}/s" if speed else "")

        try:
            report = send_edition(st.config, st.store, edition_id, now=utc_now(),
                                  resend_uncertain=resend_uncertain, progress=advance,
                                  clock=time.monotonic, send_at=send_at)
        except KeyboardInterrupt:  # batches in flight were recorded before we got here
            err_console.print("interrupted: run `publisher send CAMPAIGN --resume` to finish")
            raise typer.Exit(130) from None
    _print_delivery_report(report)


def _print_delivery_report(report) -> None:  # type: ignore[no-untyped-def]
    table = Table(title=f"{report.campaign} #{report.number} via {report.backend}",
                  title_justify="left")
    for column in ("sent", "skipped", "failed", "uncertain", "batches", "requests", "time"):
        table.add_column(column, justify="right")
    table.add_row(str(report.sent), str(report.skipped), str(report.failed),
                  str(report.uncertain + report.recovered_uncertain), str(report.batches),
                  str(report.requests), f"{report.seconds:.1f}s")
    console.print(table)
    for email, error in report.failures:
        err_console.print(Text.assemble(("failed: ", "red"), f"{email}: {error}"),
                          highlight=False)
    if report.recovered_uncertain:
        err_console.print(
            f"{report.recovered_uncertain} recipient(s) were in flight when the last send "
            "stopped: assumed sent, not resent (see README: interrupted sends)"
        )
    console.print(report.note, highlight=False)
    if report.paused:
        raise typer.Exit(1)


subscribers_app = typer.Typer(no_args_is_help=True, help="Subscribers of the mailing list.")
app.add_typer(subscribers_app, name="subscribers")


@subscribers_app.command("import")
def subscribers_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV (email,name,topics[,status]) or JSON.")],
) -> None:
    """Add or update subscribers; never re-subscribes anyone who opted out."""
    from publisher.store.subscribers import import_subscribers, read_subscriber_file

    st = state(ctx)
    rows, problems = read_subscriber_file(file)
    for problem in problems:
        err_console.print(Text.assemble(("skipped: ", "yellow"), problem), highlight=False)
    result = import_subscribers(st.store, rows, now=utc_now())
    console.print(f"{result.inserted} new, {result.updated} updated, {result.unchanged} "
                  f"unchanged, {result.kept_inactive} kept opted out, {len(problems)} skipped")


@subscribers_app.command("list")
def subscribers_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
) -> None:
    """Subscribers by id with status and topics, and a count per status."""
    from itertools import islice

    from publisher.store.subscribers import count_by_status, iter_subscribers

    st = state(ctx)
    table = Table()
    for column in ("id", "email", "name", "status", "topics"):
        table.add_column(column)
    for s in islice(iter_subscribers(st.store, status=status), limit):
        table.add_row(str(s.id), s.email, s.name or "", s.status, ", ".join(s.topics) or "(all)")
    console.print(table)
    counts = count_by_status(st.store)
    console.print(", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "none")


def check_delivery_backend(config: PublisherConfig) -> list[str]:
    """The delivery backend exists and its secrets are in the environment."""
    from publisher.deliver import check_delivery

    return check_delivery(config)


CHECKS.append(check_delivery_backend)


# --- scheduling -----------------------------------------------------------------------------


def run_daemon(st: AppState) -> None:
    """`publisher run`: one log line per action; returns (exit 0) after SIGTERM/SIGINT."""
    from publisher.schedule import make_daemon

    publisher_logger = logging.getLogger("publisher")
    if publisher_logger.getEffectiveLevel() > logging.INFO:
        publisher_logger.setLevel(logging.INFO)
    make_daemon(st.config, st.store, clock=utc_now).serve()


@app.command()
def schedule(ctx: typer.Context) -> None:
    """Each campaign's cadence, next three runs (local and UTC), last edition, paused or not."""
    from publisher.schedule import far_away_warnings, overview

    st = state(ctx)
    now = utc_now()
    for warning in far_away_warnings(st.config, now=now):
        err_console.print(Text.assemble(("warning: ", "yellow"), warning), highlight=False)
    for row in overview(st.config, st.store, now=now):
        paused = f"[yellow]PAUSED[/] ({row.paused})" if row.paused else "active"
        console.print(f"[bold]{row.name}[/]  {row.cadence}, {row.zone}  {paused}")
        zone = ZoneInfo(row.zone)
        for t in row.next_runs:
            console.print(f"  next  {t.astimezone(zone):%a %Y-%m-%d %H:%M %Z}  ({t:%H:%M} UTC)")
        console.print(f"  last  {describe_last(row)}", highlight=False)


def describe_last(row) -> str:  # type: ignore[no-untyped-def]
    parts = []
    if row.last_edition:
        e = row.last_edition
        parts.append(f"edition {e.number}, composed {e.composed_at:%Y-%m-%d %H:%M} UTC, {e.status}")
    if row.last_slot:
        s = row.last_slot
        parts.append(f"slot {s.slot:%Y-%m-%d %H:%M} UTC: {s.status} {s.detail}".strip())
    return "; ".join(parts) or "no edition yet"


def find_campaign_name(config: PublisherConfig, name: str) -> str:
    names = [c.name for c in config.campaigns]
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f" (campaigns: {', '.join(names)})"
        raise ScheduleError(f"unknown campaign '{name}'{hint}")
    return name


@app.command()
def pause(ctx: typer.Context, campaign: str) -> None:
    """Pause a campaign: no edition is composed or sent until `publisher resume`."""
    from publisher.store.schedule_state import set_paused

    st = state(ctx)
    name = find_campaign_name(st.config, campaign)
    was = set_paused(st.store, name, True, now=utc_now())
    what = "already paused" if was else "paused"
    console.print(f"{name}: {what} (a running daemon sees it within a minute)")


@app.command()
def resume(ctx: typer.Context, campaign: str) -> None:
    """Resume a paused campaign from its next slot (slots while paused are not caught up)."""
    from publisher.store.schedule_state import set_paused

    st = state(ctx)
    name = find_campaign_name(st.config, campaign)
    config_campaign = next(c for c in st.config.campaigns if c.name == name)
    set_paused(st.store, name, False, now=utc_now())
    if config_campaign.paused:
        raise ScheduleError(
            f"{name} is paused in {st.config.file} (paused: true); remove that line to resume it"
        )
    console.print(f"{name}: resumed")


def check_schedules(config: PublisherConfig) -> list[str]:
    """Every cadence builds a trigger in its zone; far-away next runs are warnings."""
    from publisher.schedule import far_away_warnings, schedule_problems

    for warning in far_away_warnings(config, now=utc_now()):
        err_console.print(Text.assemble(("warning: ", "yellow"), warning), highlight=False)
    return [f"{config.file}: {problem}" for problem in schedule_problems(config)]


CHECKS.append(check_schedules)


def main() -> None:
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # without standalone mode click returns
            sys.exit(code)  # the code of a typer.Exit instead of exiting
    except PublisherError as exc:
        errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
        for error in errors:
            err_console.print(Text.assemble(("error: ", "red"), str(error)), highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
