"""The `webhooks` group: deliver the waiting events now, list the endpoints."""

from __future__ import annotations

import typer

from publisher.cli.base import PlainCommand, command_group, console, state, utc_now

webhooks_app = command_group(
    "webhooks", "Outgoing webhooks (endpoints are set in /admin).", no_args_is_help=True
)


@webhooks_app.command("deliver", cls=PlainCommand)
def webhooks_deliver(ctx: typer.Context) -> None:
    """Deliver every webhook event due now, then stop.

    `publisher run` does this every few seconds (webhooks.every_seconds); this command is
    for a cron job or a worker instead of the daemon. Failed attempts are retried later
    by the next run, on the backoff schedule of docs/webhooks.md.
    """
    from publisher.deliver.webhooks import deliver_due

    st = state(ctx)
    run = deliver_due(st.config, st.store, now=utc_now())
    console.print(
        f"{run.delivered} delivered, {run.retrying} to retry, {run.failed} given up",
        highlight=False,
    )


@webhooks_app.command("list", cls=PlainCommand)
def webhooks_list(ctx: typer.Context) -> None:
    """Every endpoint: URL, on or off, waiting and failed deliveries."""
    from publisher.store.webhooks import list_endpoints

    for found in list_endpoints(state(ctx).store):
        status = "on" if found.enabled else f"off ({found.disabled_reason or 'by an owner'})"
        console.print(
            f"{found.id}  {found.url}  {status}  waiting {found.waiting}  failed {found.failed}",
            highlight=False,
        )
