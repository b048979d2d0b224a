"""Overview, campaign and edition pages; preview, test send, pause and resume."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from publisher.compose.curation import pinnable
from publisher.compose.edition import Edition
from publisher.config.models import CampaignConfig
from publisher.errors import PublisherError
from publisher.items import Item
from publisher.render.email import RenderedEdition
from publisher.render.personalise import sample_copy
from publisher.render.preview import preview_documents
from publisher.schedule.presence import daemon_running, late_slot, scheduler_status
from publisher.schedule.slots import overview
from publisher.schedule.steering import preview_edition
from publisher.store import audit, dashboard, webhooks
from publisher.store.curation import get_curation
from publisher.store.schedule_state import set_paused
from publisher.store.state import get_source_memory
from publisher.subscribers.events import ENGAGEMENT, timeline
from publisher.web.admin.approvals import edition_context, overview_alerts
from publisher.web.admin.auth import Admin, action, base_of, view
from publisher.web.admin.charts import bar_chart
from publisher.web.admin.numbers import numbers_context
from publisher.web.admin.steer import context as steer_context
from publisher.web.context import Web, client_ip, in_thread

# the previewed email: its own inline styles and https images, nothing else, and sandboxed
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; sandbox; "
    "frame-ancestors 'self'"
)
COMPLAINT_ALERT = 0.001  # 0.1 %
LEFT_OUT_SHOWN = 50  # left-out items listed on the campaign page before "show all"


def _one_transaction(handler: Callable[[Request, Admin], Response]) -> Callable[..., Response]:
    """A staff page whose twenty-odd store calls share one transaction (Store.one_transaction)."""

    @functools.wraps(handler)
    def run(request: Request, admin: Admin) -> Response:
        with admin.w.store.one_transaction():
            return handler(request, admin)

    return run


def rate(count: int, base: int) -> str:
    return f"{100 * count / base:.1f}%" if base else "–"


@dataclass
class Alert:
    text: str
    link: str
    since: datetime | None = None  # shown after the text in the organisation's zone


def _alerts(w: Web, lines: dict[str, dashboard.EditionLine | None], now: datetime) -> list[Alert]:
    alerts: list[Alert] = []
    for name, line in lines.items():
        if line is None:
            continue
        link = f"admin/editions/{line.id}"
        uncertain = line.counts.get("uncertain", 0)
        for count, status in ((line.failed, "failed or bounced"), (uncertain, "uncertain")):
            if count:
                alerts.append(Alert(f"{name} #{line.number}: {count} {status}", link))
        # only the complaints: the edition's spamreport events, read along their index
        complained = dashboard.recipients_with_any(w.store, line.id, ENGAGEMENT["complained"])
        if line.accepted and complained / line.accepted > COMPLAINT_ALERT:
            alerts.append(
                Alert(
                    f"{name} #{line.number}: complaint rate {rate(complained, line.accepted)} "
                    f"(above 0.1%)",
                    link,
                )
            )
    for name, run in dashboard.source_runs(w.store).items():
        if run.failing_since and now - run.failing_since >= timedelta(days=1):
            alerts.append(Alert(f"source {name} failing since", "admin/", run.failing_since))
    for hook in webhooks.disabled_alerts(w.store):
        alerts.append(
            Alert(
                f"webhook {hook.url} turned off after repeated failure",
                f"admin/webhooks/{hook.id}",
                hook.disabled_at,
            )
        )
    return alerts


def _feeds(w: Web) -> list[dict[str, Any]]:
    folder = w.config.resolve(w.config.feeds.output_dir)
    out = []
    for feed in w.config.feeds.feeds:
        try:
            data = json.loads((folder / f"{feed.path}.json").read_text(encoding="utf-8"))
            entries: object = len(data.get("items", []))
        except (OSError, ValueError, AttributeError):
            entries = "not built yet"
        out.append({"name": feed.name, "path": feed.path, "entries": entries})
    return out


def _sources(w: Web) -> list[dict[str, Any]]:
    runs = dashboard.source_runs(w.store)
    out = []
    for source in w.config.sources:
        memory, run = get_source_memory(w.store, source.name), runs.get(source.name)
        status, since = "not collected yet", None
        if run is not None:
            status, since = (
                ("failing since", run.failing_since) if run.failing_since else ("ok", None)
            )
        if memory.disabled:
            status, since = f"disabled: {memory.disabled_reason or ''}", None
        out.append({"name": source.name, "status": status, "since": since, "run": run})
    return out


@view("viewer")
@in_thread
@_one_transaction
def overview_page(request: Request, admin: Admin) -> Response:
    w, now = admin.w, admin.w.now()
    campaigns = overview(w.config, w.store, now=now)
    lines = {}
    for row in campaigns:
        found, _ = dashboard.campaign_editions(w.store, row.name, limit=1)
        lines[row.name] = found[0] if found else None
    return admin.page(
        "overview.html", "Overview", campaigns=campaigns, lines=lines,
        sources=_sources(w), feeds=_feeds(w), built=dashboard.feeds_built_at(w.store),
        alerts=_alerts(w, lines, now) + [Alert(*a) for a in overview_alerts(w)],
        scheduler=scheduler_status(w.config, w.store, now=now),
    )  # fmt: skip


def _page_key(request: Request, name: str) -> int | None:
    """A page's keyset bound from the query string: a whole number, else the first page."""
    raw = request.query_params.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def _campaign(admin: Admin, name: str) -> CampaignConfig | None:
    return next((c for c in admin.w.config.campaigns if c.name == name), None)


