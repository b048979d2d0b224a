"""Delivery commands: send, worker."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from publisher.cli.base import (
    AppState,
    PlainCommand,
    app,
    console,
    email_address,
    err_console,
    parse_at,
    state,
    utc_now,
    warn,
)
from publisher.config import PublisherConfig
from publisher.errors import PublisherError
from publisher.support.screen import count

if TYPE_CHECKING:
    from publisher.deliver import DeliveryReport


def _edition_to_send(
    st: AppState, campaign: str, *, resume: bool, resend_uncertain: bool, preview_only: bool
):
    """--resume: the unfinished edition; --dry-run/--to: the newest (or an unstored compose);
    otherwise the edition composed earlier and never sent, or else a new edition composed
    now (one whose send started and did not finish stops it: --resume). None: nothing new.
    A send gets the edition's id, a preview (--dry-run/--to) the edition itself."""
    from publisher.deliver import newest_edition, resumable_edition, unfinished_edition
    from publisher.deliver.service import UNSENT, load_edition
    from publisher.pipeline import compose_campaign, prepare_edition, unstored_edition

    st.config.campaign(campaign)  # a clear error (exit 2) for an unknown campaign
    if resume or resend_uncertain:
        edition_id = resumable_edition(st.store, campaign, resend_uncertain=resend_uncertain)
        return load_edition(st.store, edition_id) if preview_only else edition_id
    unfinished = unfinished_edition(st.store, campaign)
    if preview_only:
        edition = unfinished or newest_edition(st.store, campaign)
        if edition is None:
            prepared = prepare_edition(st.config, st.store, campaign, now=utc_now())
            edition = prepared and unstored_edition(campaign, *prepared, now=utc_now())
        return edition
    if unfinished is not None and unfinished.status == UNSENT:
        console.print(
            f"{campaign}: edition {unfinished.number} was composed earlier and never sent; "
            "sending it now",
            highlight=False,
        )
        return unfinished.id
    if unfinished is not None:
        raise PublisherError(
            f"{campaign}: edition {unfinished.number} was not fully sent; "
            f"run `publisher send {campaign} --resume` to finish it"
        )
    record = compose_campaign(st.config, st.store, campaign, now=utc_now())
    return record.id if record else None


@app.command(cls=PlainCommand)
def send(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(metavar="CAMPAIGN", help="Campaign name.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Counts and batches; send nothing.")
    ] = False,
    sample: Annotated[
        bool,
        typer.Option("--sample", help="With --dry-run: also print one message as it would go."),
    ] = False,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="ADDRESS",
            help="Test-send the edition to this address only.",
            callback=lambda value: email_address(value) if value is not None else None,
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Finish the campaign's interrupted edition.")
    ] = False,
    resend_uncertain: Annotated[
        bool,
        typer.Option("--resend-uncertain", help="Also resend batches whose fate is unknown."),
    ] = False,
    resend_batch: Annotated[
        int | None,
        typer.Option(
            "--resend-batch",
            metavar="N",
            help="Resend one uncertain batch (after checking that it never arrived).",
            min=1,
        ),
    ] = None,
    send_at: Annotated[
        str | None,
        typer.Option(
            "--send-at",
            metavar="DATETIME",
            help="sendgrid: deliver at this ISO time (<= 72 h ahead).",
        ),
    ] = None,
) -> None:
    """Compose a campaign's next edition and send it now.

    Each subscriber is sent the edition once at most. Exit status:

    \b
      0    sent
      1    paused, or an error
      2    usage or configuration error
      3    sent with uncertain recipients
      4    partly failed
      5    failed (reached nobody)
      130  interrupted
    """
    from publisher.deliver import make_backend
    from publisher.deliver.base import check_send_at

    st = state(ctx)
    when = (
        parse_at(send_at, st.config.organisation.timezone, option="--send-at") if send_at else None
    )
    if when is not None:
        backend = make_backend(st.config)
        try:
            check_send_at(backend, utc_now(), when)  # the provider's limit, in its settings
        finally:
            backend.close()
    edition = _edition_to_send(
        st,
        campaign,
        resume=resume or resend_batch is not None,
        resend_uncertain=resend_uncertain or resend_batch is not None,
        preview_only=dry_run or bool(to),
    )
    if edition is None:
        console.print(f"{campaign}: nothing new, nothing sent")
        return
    if dry_run:
        _print_dry_run(st, edition, sample=sample)
    elif to:
        _send_to_one(st, edition, to)
    else:
        _send_with_progress(
            st,
            edition,
            resend_uncertain=resend_uncertain,
            resend_batch=resend_batch,
            send_at=when,
        )


