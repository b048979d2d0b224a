"""The items page (issue 20): every stored item from every source, searched and filtered
through a GET form (the URL keeps the filter; no script needed), a page at a time; one
item's page with its fields, body, editions and why each campaign's next edition leaves it
out; editors and owners retire it, bring it back, and correct its topics (kept across
collects). Viewers see everything and change nothing."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.compose.edition import Selection, report_since, select_items
from publisher.config import PublisherConfig
from publisher.config.models import CampaignConfig
from publisher.items import KINDS, Item
from publisher.store import audit
from publisher.store.curation import get_curation
from publisher.store.editions import campaign_history
from publisher.store.item_search import (
    Cursor,
    ItemEntry,
    ItemQuery,
    edition_choices,
    item_entry,
    item_sources,
    search_items,
)
from publisher.store.items import (
    ItemNotFound,
    retire_item,
    selection_items,
    set_topics_override,
    unretire_item,
)
from publisher.support.sanitize import sanitize_html
from publisher.support.slug import slugify
from publisher.web.admin.auth import ADMIN_CSP, Admin, action, base_of, view
from publisher.web.context import client_ip, in_thread, web
from publisher.web.forms import many, text

MAX_OTHER_TOPICS = 20


class Filters(BaseModel):
    """The items page's query string: unknown keys and bad values are refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    q: str = Field("", max_length=200)
    source: str = Field("", max_length=200)
    topic: str = Field("", max_length=100)
    kind: str = Field("", max_length=40)
    from_: date | None = Field(None, alias="from")
    to: date | None = None
    status: str = Field("", pattern="^(|live|retired)$")
    edition: str = Field("", pattern="^(|any|none|[0-9]{1,12})$")
    after: str = Field("", max_length=2000)

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _no_date(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value and value not in KINDS:
            raise ValueError(f"not a kind ({', '.join(KINDS)})")
        return value

    def query(self, zone: ZoneInfo) -> ItemQuery:
        def start(day: date) -> datetime:  # the day's start in the organisation's zone
            return datetime.combine(day, time(0), tzinfo=zone)

        edition: int | str | None = self.edition or None
        if self.edition.isdigit():
            edition = int(self.edition)
        return ItemQuery(
            text=self.q, source=self.source or None, topic=self.topic or None,
            kind=self.kind or None,
            published_from=start(self.from_) if self.from_ else None,
            published_to=start(self.to + timedelta(days=1)) if self.to else None,
            status=self.status or None,  # type: ignore[arg-type]
            edition=edition,  # type: ignore[arg-type]
            after=decode_cursor(self.after) if self.after else None,
        )  # fmt: skip

    def link(self, after: Cursor | None) -> str:
        """This filter's query string, starting after `after` (the next page)."""
        values = self.model_dump(by_alias=True, exclude={"after"})
        pairs = {k: str(v) for k, v in values.items() if v not in ("", None)}
        if after is not None:
            pairs["after"] = encode_cursor(after)
        return urlencode(pairs)


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps([cursor.published.isoformat(), cursor.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> Cursor:
    """A "Next page" link's cursor; ValueError when it is not one this page wrote."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        published, item_id = json.loads(raw)
        moment = datetime.fromisoformat(published)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("the page link is damaged: start again from the first page") from exc
    if moment.tzinfo is None or not isinstance(item_id, str):
        raise ValueError("the page link is damaged: start again from the first page")
    return Cursor(moment, item_id)


def item_link(item_id: str) -> str:
    """The item page's path below the base: the id is one path segment whatever it holds
    (feed ids are URLs: `partner:https://...`)."""
    return "admin/items/" + quote(item_id, safe="")


def configured_topics(config: PublisherConfig) -> list[str]:
    """The topics the configuration names: audiences, sections, feeds and sources."""
    slugs: set[str] = set()
    for campaign in config.campaigns:
        slugs.update(campaign.audience)
        for section in campaign.sections:
            slugs.update(getattr(section, "topics", []) or [])
    for feed in config.feeds.feeds:
        slugs.update(feed.topics)
    for source in config.sources:
        slugs.update(slugify(t) for t in getattr(source, "topics", []) or [])
    return sorted(s for s in slugs if s)


@view("viewer")
@in_thread
def items_page(request: Request, admin: Admin) -> Response:
    w = admin.w
    try:
        filters = Filters.model_validate(dict(request.query_params))
        query = filters.query(ZoneInfo(w.config.organisation.timezone))
    except (ValidationError, ValueError) as exc:
        return admin.message("That filter was not understood", _problem(exc), status=400)
    found = search_items(w.store, query)
    return admin.page(
        "items.html", "Items", filters=filters, found=found, item_link=item_link,
        next_link=filters.link(found.next) if found.next else None, kinds=KINDS,
        sources=item_sources(w.store), all_topics=configured_topics(w.config),
        editions=edition_choices(w.store),
    )  # fmt: skip


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]).replace("from_", "from")
        return f"{where}: {first['msg']}"
    return str(exc)


def _item_page(admin: Admin, item_id: str, **context: Any) -> Response:
    """An item's page, its links relative to where the browser is: the id is one quoted
    segment in the address bar, but the decoded path the base is counted from holds its
    slashes too (as many more as the raw path has fewer)."""
    request = admin.request
    raw = request.scope.get("raw_path")
    extra = request.scope["path"].count("/") - raw.count(b"/") if raw else item_id.count("/")
    base = "../" * (request.url.path.count("/") - 1 - extra)
    response = web(request).page(
        "admin/item.html", context.pop("title"), status=context.pop("status", 200), base=base,
        script=False, admin=admin, **context,
    )  # fmt: skip
    response.headers["content-security-policy"] = ADMIN_CSP
    return response


@view("viewer")
@in_thread
def item_page(request: Request, admin: Admin) -> Response:
    w, item_id = admin.w, request.path_params["id"]
    entry = item_entry(w.store, item_id)
    if entry is None:
        return admin.page("message.html", "No such item", status=404, paragraphs=[item_id])
    source_type = next((s.type for s in w.config.sources if s.name == entry.item.source), "")
    return _item_page(
        admin, item_id, title=entry.item.title or "(untitled)", entry=entry,
        body=Markup(sanitize_html(entry.item.body_html)),  # noqa: S704 - sanitised here
        next_editions=next_editions(w.config, w.store, entry, now=w.now()),
        all_topics=configured_topics(w.config), source_word=_source_word(source_type),
        notice=request.query_params.get("notice", "")[:300],
    )  # fmt: skip


def _source_word(source_type: str) -> str:
    return {"feed": "feed", "markdown": "file", "export": "export"}.get(source_type, "source")


def next_editions(
    config: PublisherConfig, store: Any, entry: ItemEntry, *, now: datetime
) -> list[tuple[str, str]]:
    """(campaign, what its next edition does with the item): in which section, or why it
    is left out (compose's own reasons, as the campaign page lists them)."""
    out = []
    pending = [c for c in config.campaigns if c.name not in {e.campaign for e in entry.editions}]
    selections = _selections(store, pending, now=now)
    for campaign in config.campaigns:
        carried = [e for e in entry.editions if e.campaign == campaign.name]
        if carried:
            out.append((campaign.name, f"went out in #{carried[-1].number}: never sent twice"))
            continue
        selection = selections[campaign.name]
        placed = next(
            (s.name for s in selection.sections if any(i.id == entry.item.id for i in s.items)),
            None,
        )
        reason = next((why for i, why in selection.left_out if i.id == entry.item.id), None)
        if placed is not None:
            out.append((campaign.name, f"in the next edition, section {placed}"))
        elif reason is not None:
            out.append((campaign.name, f"left out: {reason}"))
        else:
            out.append((campaign.name, "left out: older than the campaign's lookback"))
    return out


def _selections(
    store: Any, campaigns: list[CampaignConfig], *, now: datetime
) -> dict[str, Selection]:
    """Each campaign's next selection (pipeline.next_selection's) from ONE read of the
    recent items, the widest lookback's: each campaign then keeps what selection_items
    would have read for its own (dated or first seen since), not one read per campaign."""
    from publisher.pipeline import for_compose

    if not campaigns:
        return {}
    since = {c.name: report_since(c, now) for c in campaigns}
    items, retired = selection_items(store, seen_since=min(since.values()))
    out = {}
    for campaign in campaigns:
        start = since[campaign.name]

        def recent(item: Item, start: datetime = start) -> bool:
            seen = item.first_seen is not None and item.first_seen >= start
            return item.published >= start or seen

        out[campaign.name] = select_items(
            [i for i in items if recent(i)], campaign, now=now,
            history=campaign_history(store, campaign.name),
            retired=[(i, why) for i, why in retired if recent(i)],
            curation=for_compose(get_curation(store, campaign.name)),
        )  # fmt: skip
    return out


def _back(request: Request, item_id: str, notice: str) -> Response:
    # Post/Redirect/Get: a reload never repeats the change; the notice rides in the query
    target = f"{base_of(request)}{item_link(item_id)}?notice={quote(notice)}"
    return RedirectResponse(target, status_code=303)


def _audit(request: Request, admin: Admin, verb: str, target: str) -> None:
    w = admin.w
    audit.record(w.store, admin.staff.email, verb, target, ip=client_ip(request), now=w.now())


@action("editor")
@in_thread
def retire_post(request: Request, admin: Admin, form: FormData) -> Response:
    item_id = text(form, "item", 600)
    try:
        item = retire_item(admin.w.store, item_id, now=admin.w.now(), reason="retired by staff")
    except ItemNotFound:
        return admin.message("No such item", item_id, status=404)
    _audit(request, admin, "item retired", f"{item.title} ({item.id})")
    return _back(request, item_id, "Retired: it is left out of every edition and feed.")


@action("editor")
@in_thread
def unretire_post(request: Request, admin: Admin, form: FormData) -> Response:
    item_id = text(form, "item", 600)
    try:
        item = unretire_item(admin.w.store, item_id, now=admin.w.now())
    except ItemNotFound:
        return admin.message("No such item", item_id, status=404)
    _audit(request, admin, "item brought back", f"{item.title} ({item.id})")
    return _back(request, item_id, "Brought back: editions and feeds may carry it again.")


@action("editor")
@in_thread
def topics_post(request: Request, admin: Admin, form: FormData) -> Response:
    w, item_id = admin.w, text(form, "item", 600)
    chosen: list[str] | None = None
    if text(form, "do", 20) != "source":
        other = [t for t in text(form, "other", 2000).split(",") if t.strip()]
        if len(other) > MAX_OTHER_TOPICS:
            return _back(request, item_id, f"At most {MAX_OTHER_TOPICS} other topics.")
        chosen = [*many(form, "topics")[:200], *other]
    try:
        item = set_topics_override(w.store, item_id, chosen, by=admin.staff.email, now=w.now())
    except ItemNotFound:
        return admin.message("No such item", item_id, status=404)
    shown = ", ".join(item.topics) or "none"
    what = "topics from the source" if chosen is None else "topics set"
    _audit(request, admin, f"item {what}", f"{item.title} ({item.id}): {shown}")
    if chosen is None:
        return _back(request, item_id, f"The source's own topics apply again: {shown}.")
    return _back(request, item_id, f"Topics saved: {shown}. Collecting again keeps them.")
