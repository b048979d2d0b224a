"""Running and scheduling: run (daemon or --once), schedule, pause, resume."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer

from publisher.cli.base import (
    CLOCK_VARIABLE,
    AppState,
    PlainCommand,
    app,
    console,
    state,
    utc_now,
    warn,
)
from publisher.cli.content import print_collect_report
from publisher.config import PublisherConfig
from publisher.errors import ScheduleError
from publisher.store.schedule_state import DEFAULT_LEASE

if TYPE_CHECKING:
    from publisher.schedule.presence import SchedulerStatus
    from publisher.schedule.slots import CampaignOverview
    from publisher.store.slot_overrides import SlotOverride


@app.command(cls=PlainCommand)
def run(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Run the whole job once now, then exit.")
    ] = False,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            metavar="SECONDS",
            min=3,
            max=3600,
            help="Seconds a slot this daemon claimed stays held without renewal: a dead "
            "daemon's slot is taken over by another after this long.",
        ),
    ] = DEFAULT_LEASE.total_seconds(),
) -> None:
    """Run the scheduling daemon, or the whole job once.

    The daemon runs until SIGTERM or Ctrl-C; --once collects, composes, sends and publishes
    once, then exits.
    """
    st = state(ctx)
    if not once:
        run_daemon(st, lease=timedelta(seconds=lease))
        return
    from publisher.pipeline import run_once

    now = utc_now()
    report = run_once(st.config, st.store, now=now)
    if report.collect:
        print_collect_report(report.collect)
    for note in report.notes:
        console.print(note, highlight=False)
    for line in where_to_look(st.config, now=now):
        console.print(line, highlight=False, markup=False)


def where_to_look(config: PublisherConfig, *, now: datetime) -> list[str]:
    """What `run --once` (`make run`) tells a newcomer after the notes: the moment it ran
    as (PUBLISHER_NOW or the real clock) and the folders it wrote, if they exist."""
    from publisher.publish.archive import ARCHIVE_DIR

    fixed = os.environ.get(CLOCK_VARIABLE, "").strip()
    how = f"{CLOCK_VARIABLE} fixed the clock" if fixed else "the real clock"
    lines = [f"ran as of {now:%Y-%m-%d %H:%M} UTC ({how})", "where to look:"]
    folders = [
        (config.resolve(config.delivery.file.path), "the emails (.eml), one per subscriber"),
        (config.root / ARCHIVE_DIR, "the editions' web pages and each campaign's index"),
        (config.resolve(config.feeds.output_dir), "the RSS, Atom and JSON feeds"),
    ]
    lines += [f"  {path}/  {what}" for path, what in folders if path.is_dir()]
    return lines if len(lines) > 2 else lines[:1]


# --- scheduling -----------------------------------------------------------------------------


def run_daemon(st: AppState, *, lease: timedelta = DEFAULT_LEASE) -> None:
    """`publisher run`: one log line per action; returns (exit 0) after SIGTERM/SIGINT."""
    from publisher.schedule.daemon import make_daemon

    publisher_logger = logging.getLogger("publisher")
    if publisher_logger.getEffectiveLevel() > logging.INFO:
        publisher_logger.setLevel(logging.INFO)
    make_daemon(st.config, st.store, clock=utc_now, lease=lease).serve()


@app.command(cls=PlainCommand)
def schedule(ctx: typer.Context) -> None:
    """Show each campaign's schedule and the processes running it.

    The cadence in words, the next three runs (local and UTC), the last edition and slot
    outcome, paused or not, late when no daemon is running; then every daemon and worker
    seen in the last day (running, or stopped or killed).
    """
    from publisher.schedule.presence import scheduler_status
    from publisher.schedule.slots import far_away_warnings, overview
    from publisher.schedule.steering import describe

    st = state(ctx)
    now = utc_now()
    for warning in far_away_warnings(st.config, now=now):
        warn(warning)
    for row in overview(st.config, st.store, now=now):
        paused = f"[yellow]PAUSED[/] ({row.paused})" if row.paused else "active"
        console.print(f"[bold]{row.name}[/]  {row.cadence}, {row.zone}  {paused}")
        zone = ZoneInfo(row.zone)
        for t in row.next_runs:
            console.print(f"  next  {t.astimezone(zone):%a %Y-%m-%d %H:%M %Z}  ({t:%H:%M} UTC)")
        for change in row.changes:  # skipped or moved by staff (`publisher skip/move`)
            console.print(f"  slot  {describe(change, st.config)}", highlight=False)
        console.print(f"  last  {describe_last(row)}", highlight=False)
    print_scheduler(scheduler_status(st.config, st.store, now=now))


def print_scheduler(status: SchedulerStatus) -> None:
    """The late campaigns and the processes the store has seen, as the dashboard shows them."""
    for name, slot in status.late.items():
        warn(f"{name}: the slot of {slot:%Y-%m-%d %H:%M} UTC is due and not sent", "late")
    if not status.running:
        warn(
            "no daemon seen for two minutes: nothing is sent until `publisher run` runs "
            "(docs/operators.md, Scheduling)"
        )
    console.print("[bold]processes[/]" if status.processes else "processes: none seen today")
    for line in status.processes:
        p = line.process
        state_words = "stopped or killed" if line.stale else "running"
        console.print(
            f"  {p.kind:<6}  {p.host}:{p.pid}  {p.version}  started {p.started:%Y-%m-%d %H:%M}"
            f" UTC  last seen {p.last_seen:%Y-%m-%d %H:%M:%S} UTC  {state_words}",
            highlight=False,
            markup=False,
        )


def describe_last(row: CampaignOverview) -> str:
    parts = []
    if row.last_edition:
        e = row.last_edition
        parts.append(f"edition {e.number}, composed {e.composed_at:%Y-%m-%d %H:%M} UTC, {e.status}")
    if row.last_slot:
        s = row.last_slot
        parts.append(f"slot {s.slot:%Y-%m-%d %H:%M} UTC: {s.status} {s.detail}".strip())
    return "; ".join(parts) or "no edition yet"


@app.command(cls=PlainCommand)
def pause(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(metavar="CAMPAIGN", help="Campaign name.")],
) -> None:
    """Pause a campaign until `publisher resume`.

    No edition is composed or sent meanwhile. Kept in the store: a running daemon sees it.
    """
    from publisher.store.schedule_state import set_paused

    st = state(ctx)
    name = st.config.campaign(campaign).name
    was = set_paused(st.store, name, True, now=utc_now())
    what = "already paused" if was else "paused"
    console.print(f"{name}: {what} (a running daemon sees it within a minute)")


@app.command(cls=PlainCommand)
def resume(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(metavar="CAMPAIGN", help="Campaign name.")],
) -> None:
    """Resume a paused campaign from its next slot.

    Slots that fell while it was paused are not caught up.
    """
    from publisher.store.schedule_state import set_paused

    st = state(ctx)
    config_campaign = st.config.campaign(campaign)
    name = config_campaign.name
    set_paused(st.store, name, False, now=utc_now())
    if config_campaign.paused:
        raise ScheduleError(
            f"{name} is paused in {st.config.file} (paused: true); remove that line to resume it"
        )
    console.print(f"{name}: resumed")


def check_schedules(config: PublisherConfig) -> list[str]:
    """Every cadence builds a trigger in its zone; far-away next runs are warnings."""
    from publisher.schedule.slots import far_away_warnings, schedule_problems

    for warning in far_away_warnings(config, now=utc_now()):
        warn(warning)
    return [f"{config.file}: {problem}" for problem in schedule_problems(config)]


# --- steering one slot (issue 21): the CLI side of the campaign page's skip and move ---------


@app.command(cls=PlainCommand)
def skip(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(metavar="CAMPAIGN", help="Campaign name.")],
    undo: Annotated[
        bool, typer.Option("--undo", help="Undo the skip or move of the next slot.")
    ] = False,
) -> None:
    """Skip a campaign's next slot, once.

    The slot after it is normal. Kept in the store: a running daemon sees it.
    """
    from publisher.schedule import steering
    from publisher.store import audit

    st = state(ctx)
    name, now = st.config.campaign(campaign).name, utc_now()
    if undo:
        target = steering.next_slot(st.config, st.store, name, now=now).slot
        change = steering.undo(st.config, st.store, name, target, now=now)
        audit.record(st.store, "cli", "undo slot change", _said(st, change), ip=None, now=now)
        console.print(f"{name}: undone, {_said(st, change)}", highlight=False)
        return
    change = steering.skip_next(st.config, st.store, name, by="cli", now=now)
    audit.record(st.store, "cli", "skip slot", _said(st, change), ip=None, now=now)
    console.print(f"{name}: {_said(st, change)}", highlight=False)


@app.command(cls=PlainCommand)
def move(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(metavar="CAMPAIGN", help="Campaign name.")],
    to: Annotated[
        str,
        typer.Option("--to", metavar="'YYYY-MM-DD HH:MM'", help="New time, campaign's zone."),
    ],
) -> None:
    """Move a campaign's next slot to another time, once.

    Before the slot after it; the cadence stays in schedules.yaml.
    """
    from publisher.schedule import steering
    from publisher.store import audit

    st = state(ctx)
    name, now = st.config.campaign(campaign).name, utc_now()
    moment = steering.local_time(st.config, name, to)
    change = steering.move_next(st.config, st.store, name, moment, by="cli", now=now)
    audit.record(st.store, "cli", "move slot", _said(st, change), ip=None, now=now)
    console.print(f"{name}: {_said(st, change)}", highlight=False)


def _said(st: AppState, change: SlotOverride) -> str:
    from publisher.schedule.steering import describe

    return f"{change.campaign} {describe(change, st.config)}"