def _print_dry_run(st: AppState, edition, *, sample: bool) -> None:
    from publisher.deliver import dry_run

    plan = dry_run(st.config, st.store, edition, now=utc_now())
    console.print(
        f"dry run: {plan.campaign} #{plan.number} via {plan.backend} to {plan.destination}: "
        f"{count(plan.recipients, 'recipient')} in {count(plan.batches, 'batch', 'batches')}, "
        f"{plan.already_done} already sent; nothing was sent",
        highlight=False,
    )
    if not sample:
        console.print("(--sample shows the first recipient's message as it would be sent)")
        return
    # The sample message verbatim: headers exactly as they would be sent, never re-wrapped.
    console.file.write("\n" + plan.sample.rstrip("\n") + "\n")


def _send_to_one(st: AppState, edition, address: str) -> None:
    from publisher.deliver import send_test_message

    problem = send_test_message(st.config, st.store, edition, address, now=utc_now())
    if problem:
        raise PublisherError(f"test send to {address} failed: {problem}")
    console.print(f"test message sent to {address} (the ledger is unchanged)", highlight=False)


def _send_with_progress(
    st: AppState,
    edition_id: int,
    *,
    resend_uncertain: bool,
    resend_batch: int | None = None,
    send_at: datetime | None = None,
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

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task("sending", total=None, rate="")

        def advance(count: int, total: int) -> None:
            bar.update(task, total=total, advance=count)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f}/s" if speed else "")

        try:
            report = send_edition(
                st.config,
                st.store,
                edition_id,
                now=utc_now(),
                resend_uncertain=resend_uncertain,
                resend_batch=resend_batch,
                progress=advance,
                clock=time.monotonic,
                send_at=send_at,
            )
        except KeyboardInterrupt:  # batches in flight were recorded before we got here
            err_console.print("interrupted: run `publisher send CAMPAIGN --resume` to finish")
            raise typer.Exit(130) from None
    _print_delivery_report(report)


def _print_delivery_report(report: DeliveryReport) -> None:
    table = Table(
        title=f"{report.campaign} #{report.number} via {report.backend}", title_justify="left"
    )
    columns = ("sent", "skipped", "failed", "bounced", "uncertain", "batches", "requests")
    for column in (*columns, "time"):
        table.add_column(column, justify="right")
    table.add_row(
        str(report.sent),
        str(report.skipped),
        str(report.failed),
        str(report.bounced),
        str(report.uncertain + report.recovered_uncertain),
        str(report.batches),
        str(report.requests),
        f"{report.seconds:.1f}s",
    )
    console.print(table)
    for email, error in report.failures:
        warn(f"{email}: {error}", "failed", "red")
    if report.unlisted_failures:
        warn(f"and {report.unlisted_failures} more", "failed", "red")
    if report.recovered_uncertain:
        was = "was" if report.recovered_uncertain == 1 else "were"
        err_console.print(
            f"{count(report.recovered_uncertain, 'recipient')} {was} in flight when the last "
            "send stopped: assumed sent, not resent (see docs/operators.md: interrupted sends)"
        )
    if report.cancelled:
        batches = count(len(report.cancelled), "batch", "batches")
        err_console.print(
            f"exactly once: {batches} of unknown outcome cancelled at the provider and "
            "their recipients sent again"
        )
    for number in report.too_late:
        err_console.print(
            f"batch {number}: too late to cancel (the provider delivers it within 10 "
            "minutes), so it is assumed sent and may be missing; check the activity feed"
        )
    if report.uncertain_batches:
        listed = ", ".join(f"{n} ({c})" for n, c in report.uncertain_batches.items())
        err_console.print(
            f"uncertain batches (recipients): {listed}; once the provider or mail server "
            f"shows a batch never arrived, `publisher send {report.campaign} --resend-batch N` "
            "resends it"
        )
    console.print(report.note, highlight=False)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def check_delivery_backend(config: PublisherConfig) -> list[str]:
    """The delivery backend exists and its secrets are in the environment."""
    from publisher.deliver import check_delivery

    return check_delivery(config)


@app.command(cls=PlainCommand)
def worker(
    ctx: typer.Context,
    idle_exit: Annotated[
        float | None,
        typer.Option(
            "--idle-exit",
            metavar="SECONDS",
            help="Exit after this many seconds with nothing to send.",
        ),
    ] = None,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            metavar="SECONDS",
            min=3,
            max=3600,
            help="Seconds a claimed batch stays held.",
        ),
    ] = 60.0,
) -> None:
    """Send batches of every edition being sent.

    Runs beside the daemon, on any host, until SIGTERM or Ctrl-C.
    """
    import logging
    import signal
    import threading
    import time

    from publisher.deliver.worker_process import run_worker
    from publisher.store import processes, work

    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    st = state(ctx)
    publisher_logger = logging.getLogger("publisher")
    if publisher_logger.getEffectiveLevel() > logging.INFO:
        publisher_logger.setLevel(logging.INFO)
    holder = work.Lease(processes.new_holder(), lease, time.time)
    report = run_worker(
        st.config, st.store, holder, clock=utc_now, should_stop=stopping.is_set,
        idle_exit=idle_exit,
    )  # fmt: skip
    batches = count(report.batches, "batch", "batches")
    console.print(f"worker {holder.holder}: {batches}, {report.sent} sent")
