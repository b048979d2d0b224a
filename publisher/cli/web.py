"""`publisher serve`: the subscriber web on uvicorn."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from publisher.cli.base import AppState, PlainCommand, app, err_console, state, utc_now, warn
from publisher.config import PublisherConfig
from publisher.errors import PublisherError

if TYPE_CHECKING:
    from publisher.cli.serving import ServeSpec
    from publisher.web.bounds import Limits

SECRET_VARIABLE = "PUBLISHER_SECRET_KEY"


def access_log() -> None:
    """One plain line per request on stderr (path, never the query string). A plain
    handler: the rich console costs more than answering the request."""
    import sys

    logger = logging.getLogger("publisher.web.access")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _signing_key(dev: bool) -> str:
    import secrets

    from publisher.web.security import secret_key_problem

    secret = os.environ.get(SECRET_VARIABLE, "")
    if secret and (problem := secret_key_problem(secret)):
        raise PublisherError(f"{SECRET_VARIABLE} {problem}")
    if secret:
        return secret
    if not dev:
        raise PublisherError(
            f"set {SECRET_VARIABLE} to a long random value (it signs every link and form), "
            "or pass --dev for a local test"
        )
    warn(
        f"--dev: INSECURE throwaway signing key; links and forms stop working at restart. "
        f"Never use --dev in production: set {SECRET_VARIABLE}.",
        "warning",
        "red",
    )
    return secrets.token_urlsafe(32)


@app.command(cls=PlainCommand)
def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")] = 8000,
    dev: Annotated[
        bool, typer.Option("--dev", help="Allow a throwaway signing key (INSECURE).")
    ] = False,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(metavar="ADDRESSES", help="Proxies whose X-Forwarded-For/-Proto are trusted."),
    ] = "127.0.0.1",
    root_path: Annotated[
        str,
        typer.Option(
            metavar="PREFIX", help="The path prefix a proxy strips (/news): staff cookies' Path."
        ),
    ] = "",
    api_per_minute: Annotated[
        int, typer.Option(metavar="N", min=1, help="Requests per API key per minute (/api/v1).")
    ] = 600,
    workers: Annotated[
        int,
        typer.Option(
            metavar="N",
            min=1,
            help="Worker processes on the one port (each uses a core; see docs/operators.md).",
        ),
    ] = 1,
) -> None:
    """Serve the subscriber pages and the staff dashboard.

    Sign-up, unsubscribe, preferences, the SendGrid webhook, archive/, feeds/ and posts/,
    and the dashboard under /admin/. Needs PUBLISHER_SECRET_KEY unless --dev.
    """
    from publisher.web.bounds import Limits
    from publisher.web.webhook import KEY_VARIABLE, load_key

    secret = _signing_key(dev)
    raw_key = os.environ.get(KEY_VARIABLE)
    try:
        key = load_key(raw_key)
    except ValueError as exc:
        raise PublisherError(str(exc)) from None
    if key is None:
        warn(f"{KEY_VARIABLE} is not set: the SendGrid webhook refuses every request", "warning")
    st = state(ctx)
    limits = Limits(api_per_minute=api_per_minute)
    # uvicorn's own access log prints query strings (tokens): off; ours logs paths only.
    # server_options: header deadline and size, keep-alive, at most so many connections.
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,
        "proxy_headers": True,
        "forwarded_allow_ips": forwarded_allow_ips,
        "root_path": root_path.rstrip("/"),
        "log_level": "warning",
    }
    if workers == 1:
        _serve_one(st, options, secret=secret, key=key, limits=limits)
        return
    from publisher.cli.serving import ServeSpec

    spec = ServeSpec(
        config_path=str(st.config_path.resolve()),
        database_url=st.config.effective_database_url,
        pool_size=st.pool_size,
        secret_key=secret,
        webhook_key=raw_key,
        limits=limits,
        workers=workers,
        verbose=st.verbose,
    )
    _serve_many(st, options, spec)


def _serve_one(
    st: AppState, options: dict[str, Any], *, secret: str, key: Any, limits: Limits
) -> None:
    """One process: the application made here, served by uvicorn in this process."""
    import uvicorn

    from publisher.web import create_app
    from publisher.web.bounds import server_options

    application = create_app(
        st.config, st.store, secret_key=secret, now=utc_now, webhook_key=key, limits=limits
    )
    access_log()
    err_console.print(f"serving on http://{options['host']}:{options['port']}/ (Ctrl-C stops)")
    uvicorn.run(application, **options, **server_options(limits))


def _serve_many(st: AppState, options: dict[str, Any], spec: ServeSpec) -> None:
    """uvicorn's supervisor and `spec.workers` workers, each building the application from
    the spec (publisher/cli/serving.py). The store is migrated here, once, before any
    worker opens it; SIGTERM or Ctrl-C stops every worker."""
    from publisher.cli.serving import SPEC_VARIABLE, spec_file, supervise

    st.store.close()  # opened (and migrated) once; the workers open their own
    with spec_file(spec) as path:
        os.environ[SPEC_VARIABLE] = str(path)  # the workers inherit the environment
        err_console.print(
            f"serving on http://{options['host']}:{options['port']}/ with {spec.workers} "
            "workers (Ctrl-C stops)"
        )
        if not supervise(spec, options):
            raise PublisherError("a worker could not start (above): every worker was stopped")


def check_web_templates(config: PublisherConfig) -> list[str]:
    """`publisher check`: the confirmation email and the web pages render."""
    from publisher.errors import TemplateError
    from publisher.web.context import web_environment
    from publisher.web.notices import render_confirmation

    env = web_environment(config)
    sample = f"{config.organisation.public_url.rstrip('/')}/confirm?token=sample"
    try:
        render_confirmation(config, env, sample, now=utc_now())
    except TemplateError as exc:
        return [f"confirmation email: {exc}"]
    return []
