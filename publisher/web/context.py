"""What every route of the subscriber web shares: configuration, store, clock, tokens,
limits, the page renderer. Built once by `create_app`; routes reach it as `web(request)`."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import anyio.to_thread
from jinja2 import Environment
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from publisher.config import PublisherConfig
from publisher.render.environment import render_template, search_path_for, template_environment
from publisher.store import Store
from publisher.support.screen import edition_outcome
from publisher.web.security import Tokens

T = TypeVar("T")


def _lower_priority() -> None:
    """The hashing thread yields the CPU to everything else (Linux: a thread's own nice
    value); a flood of log-ins then slows log-ins, not the other pages."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux: the one thread is the bound
        pass


# password hashing takes ~200 ms of CPU: one at a time, on one low-priority thread, so
# log-ins never take both cores nor the worker threads the pages need
HASHING = ThreadPoolExecutor(1, "publisher-hashing", initializer=_lower_priority)

CONSENT_TEXT = (
    "I agree to receive email from {org} about the topics I chose. I can unsubscribe at any "
    "time with the link in every email."
)


@dataclass(frozen=True)
class Topic:
    slug: str
    label: str


@dataclass
class Web:
    config: PublisherConfig
    store: Store
    tokens: Tokens
    now: Callable[[], datetime]
    env: Environment
    topics: list[Topic]
    webhook_key: Any = None  # an EllipticCurvePublicKey, or None: the webhook refuses all
    send_email: Callable[..., str | None] | None = None  # (config, message, recipient)
    # sign-up limits live in the store, shared by every process: publisher/web/limits.py
    # called when work done after an answer (notices.later) has finished (tests wait on it)
    after_job: Callable[[], None] | None = None

    @property
    def consent_text(self) -> str:
        return CONSENT_TEXT.format(org=self.config.organisation.name)

    def page(self, template: str, title: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        org = self.config.organisation
        values = {"org": org, "title": title, "base": "", "topics": self.topics, "chosen": ()}
        body = render_template(self.env, f"web/{template}", values | context)
        return HTMLResponse(body, status_code=status)

    def message(
        self,
        title: str,
        *paragraphs: str,
        status: int = 200,
        link: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        return self.page("message.html", title, status=status, paragraphs=paragraphs, link=link)

    def invalid_link(self) -> HTMLResponse:
        """Tampered, expired, foreign or unknown tokens all get this page and change nothing."""
        return self.message(
            "This link does not work",
            "The link may be incomplete, expired, or already replaced by a newer one.",
            "Nothing was changed. Use the link in the most recent email we sent you, or "
            "sign up again.",
            status=404,
            link={"url": "subscribe", "label": "Go to the sign-up page"},
        )

    def expired_form(self) -> HTMLResponse:
        return self.message(
            "Please try again",
            "This form was too old or did not come from our site, so nothing was changed. "
            "Go back, reload the page and submit it again.",
            status=403,
        )


def topics_of(config: PublisherConfig) -> list[Topic]:
    """The topics subscribers can choose: every campaign audience and every topic feed."""
    slugs: set[str] = set()
    for campaign in config.campaigns:
        slugs.update(campaign.audience)
    for feed in config.feeds.feeds:
        slugs.update(feed.topics)
    return [Topic(s, s.replace("-", " ").capitalize()) for s in sorted(slugs)]


def web_environment(config: PublisherConfig) -> Environment:
    # no freshness check of every template file on every request (restart to see edits)
    env = template_environment(search_path_for(config.root)).overlay(auto_reload=False)
    env.globals = {**env.globals, "edition_outcome": edition_outcome}  # a status in words
    env.filters = {**env.filters, "when": moment_filter(ZoneInfo(config.organisation.timezone))}
    return env


def moment_filter(zone: ZoneInfo) -> Callable[..., Markup]:
    """`{{ moment | when }}`: every time in /admin in one zone (the organisation's) and one
    format, the UTC time on hover; `{{ moment | when("day") }}` for a date alone. A naive
    datetime is UTC (how the store keeps them); None is a dash."""

    # the edition page shows the same hours in each of its seven charts' tables: each
    # (moment, style) is formatted once (Markup.format escapes every argument)
    @functools.lru_cache(maxsize=1024)
    def when(moment: datetime | date | str | None, style: str = "minute") -> Markup:
        if moment is None:
            return Markup("–")
        if isinstance(moment, str):  # ISO text (a history row as the store returns it)
            moment = datetime.fromisoformat(moment)
        if not isinstance(moment, datetime):  # a calendar day (an item dated without a time)
            return Markup('<time datetime="{}">{}</time>').format(
                moment.isoformat(), moment.strftime(DAY_FORMAT)
            )
        utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        local = utc.astimezone(zone)
        shown = local.strftime(DAY_FORMAT if style == "day" else MINUTE_FORMAT)
        return Markup('<time datetime="{}" title="{}">{}</time>').format(
            utc.isoformat(timespec="seconds").replace("+00:00", "Z"),
            utc.strftime("%Y-%m-%d %H:%M UTC"),
            shown if style == "day" else f"{shown} {local.tzname()}",
        )

    return when


MINUTE_FORMAT = "%a %-d %b %Y, %H:%M"  # Mon 7 Dec 2026, 09:00 EST
DAY_FORMAT = "%a %-d %b %Y"


def web(request: Request) -> Web:
    state: Web = request.app.state.web
    return state


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def off_loop(fn: Callable[..., T], *args: Any, hashing: bool = False, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in a worker thread: store, compose and render work (and
    password hashing, `hashing=True`) never holds the event loop, so /healthz and the
    one-click unsubscribe keep their latency while a preview or a login runs."""
    call = functools.partial(fn, *args, **kwargs)
    if hashing:
        return await asyncio.get_running_loop().run_in_executor(HASHING, call)
    return await anyio.to_thread.run_sync(call)


def in_thread(handler: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """A plain (blocking) route handler made an async one running in a worker thread."""

    @functools.wraps(handler)
    async def run(*args: Any, **kwargs: Any) -> T:
        return await off_loop(handler, *args, **kwargs)

    return run
