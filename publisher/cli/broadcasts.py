"""`publisher broadcast list|show|send|cancel`: broadcasts (action alerts) written in /admin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from publisher.cli.base import AppState, PlainCommand, command_group, console, state, utc_now
from publisher.errors import PublisherError
from publisher.support.screen import count

if TYPE_CHECKING:
    from datetime import datetime

    from publisher.deliver import DeliveryReport
    from publisher.store.broadcasts import Audience, Broadcast

broadcast_app = command_group(
    "broadcast", "Broadcasts (action alerts) written in /admin.", no_args_is_help=True
)
BroadcastId = Annotated[int, typer.Argument(metavar="ID", help="The broadcast's number.", min=1)]


def _local(st: AppState, moment: datetime | None) -> str:
    from zoneinfo import ZoneInfo

    if moment is None:
        return "-"
    zone = ZoneInfo(st.config.organisation.timezone)
    return moment.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")


def _audience(audience: Audience) -> str:
    who = ", ".join(audience.topics) if audience.topics else "everyone"
    return who + (f" except {', '.join(audience.exclude)}" if audience.exclude else "")


def _load(st: AppState, broadcast_id: int) -> Broadcast:
    from publisher.store.broadcasts import get_broadcast

    found = get_broadcast(st.store, broadcast_id)
    if found is None:
        raise PublisherError(f"no broadcast {broadcast_id} (`publisher broadcast list`)")
    return found


@broadcast_app.command("list", cls=PlainCommand)
def broadcast_list(ctx: typer.Context) -> None:
    """List the newest broadcasts: status, time, audience."""
    from publisher.store.broadcasts import list_broadcasts

    st = state(ctx)
    found = list_broadcasts(st.store)
    for b in found:  # one line each: scripts read them line by line
        console.print(
            f"{b.id}  {b.status:<9}  {_local(st, b.send_at)}  {b.draft.name}  "
            f"(from {b.draft.sender}; to {_audience(b.draft.audience)})",
            highlight=False, markup=False,
        )  # fmt: skip
    if not found:
        console.print("no broadcasts yet: staff write them in /admin")


@broadcast_app.command("show", cls=PlainCommand)
def broadcast_show(ctx: typer.Context, broadcast_id: BroadcastId) -> None:
    """Show a broadcast and who it would reach now."""
    from publisher.store.broadcasts import audience_count

    st = state(ctx)
    b = _load(st, broadcast_id)
    sender = st.config.sender(b.draft.sender)
    lines = [
        f"broadcast {b.id}: {b.draft.name} ({b.status}, version {b.version})",
        f"subject: {b.draft.subject}",
        f"from: {sender.from_name or ''} <{sender.from_email}> (sender {sender.name})",
        f"audience: {_audience(b.draft.audience)}",
        f"send at: {_local(st, b.send_at)}",
        f"created by {b.created_by}; last changed by {b.updated_by} {_local(st, b.updated_at)}",
    ]
    if b.status in ("draft", "scheduled"):
        reach = audience_count(st.store, b.draft.audience, now=utc_now())
        lines.append(f"would reach now: {count(reach, 'person', 'people')}")
    for line in lines:
        console.print(line, highlight=False, markup=False)


@broadcast_app.command("send", cls=PlainCommand)
def broadcast_send(
    ctx: typer.Context,
    broadcast_id: BroadcastId,
    resume: Annotated[
        bool, typer.Option("--resume", help="Finish a send that stopped or failed.")
    ] = False,
) -> None:
    """Send a broadcast now (each person once at most).

    Exit status as `publisher send`: 0 sent, 1 paused or an error, 3 uncertain
    recipients, 4 partly failed, 5 failed.
    """
    from publisher.deliver.broadcasts import resume_broadcast, send_broadcast
    from publisher.store import audit

    st = state(ctx)
    _load(st, broadcast_id)
    now = utc_now()
    action = resume_broadcast if resume else send_broadcast
    audit.record(st.store, "cli", "broadcast send", str(broadcast_id), ip=None, now=now)
    try:
        report = action(st.config, st.store, broadcast_id, by="cli", now=now)
    except KeyboardInterrupt:  # batches in flight were recorded before we got here
        console.print(f"interrupted: `publisher broadcast send {broadcast_id} --resume`")
        raise typer.Exit(130) from None
    if report.totals.get("sent") or report.totals.get("uncertain"):
        from publisher.publish.broadcasts import write_broadcast_pages

        write_broadcast_pages(st.config, st.store)  # its public copy
    _print_report(broadcast_id, report)


def _print_report(broadcast_id: int, report: DeliveryReport) -> None:
    from publisher.deliver.report import describe_status

    console.print(
        f"broadcast {broadcast_id}: {report.sent} sent to {report.destination}, "
        f"{report.skipped} skipped, {report.failed + report.bounced} failed, "
        f"{report.uncertain} uncertain; {describe_status(report.status, report.totals)}",
        highlight=False,
    )
    if report.exit_code and report.status != "uncertain":
        console.print(f"`publisher broadcast send {broadcast_id} --resume` goes on")
    if report.exit_code:
        raise typer.Exit(report.exit_code)


@broadcast_app.command("cancel", cls=PlainCommand)
def broadcast_cancel(ctx: typer.Context, broadcast_id: BroadcastId) -> None:
    """Cancel a scheduled broadcast (it becomes a draft)."""
    from publisher.store import audit
    from publisher.store.broadcasts import cancel_broadcast

    st = state(ctx)
    _load(st, broadcast_id)
    now = utc_now()
    cancel_broadcast(st.store, broadcast_id, by="cli", now=now)
    audit.record(st.store, "cli", "broadcast cancelled", str(broadcast_id), ip=None, now=now)
    console.print(f"broadcast {broadcast_id} cancelled: it is a draft again", highlight=False)
