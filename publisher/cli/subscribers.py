"""`publisher subscribers import|list|add|remove|export|show`: the whole group. Every change
by hand goes through publisher.subscribers.consent, like the web's; imports are read by
publisher.subscribers.files and written by publisher.store.subscribers."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from publisher.cli.base import (
    PlainCommand,
    command_group,
    console,
    email_address,
    state,
    utc_now,
    warn,
)
from publisher.errors import PublisherError
from publisher.support.screen import spreadsheet_safe  # one helper, shared with /admin

subscribers_app = command_group(
    "subscribers", "Subscribers of the mailing list.", no_args_is_help=True
)


@subscribers_app.command("import", cls=PlainCommand)
def subscribers_import(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="CSV (email,name,topics[,status]) or JSON.")
    ],
) -> None:
    """Add or update subscribers from a file.

    Never re-subscribes anyone who opted out; bad rows are reported and skipped.
    """
    from publisher.store.subscribers import import_subscribers
    from publisher.subscribers.files import read_subscriber_file

    st = state(ctx)
    rows, problems = read_subscriber_file(file)
    for problem in problems:
        warn(problem, "skipped")
    result = import_subscribers(st.store, rows, now=utc_now())
    console.print(
        f"{result.inserted} new, {result.updated} updated, {result.unchanged} "
        f"unchanged, {result.kept_inactive} kept opted out, {result.suppressed} suppressed, "
        f"{len(problems)} skipped"
    )


@subscribers_app.command("list", cls=PlainCommand)
def subscribers_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(metavar="STATUS", help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(metavar="N", min=0, help="At most this many rows.")] = 50,
) -> None:
    """List subscribers by id, then a count per status.

    Each with their status and topics.
    """
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


@subscribers_app.command("add", cls=PlainCommand)
def subscribers_add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="Address.", callback=email_address)],
    name: Annotated[str | None, typer.Option(metavar="NAME", help="Name.")] = None,
    topic: Annotated[
        list[str] | None,
        typer.Option(
            metavar="TOPIC", help="A topic (repeat for several).", callback=bounded_topics
        ),
    ] = None,
) -> None:
    """Add or re-activate a subscriber, active at once.

    For someone who gave their consent to staff.
    """
    from publisher.subscribers.consent import add_by_staff

    subscriber, created = add_by_staff(
        state(ctx).store, email, name=name, topics=topic or [], now=utc_now()
    )
    console.print(f"{subscriber.email}: {'added' if created else 'active'}", highlight=False)


def bounded_topics(values: list[str] | None) -> list[str] | None:
    """Topics as long as a subscriber file or the API allows (MAX_TOPIC characters); a
    longer one is a usage error (exit 2), never a row the store's tallies cannot key."""
    from publisher.subscribers.files import MAX_TOPIC

    for value in values or ():
        if len(value.strip()) > MAX_TOPIC:
            raise typer.BadParameter(f"a topic is at most {MAX_TOPIC} characters")
    return values


def stored_form(value: str) -> str:
    """An address as the store keeps it (normalised); one it could never hold is a usage
    error (exit 2), not an internal error."""
    from publisher.store.subscribers import normalise_email

    try:
        return normalise_email(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@subscribers_app.command("remove", cls=PlainCommand)
def subscribers_remove(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="Address.", callback=stored_form)],
) -> None:
    """Unsubscribe an address.

    The address is kept, with its history, so no import re-adds it.
    """
    from publisher.store.consent import CLI
    from publisher.store.subscribers import find_subscriber
    from publisher.subscribers.consent import unsubscribe

    st = state(ctx)
    subscriber = find_subscriber(st.store, email=email)
    if subscriber is None:
        raise PublisherError(f"no subscriber {email.strip().lower()}")
    changed = unsubscribe(st.store, subscriber.id, ctx=CLI, now=utc_now())
    console.print(
        f"{subscriber.email}: {'unsubscribed' if changed else 'was already ' + subscriber.status}",
        highlight=False,
    )


@subscribers_app.command("export", cls=PlainCommand)
def subscribers_export(
    ctx: typer.Context,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="CSV file (default stdout)."),
    ] = None,
    status: Annotated[str | None, typer.Option(metavar="STATUS", help="Only this status.")] = None,
) -> None:
    """Export subscribers as CSV, safe to open in a spreadsheet.

    Columns email,name,topics,status.
    """
    from publisher.store.subscribers import iter_subscribers

    st = state(ctx)
    handle = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "topics", "status"])
        for s in iter_subscribers(st.store, status=status):
            if s.email.endswith("@erased.invalid"):
                continue
            row = [s.email, s.name or "", ";".join(s.topics), s.status]
            writer.writerow([spreadsheet_safe(v) for v in row])
    finally:
        if output:
            handle.close()


@subscribers_app.command("show", cls=PlainCommand)
def subscribers_show(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="Address.", callback=stored_form)],
) -> None:
    """Show one subscriber and their history.

    Status, topics, pause, suppression and every consent or status change.
    """
    from publisher.store.subscriber_record import history, paused_until
    from publisher.store.subscribers import find_subscriber
    from publisher.store.suppression import suppression_reason

    st = state(ctx)
    subscriber = find_subscriber(st.store, email=email)
    suppressed = suppression_reason(st.store, email)
    if subscriber is None:
        note = f" (suppressed: {suppressed})" if suppressed else ""
        raise PublisherError(f"no subscriber {email.strip().lower()}{note}")
    until = paused_until(st.store, subscriber.id, now=utc_now())
    lines = [
        f"email: {subscriber.email}",
        f"name: {subscriber.name or ''}",
        f"status: {subscriber.status}" + (f" (paused until {until.date()})" if until else ""),
        f"topics: {', '.join(subscriber.topics) or '(all)'}",
        f"suppressed: {suppressed or 'no'}",
        "history:",
    ]
    for h in history(st.store, subscriber.id):
        parts = [h["at"], h["action"], f"via {h['via']}"]
        parts += [f"{k}={h[k]}" for k in ("status", "ip", "form", "detail") if h[k]]
        if h["consent_text"]:
            parts.append(f"consent: {h['consent_text']!r}")
        lines.append("  " + "  ".join(parts))
    console.file.write("\n".join(lines) + "\n")
