"""`publisher staff add|list|remove|send`: the accounts of the staff dashboard (/admin)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from publisher.cli.base import PlainCommand, command_group, console, email_address, state, utc_now

PASSWORD_VARIABLE = "PUBLISHER_STAFF_PASSWORD"
staff_app = command_group(
    "staff", "Staff accounts of the dashboard under /admin.", no_args_is_help=True
)


def _password() -> str:
    """From PUBLISHER_STAFF_PASSWORD, else a prompt (twice) on a terminal, else stdin's
    first line: never from the command line, where `ps` and shell history would show it."""
    if os.environ.get(PASSWORD_VARIABLE):
        return os.environ[PASSWORD_VARIABLE]
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@staff_app.command("add", cls=PlainCommand)
def staff_add(
    ctx: typer.Context,
    email: Annotated[
        str,
        typer.Argument(metavar="EMAIL", help="The staff member's address.", callback=email_address),
    ],
    role: Annotated[str, typer.Option(metavar="ROLE", help="owner, editor or viewer.")] = "viewer",
) -> None:
    """Add a staff account (the first owner).

    Owners invite everyone else from /admin/staff. The password comes from
    PUBLISHER_STAFF_PASSWORD, else a prompt (twice), else the first line of stdin; never
    from the command line. It is used exactly as typed, surrounding spaces included, as on
    the web.
    """
    from publisher.store import audit
    from publisher.store.staff import add_staff

    st = state(ctx)
    added = add_staff(st.store, email, role, _password(), now=utc_now())
    audit.record(
        st.store, "cli", "staff added", f"{added.email} as {added.role}", ip=None, now=utc_now()
    )
    console.print(f"added {added.email} as {added.role}", highlight=False)


@staff_app.command("list", cls=PlainCommand)
def staff_list(ctx: typer.Context) -> None:
    """Every staff account with its role, and who may send."""
    from publisher.deliver.approval import may_send
    from publisher.store.staff import list_staff

    st = state(ctx)
    for account in list_staff(st.store):
        console.print(
            f"{account.email}  {account.role}  since {account.created_at:%Y-%m-%d}"
            + ("  may send" if may_send(st.store, account) else ""),
            highlight=False,
        )


@staff_app.command("remove", cls=PlainCommand)
def staff_remove(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The staff member's address.")],
) -> None:
    """Remove a staff account; its sessions end at once.

    The last owner cannot be removed.
    """
    from publisher.store import audit
    from publisher.store.staff import remove_staff

    st = state(ctx)
    removed = remove_staff(st.store, email)
    audit.record(st.store, "cli", "staff removed", removed.email, ip=None, now=utc_now())
    console.print(f"removed {removed.email}", highlight=False)


@staff_app.command("send", cls=PlainCommand)
def staff_send(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The editor's address.")],
    allow: Annotated[
        bool, typer.Option("--grant/--take", help="Grant the send permission, or take it.")
    ] = True,
) -> None:
    """Grant or take an editor's permission to send and approve sends.

    Owners always have it; viewers cannot get it.
    """
    from publisher.deliver.approval import set_send_permission
    from publisher.store.staff import StaffError, find_staff

    st = state(ctx)
    target = find_staff(st.store, email)
    if target is None:
        raise StaffError(f"no staff account {email}")
    changed = set_send_permission(st.store, target, allow, by="cli", now=utc_now(), ip=None)
    verb = "may send" if allow else "may not send"
    console.print(f"{target.email} {verb}{'' if changed else ' (unchanged)'}", highlight=False)