def _prepared(w: Web, name: str) -> tuple[Edition, RenderedEdition] | None:
    return preview_edition(w.config, w.store, name, now=w.now())


def _left_out(w: Web, name: str, edition: Edition | None) -> list[tuple[Item, str]]:
    """Every stored item the next edition leaves out, with why: the edition's own list
    (it includes items rendering dropped), or the selection's when nothing would go out."""
    from publisher.pipeline import next_selection

    left = (
        edition.left_out
        if edition
        else next_selection(w.config, w.store, name, now=w.now()).left_out
    )
    return sorted(left, key=lambda entry: entry[0].published, reverse=True)


def _shown_left_out(
    left: list[tuple[Item, str]], everything: bool
) -> tuple[list[tuple[Item, str]], int]:
    """The newest LEFT_OUT_SHOWN left-out items and every one an editor excluded (to bring
    back), and how many older ones are not listed: a big store leaves out hundreds, each
    with a form, which made the page slow to build and to read; `?left_out=all` lists all."""
    if everything or len(left) <= LEFT_OUT_SHOWN:
        return left, 0
    shown = [
        entry
        for n, entry in enumerate(left)
        if n < LEFT_OUT_SHOWN or entry[1] == "excluded by an editor"
    ]
    return shown, len(left) - len(shown)


@view("viewer")
@in_thread
@_one_transaction
def campaign_page(request: Request, admin: Admin) -> Response:
    name, notice = request.path_params["name"], request.query_params.get("notice", "")[:300]
    campaign = _campaign(admin, name)
    if campaign is None:
        return admin.page("message.html", "No such campaign", status=404, paragraphs=[name])
    w = admin.w
    row = next(r for r in overview(w.config, w.store, now=w.now()) if r.name == name)
    context: dict[str, Any] = {"campaign": campaign, "row": row, "notice": notice}
    context["late"] = (  # a due slot nothing will send: no daemon is running
        None
        if daemon_running(w.store, now=w.now())
        else late_slot(w.config, w.store, campaign, now=w.now())
    )
    before = _page_key(request, "before")
    context["editions"], context["older"] = dashboard.campaign_editions(
        w.store, name, before=before
    )
    context["before"] = before
    context["curation"] = get_curation(w.store, name)
    prepared = None
    if admin.staff.may("editor"):
        try:
            prepared = _prepared(w, name)
        except PublisherError as exc:  # a broken template or source: say so, show the rest
            prepared, context["problem"] = None, str(exc)
        if prepared is not None:
            edition, rendered = prepared
            docs = preview_documents(rendered, w.config.organisation)
            context |= {
                "edition": edition, "rendered": rendered, "text_part": docs[".txt"].decode(),
            }  # fmt: skip
        if "problem" not in context:
            context["left_out"], context["left_out_more"] = _shown_left_out(
                _left_out(w, name, prepared[0] if prepared else None),
                request.query_params.get("left_out") == "all",
            )
    context["pinnable"] = pinnable
    context |= edition_context(w, name, prepared, admin.staff)
    newest = context["editions"] if before is None else None  # counted once (steer.py)
    context |= steer_context(admin, campaign, newest)  # send now, skip, move, resume
    return admin.page("campaign.html", f"Campaign {name}", **context)


def _sandboxed(html: str) -> Response:
    return HTMLResponse(html, headers={"content-security-policy": PREVIEW_CSP})


@view("editor")
@in_thread
def preview_frame(request: Request, admin: Admin) -> Response:
    try:
        prepared = _prepared(admin.w, request.path_params["name"])
    except PublisherError as exc:
        return _sandboxed(f"<p>{escape(str(exc))}</p>")
    if prepared is None:
        return _sandboxed("<p>Nothing new: no edition would go out now.</p>")
    return _sandboxed(preview_documents(prepared[1], admin.w.config.organisation)[".html"].decode())


def _back(request: Request, name: str, notice: str) -> Response:
    # Post/Redirect/Get: a reload never repeats the action; the notice rides in the query
    from urllib.parse import quote

    return RedirectResponse(
        f"{base_of(request)}admin/campaigns/{name}?notice={quote(notice)}", status_code=303
    )


