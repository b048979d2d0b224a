"""`publisher keys list|create|revoke`: the keys of the JSON API (/api/v1)."""

from __future__ import annotations

from typing import Annotated

import typer

from publisher.cli.base import PlainCommand, command_group, console, parse_at, state, utc_now

keys_app = command_group("keys", "Keys of the JSON API under /api/v1.", no_args_is_help=True)


@keys_app.command("create", cls=PlainCommand)
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="What the key is for.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(metavar="SCOPE", help="A scope (repeat for several), e.g. subscribers:read."),
    ] = None,
    signup: Annotated[
        bool, typer.Option("--signup", help="A public key that may only sign people up.")
    ] = False,
    expires: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help="ISO 8601 date/time the key stops working."),
    ] = None,
) -> None:
    """Make a key and print its secret, once (only its hash is kept)."""
    from publisher.store import api_keys, audit
    from publisher.web.api.scopes import check_scopes

    st, now = state(ctx), utc_now()
    kind = "signup" if signup else "scoped"
    try:
        scopes = check_scopes(kind, scope or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scope") from None
    until = (
        parse_at(expires, st.config.organisation.timezone, option="--expires") if expires else None
    )
    key, token = api_keys.create_key(
        st.store, name, kind=kind, scopes=scopes, created_by="cli", now=now, expires_at=until
    )
    audit.record(st.store, "cli", "api key made", f"{key.name} ({key.prefix})", ip=None, now=now)
    console.print(f"key {key.id} {key.name}: {token}", highlight=False, soft_wrap=True)
    console.print("Copy it now: it is not shown again.", highlight=False)


@keys_app.command("list", cls=PlainCommand)
def keys_list(ctx: typer.Context) -> None:
    """Every key and its scopes, expiry and last use (never its secret)."""
    from publisher.store.api_keys import list_keys

    for key in list_keys(state(ctx).store):
        scopes = " ".join(key.scopes) if key.kind == "scoped" else "signup"
        expires = f"expires {key.expires_at:%Y-%m-%d %H:%M}" if key.expires_at else "no expiry"
        used = f"used {key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never used"
        revoked = f"  REVOKED {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else ""
        console.print(
            f"{key.id}  {key.name}  {scopes}  {expires}  {used}{revoked}", highlight=False
        )


@keys_app.command("revoke", cls=PlainCommand)
def keys_revoke(
    ctx: typer.Context,
    key_id: Annotated[int, typer.Argument(metavar="ID", help="The key's id (keys list).")],
) -> None:
    """Revoke a key: a running server stops taking it within 10 seconds."""
    from publisher.errors import PublisherError
    from publisher.store import audit
    from publisher.store.api_keys import revoke_key

    st, now = state(ctx), utc_now()
    key = revoke_key(st.store, key_id, now=now)
    if key is None:
        raise PublisherError(f"no API key {key_id}")
    audit.record(st.store, "cli", "api key revoked", f"{key.name} ({key.prefix})", ip=None, now=now)
    console.print(f"revoked key {key.id} {key.name}", highlight=False)
