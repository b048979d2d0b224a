"""`publisher subscribers add|remove|export|show` (import and list live in cli/delivery.py).
Every change goes through publisher.subscribers.consent and publisher.store.consent, like
the web's."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer

from publisher.cli.base import console, state, utc_now
from publisher.cli.delivery import email_address, subscribers_app
from publisher.errors import PublisherError
from publisher.support.screen import spreadsheet_safe  # one helper, shared with /admin


@subscribers_app.command("add")
def subscribers_add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Address.", callback=email_address)],
    name: Annotated[str | None, typer.Option(help="Name.")] = None,
    topic: Annotated[list[str] | None, typer.Option(help="A topic (repeat for several).")] = None,
) -> None:
    """Add (or re-activate) a subscriber who gave consent to staff; active at once."""
    from publisher.subscribers.consent import add_by_staff

    subscriber, created = add_by_staff(
        state(ctx).store, email, name=name, topics=topic or [], now=utc_now()
    )
    console.print(f"{subscriber.email}: {'added' if created else 'active'}", highlight=False)


@subscribers_app.command("remove")
def subscribers_remove(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Address.")],
) -> None:
    """Unsubscribe an address (kept, with its history, so no import re-adds it)."""
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


@subscribers_app.command("export")
def subscribers_export(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV file (default stdout).")
    ] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
) -> None:
    """CSV (email,name,topics,status), safe to open in a spreadsheet."""
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


@subscribers_app.command("show")
def subscribers_show(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Address.")],
) -> None:
    """A subscriber's status, topics, pause, suppression and consent/status history."""
    from publisher.store.consent import history, paused_until
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