def _steer(request: Request, admin: Admin, paused: bool) -> Response:
    name = request.path_params["name"]
    if _campaign(admin, name) is None:
        return admin.page("message.html", "No such campaign", status=404, paragraphs=[name])
    w = admin.w
    set_paused(w.store, name, paused, now=w.now())
    verb = "pause" if paused else "resume"
    audit.record(w.store, admin.staff.email, verb, name, ip=client_ip(request), now=w.now())
    note = "Paused: no edition is composed or sent until you resume." if paused else "Resumed."
    return _back(request, name, note)


@action("editor")
@in_thread
def pause_post(request: Request, admin: Admin, form: object) -> Response:
    return _steer(request, admin, True)


@action("editor")
@in_thread
def resume_post(request: Request, admin: Admin, form: object) -> Response:
    return _steer(request, admin, False)


@action("editor")
@in_thread
def test_post(request: Request, admin: Admin, form: object) -> Response:
    from publisher.deliver import send_test_message
    from publisher.pipeline import unstored_edition

    name, w = request.path_params["name"], admin.w
    if _campaign(admin, name) is None:
        return admin.page("message.html", "No such campaign", status=404, paragraphs=[name])
    try:
        prepared = _prepared(w, name)
    except PublisherError as exc:
        return _back(request, name, f"The next edition cannot be made: {exc}")
    if prepared is None:
        return _back(request, name, "Nothing new: there is no edition to test.")
    stored = unstored_edition(name, prepared[0], prepared[1], now=w.now())
    problem = send_test_message(w.config, w.store, stored, admin.staff.email, now=w.now())
    target = f"{name} #{stored.number} to {admin.staff.email}"
    audit.record(
        w.store, admin.staff.email, "test send", target, ip=client_ip(request), now=w.now()
    )
    if problem:
        return _back(request, name, f"The test did not go out: {problem}")
    return _back(request, name, f"A test of #{stored.number} was sent to {admin.staff.email}.")


@view("viewer")
@in_thread
@_one_transaction
def edition_page(request: Request, admin: Admin) -> Response:
    w = admin.w
    found = dashboard.edition_line(w.store, int(request.path_params["id"]))
    if found is None:
        return admin.page("message.html", "No such edition", status=404, paragraphs=[])
    line, html = found
    zone = w.config.organisation.timezone  # hours of the organisation's clock
    hours, series = timeline(w.store, line.id, ZoneInfo(zone))
    labels = [f"{h:%d %H}h" for h in hours]
    charts = [
        (name, bar_chart(f"chart-{i}", f"{name} per hour ({zone})", labels, values), values)
        for i, (name, values) in enumerate(series.items())
    ]
    return admin.page(
        "edition.html", f"{line.campaign} #{line.number}", line=line,
        **numbers_context(w, line.id, html), rate=rate,
        clicks=dashboard.clicks_per_link(w.store, line.id),
        **_recipients_page(request, w, line.id), charts=charts,
        hours=hours, zone_name=zone, choices=_choices(w, line.id),
    )  # fmt: skip


def _recipients_page(request: Request, w: Web, edition_id: int) -> dict[str, Any]:
    """A page of the recipients list: `?after=<status>:<subscriber id>` (the key of the
    last row shown) reads the next one; anything else is the first page."""
    status, _, number = request.query_params.get("after", "")[:40].partition(":")
    after = (status, int(number)) if status and number.isdigit() and len(number) < 12 else None
    found, following = dashboard.recipients(w.store, edition_id, after=after)
    return {"recipients": found, "recipients_after": after, "recipients_next": following}


def _choices(w: Web, edition_id: int) -> dict[str, Any] | None:
    """The editor's choices the edition was composed with (titles for the ids it carried)."""
    from datetime import datetime as moment

    from publisher.store.editions import edition_item_list, get_edition

    stored = get_edition(w.store, edition_id)
    if stored is None or not stored.curation:
        return None
    choices = dict(stored.curation)
    titles = {item.id: item.title for _section, item in edition_item_list(w.store, edition_id)}
    for key in ("pinned", "order"):
        choices[key] = [titles.get(i, i) for i in choices.get(key, [])]
    when = choices.get("changed_at")
    choices["changed_at"] = moment.fromisoformat(when) if isinstance(when, str) else None
    return choices


@view("viewer")
@in_thread
def edition_email(request: Request, admin: Admin) -> Response:
    found = dashboard.edition_line(admin.w.store, int(request.path_params["id"]))
    if found is None:
        return _sandboxed("<p>No such edition.</p>")
    public_url = admin.w.config.organisation.public_url
    return _sandboxed(sample_copy(found[1], public_url, "preview"))
