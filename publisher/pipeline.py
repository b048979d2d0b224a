"""The whole job, stage by stage: collect -> store -> compose -> render -> deliver, publish.

This is the top of the flow (like cli/): it may import every stage; no stage imports it.
The CLI and the scheduler both call these functions; `run_once` is what `make run` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from publisher.compose.curation import Curation
from publisher.compose.edition import (
    Edition,
    Selection,
    compose_edition,
    report_since,
    select_items,
)
from publisher.config import PublisherConfig
from publisher.config.models import BROADCAST_CAMPAIGN
from publisher.deliver import DeliveryBackend, DeliveryReport, approval, deliver_edition
from publisher.deliver.service import STARTED, UNSENT, unfinished_edition
from publisher.errors import DeliveryError, PublisherError
from publisher.items import Item
from publisher.publish.archive import (
    ArchiveEntry,
    write_edition_page,
    write_home_page,
    write_index_page,
)
from publisher.publish.media import write_media
from publisher.render.email import RenderedEdition, archive_url, render_fitting, render_public
from publisher.render.environment import search_path_for
from publisher.sources import newsroom
from publisher.sources.collect import CollectReport, collect_all
from publisher.store import Store, posts
from publisher.store.curation import SavedCuration, get_curation
from publisher.store.editions import (
    NOT_REACHED,
    NewEdition,
    StoredEdition,
    campaign_history,
    edition_item_list,
    find_edition_by_slot,
    list_editions,
    save_edition,
)
from publisher.store.items import (
    UpsertResult,
    list_items,
    retire_item,
    selection_items,
    unretire_item,
    upsert_items,
)
from publisher.store.sink import StoreSink
from publisher.support.screen import count

if TYPE_CHECKING:
    import httpx

    from publisher.publish import FeedsReport
    from publisher.publish.documents import FeedMeta
    from publisher.publish.posts import PostsReport
    from publisher.store.feeds_queries import SentEdition

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    collect: CollectReport | None = None
    notes: list[str] = field(default_factory=list)  # one line per other stage's outcome


def run_once(config: PublisherConfig, store: Store, *, now: datetime) -> RunReport:
    """Collect, publish feeds, compose and deliver every campaign once (`make run`)."""
    report = RunReport()
    report.collect, subscriber_notes = refresh_inputs(config, store, now=now)
    report.notes.extend(subscriber_notes)
    for campaign in config.campaigns:
        report.notes.extend(_run_campaign(config, store, campaign.name, now=now))
    report.notes.append(build_feeds(config, store, now=now).note)
    return report


def _run_campaign(
    config: PublisherConfig, store: Store, campaign: str, *, now: datetime
) -> list[str]:
    """One campaign of `run --once`: an edition composed earlier and never sent is sent
    first; one whose send started and did not finish is reported with how to finish it, and
    nothing new is composed behind it (as `publisher send` does)."""
    notes: list[str] = []
    earlier = unfinished_edition(store, campaign)
    if earlier is not None and earlier.status in STARTED:
        return [f"{unfinished_note(earlier)}; no new edition composed"]
    if earlier is not None:
        notes.append(f"{campaign}: edition {earlier.number} was composed earlier and never sent")
        delivery = send_edition(config, store, earlier.id, now=now)
        notes.append(delivery.note)
        if delivery.status in STARTED:  # paused or stopped: its note says how to go on
            return notes
    record = compose_campaign(config, store, campaign, now=now)
    if record is not None:
        notes.append(describe_edition(campaign, record))
        notes.append(send_edition(config, store, record.id, now=now).note)
    elif earlier is None:  # nothing sent at all: say why
        notes.append(describe_edition(campaign, record))
        notes.append(describe_left_out(config, store, campaign, now=now))
    return notes


def unfinished_note(edition: StoredEdition) -> str:
    """What `run --once` says of an edition whose send started and did not finish."""
    return (
        f"{edition.campaign}: edition {edition.number} was not fully sent ({edition.status}); "
        f"`publisher send {edition.campaign} --resume` finishes it"
    )


def refresh_inputs(
    config: PublisherConfig, store: Store, *, now: datetime
) -> tuple[CollectReport, list[str]]:
    """Publish the posts that have come due, finish the welcome emails a stopped sender
    left, collect every source and import the subscriber file: what the daemon's collect job
    and `run --once` both do before anything is composed."""
    publish_posts(config, store, now=now)  # a scheduled post goes live at its date
    if config.welcome is not None:  # the welcomes a stopped sender left, finished once
        from publisher.deliver.welcome import resume_welcomes

        resume_welcomes(config, store, now=now)
    report = collect_all(config, StoreSink(store), now=now)
    return report, import_subscriber_file(config, store, now=now)


def publish_posts(
    config: PublisherConfig, store: Store, *, now: datetime, pages: bool = False
) -> UpsertResult:
    """The newsroom's posts into items at once (no collect needed): published posts dated
    up to `now` are upserted; the items of drafts, retired posts and posts moved into the
    future are retired (and brought back when the post is published again). `pages`: also
    rewrite the public post pages when an item changed (the web, after a save; the daemon's
    feed build writes them otherwise)."""
    posts.mark_due_published(store, now=now)
    changed = False
    stored = posts.newsroom_items(store)
    live = []
    for post in posts.list_posts(store):
        key = newsroom.item_id(post.id)
        if post.status in posts.LIVE and post.fields.date <= now:
            if (stored.get(key) or "").startswith(POST_RETIRED):
                unretire_item(store, key, now=now)  # not one an editor retired by hand
                changed = True
            try:
                live.append(_post_item(config, post))
            except ValueError as exc:  # e.g. a date no item may have: the others go on
                log.warning("post %s is not published: %s", post.id, exc)
        elif key in stored and stored[key] is None:
            retire_item(store, key, now=now, reason=f"{POST_RETIRED} {post.status}")
            changed = True
    result = upsert_items(store, live, now=now)
    if pages and (changed or result.written):
        write_newsroom_pages(config, store, now=now)
    return result


POST_RETIRED = "the post is"  # the reason of an item retired because of its post


def _post_item(config: PublisherConfig, post: posts.Post) -> Item:
    f = post.fields
    return newsroom.post_item(
        post_id=post.id, slug=f.slug, title=f.title, body=f.body, published=f.date,
        public_url=config.organisation.public_url, summary=f.summary, kind=f.kind,
        topics=f.topics, author=f.author, image=f.image, image_alt=f.image_alt,
        external_url=f.external_url,
    )  # fmt: skip


def build_feeds(
    config: PublisherConfig, store: Store, *, now: datetime, http: httpx.Client | None = None
) -> FeedsReport:
    """Publish every configured feed from the stored items and sent editions (skipped, without
    loading items, when nothing feeds are made of changed since the last build)."""
    from publisher.publish import feeds_up_to_date, publish_feeds
    from publisher.publish.broadcasts import write_broadcast_pages
    from publisher.store.feeds_queries import (
        StoredBuildState,
        content_signature,
        sent_editions,
    )

    log.info("%s", write_newsroom_pages(config, store, now=now).note)  # change-only writes
    write_broadcast_pages(config, store)  # the sent broadcasts' public copies (issue 21)
    write_media(config, store)  # images beside the archive: the missing ones (issue 20)
    campaigns = {feed.editions_of for feed in config.feeds.feeds if feed.editions_of}
    signature = content_signature(store, campaigns)
    state = StoredBuildState(store, now=now)
    unchanged = feeds_up_to_date(config, signature, state)
    if unchanged is not None:
        return unchanged
    editions: dict[str, Sequence[SentEdition]] = {c: sent_editions(store, c) for c in campaigns}
    if BROADCAST_CAMPAIGN in editions:  # issue 21: linking to their public copies
        from publisher.publish.broadcasts import broadcast_entries

        editions[BROADCAST_CAMPAIGN] = broadcast_entries(editions[BROADCAST_CAMPAIGN])
    items = list_items(store)  # retired items are not among them
    return publish_feeds(
        config,
        items,
        editions,
        now=now,
        http=http,
        signature=signature,
        state=state,
        edition_titles=_edition_titles(store, editions),
    )


def write_newsroom_pages(config: PublisherConfig, store: Store, *, now: datetime) -> PostsReport:
    """The newsroom's public pages (posts/) from its stored items, then the archive's home
    page (it links to the posts); the web calls this after a post is saved or retired."""
    from publisher.items import NEWSROOM
    from publisher.publish.feeds import feed_meta, select_items
    from publisher.publish.posts import POSTS_DIR, write_post_pages

    items = list_items(store, source=NEWSROOM)  # retired items are not among them
    feeds = [
        (feed_meta(config, feed), select_items(feed, items))
        for feed in config.feeds.feeds
        if not feed.editions_of
    ]
    search_path = search_path_for(config.root)
    report = write_post_pages(config, items, now=now, feeds=feeds, search_path=search_path)
    if config.resolve(POSTS_DIR).joinpath("index.html").is_file():
        write_home_page(config.root, config.organisation, config.campaigns, search_path=search_path)
    return report


def _edition_titles(
    store: Store, editions: Mapping[str, Sequence[SentEdition]]
) -> dict[tuple[str, int], list[str]]:
    """(campaign, number) -> the titles of the items each sent edition carried."""
    titles: dict[tuple[str, int], list[str]] = {}
    for campaign, sent in editions.items():
        numbers = {e.number for e in sent}
        for summary in list_editions(store, campaign):
            if summary.number in numbers:
                carried = edition_item_list(store, summary.id)
                titles[(campaign, summary.number)] = [i.title for _, i in carried]
    return titles


# --- digest editions: compose -> render -> store -> archive -------------------------------


@dataclass(frozen=True)
class EditionRecord:
    id: int
    campaign: str
    number: int
    subject: str
    item_count: int
    created: bool  # False: the edition for this slot existed already


def describe_edition(campaign: str, record: EditionRecord | None) -> str:
    if record is None:
        return f"{campaign}: nothing new, no edition"
    verb = "composed" if record.created else "already composed for this slot"
    return f"{campaign}: edition {record.number} {verb}, {count(record.item_count, 'item')}"


def next_selection(
    config: PublisherConfig, store: Store, campaign_name: str, *, now: datetime
) -> Selection:
    """What the campaign's next edition would carry and every stored item it leaves out,
    with why, without rendering (the preview and the dashboard list it even when nothing
    would go out)."""
    campaign = config.campaign(campaign_name)
    history = campaign_history(store, campaign.name)
    items, retired = selection_items(store, seen_since=report_since(campaign, now))
    curation = for_compose(get_curation(store, campaign.name))
    return select_items(
        items, campaign, now=now, history=history, retired=retired, curation=curation
    )


def describe_left_out(
    config: PublisherConfig, store: Store, campaign: str, *, now: datetime
) -> str:
    """Why nothing went out: the stored items the campaign has not sent, counted by reason."""
    left_out = next_selection(config, store, campaign, now=now).left_out
    if not left_out:
        return f"{campaign}: every stored item went out in an earlier edition"
    reasons: dict[str, int] = {}
    for _item, reason in left_out:
        key = reason.split(":")[0].split(",")[0]  # 'held until its date', 'retired'...
        reasons[key] = reasons.get(key, 0) + 1
    counted = "; ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
    return f"{campaign}: left out {counted} (`publisher preview {campaign}` lists them)"


def prepare_edition(
    config: PublisherConfig,
    store: Store,
    campaign_name: str,
    *,
    now: datetime,
    curation: SavedCuration | None = None,
) -> tuple[Edition, RenderedEdition] | None:
    """Compose and render a campaign's next edition without storing it (preview uses this),
    with the editor's saved choices (`curation`, else the stored ones)."""
    campaign = config.campaign(campaign_name)
    history = campaign_history(store, campaign.name)
    # An item enters by what the campaign has not sent yet and its lookback, never by a
    # window after the previous edition: a late (backdated) item is still a candidate.
    items, retired = selection_items(store, seen_since=report_since(campaign, now))
    chosen = for_compose(curation or get_curation(store, campaign.name))
    edition = compose_edition(
        items, campaign, now=now, history=history, retired=retired, curation=chosen
    )
    if edition is None:
        return None
    for item, reason in edition.left_out:
        log.info("%s: left out '%s' (%s): %s", campaign.name, item.title, item.id, reason)
    org = config.organisation
    # An item that cannot be rendered, or makes the email too large, is left out (logged
    # with the reason) and the edition goes out without it.
    edition, rendered = render_fitting(
        edition,
        org,
        web_url=archive_url(org.public_url, campaign.name, edition.number),
        search_path=search_path_for(config.root),
    )
    if not edition.items and campaign.skip_if_empty:
        return None
    return edition, rendered


def unstored_edition(
    campaign: str, edition: Edition, rendered: RenderedEdition, *, now: datetime
) -> StoredEdition:
    """A composed edition that is not in the store (id 0): what previews and dry runs show."""
    return StoredEdition(
        0, campaign, edition.number, None, now, rendered.subject, rendered.preheader,
        rendered.html, rendered.text, "preview", None, len(edition.items),
    )  # fmt: skip


def preview_email(config: PublisherConfig, edition: StoredEdition, *, now: datetime) -> bytes:
    """The edition as one sample recipient gets it: built by the delivery path, so it has
    every header a real send adds (List-Unsubscribe, List-Id, Message-ID...)."""
    from publisher.deliver import Recipient
    from publisher.deliver.mime import build_message as message_bytes
    from publisher.deliver.mime import prepare_skeleton
    from publisher.deliver.service import build_message
    from publisher.render.preview import PREVIEW_TOKEN

    message = build_message(config, edition, now=now)
    sample = Recipient(0, "preview@example.invalid", None, PREVIEW_TOKEN, message.public_url)
    return message_bytes(prepare_skeleton(message), sample)


def compose_campaign(
    config: PublisherConfig,
    store: Store,
    campaign_name: str,
    *,
    now: datetime,
    slot: datetime | None = None,
) -> EditionRecord | None:
    """Compose, render and store a campaign's next edition and write its archive page.

    Idempotent per slot: a second call for the same (campaign, slot) returns the edition
    stored by the first (created=False). None when skip_if_empty and nothing is new.
    """
    existing = find_edition_by_slot(store, campaign_name, slot)
    if existing is not None:
        return _edition_record(existing, created=False)
    saved = get_curation(store, campaign_name)  # composed with these, then they are cleared
    prepared = prepare_edition(config, store, campaign_name, now=now, curation=saved)
    if prepared is None:
        log.info("%s: nothing new since the previous edition", campaign_name)
        return None
    edition, rendered = prepared
    org = config.organisation
    # The public copy is rendered before anything is stored: a template that fails for it
    # fails the edition, never leaves it stored without its archive page.
    public = render_public(
        edition,
        org,
        web_url=archive_url(org.public_url, campaign_name, edition.number),
        search_path=search_path_for(config.root),
    )
    stored, created = save_edition(
        store,
        NewEdition(
            campaign=campaign_name,
            number=edition.number,
            slot=slot,
            composed_at=now,
            subject=rendered.subject,
            preheader=rendered.preheader,
            html=rendered.html,
            text=rendered.text,
            placements=[(s, pos, item.id) for s, pos, item in edition.placements()],
            curation=saved.record() if saved.revision else None,
        ),
    )
    if created:
        _write_archive(config, store, stored, public)
        if saved.revision:
            audit_composed(store, saved, stored.number, now=now)
    return _edition_record(stored, created=created)


def _edition_record(stored: StoredEdition, *, created: bool) -> EditionRecord:
    return EditionRecord(
        id=stored.id,
        campaign=stored.campaign,
        number=stored.number,
        subject=stored.subject,
        item_count=stored.item_count,
        created=created,
    )


def _write_archive(
    config: PublisherConfig, store: Store, stored: StoredEdition, public: str
) -> None:
    """The edition's public copy (render_public: the same edition, for nobody) and the
    indexes."""
    from publisher.publish.listing import alternate_link_tags

    org = config.organisation
    links = alternate_link_tags(_edition_feeds(config, stored.campaign))
    write_edition_page(config.root, org, stored.campaign, stored.number, public, links)
    _write_index(config, store, stored.campaign)
    write_media(config, store)  # the images its page may show, for static hosting


def _edition_feeds(config: PublisherConfig, campaign: str) -> list[FeedMeta]:
    """The campaign's edition feeds, for its archive pages."""
    from publisher.publish.feeds import feed_meta  # feedgen and lxml: only when needed

    return [feed_meta(config, f) for f in config.feeds.feeds if f.campaign == campaign]


def _write_index(config: PublisherConfig, store: Store, campaign: str) -> None:
    """The campaign's archive index (every edition but those that reached nobody), then
    the archive's home page."""
    from publisher.publish.listing import alternate_link_tags, feed_links

    entries = [
        ArchiveEntry(e.number, e.subject, e.composed_at, e.item_count)
        for e in list_editions(store, campaign)
        if e.status not in NOT_REACHED
    ]
    feeds = _edition_feeds(config, campaign)
    search_path = search_path_for(config.root)
    write_index_page(
        config.root,
        config.organisation,
        config.campaign(campaign),
        entries,
        head_links=alternate_link_tags(feeds),
        feed_links=[link for meta in feeds for link in feed_links(meta)],
        search_path=search_path,
    )
    write_home_page(config.root, config.organisation, config.campaigns, search_path=search_path)


# --- delivery (delivery issue): subscribers -> ledger -> backend ---------------------------


def send_edition(
    config: PublisherConfig,
    store: Store,
    edition_id: int,
    *,
    now: datetime,
    backend: DeliveryBackend[Any, Any] | None = None,
    **options: object,
) -> DeliveryReport:
    """Send an edition (or finish an interrupted send) to its campaign's active audience,
    exactly once per subscriber. Options: publisher.deliver.service.SendOptions. An
    edition that reached nobody leaves the archive index (it was listed when composed).
    NotApproved when the approval rule wants this edition approved first."""
    approval.require_approved(config, store, "edition", edition_id, now=now)
    try:
        report = deliver_edition(config, store, edition_id, now=now, backend=backend, **options)
    except PublisherError as exc:  # the edition stays stored: say how to send it
        raise _with_next_step(exc, store, edition_id) from exc
    if report.status in NOT_REACHED:
        _write_index(config, store, report.campaign)
    return report


def _with_next_step(exc: PublisherError, store: Store, edition_id: int) -> PublisherError:
    """The error that stopped a send, with the command that continues it once fixed (the
    same exit status)."""
    from publisher.store.editions import get_edition

    edition = get_edition(store, edition_id)
    if edition is None or edition.status not in (UNSENT, *STARTED):
        return exc  # nothing of it is left to send (e.g. a --resend-batch refused)
    command = f"publisher send {edition.campaign}"
    if edition.status != UNSENT:
        command += " --resume"
    error = DeliveryError(
        f"{exc}\n{edition.campaign}: edition {edition.number} is stored and not fully sent; "
        f"once this is fixed, `{command}` sends it"
    )
    error.exit_code = exc.exit_code
    return error


def import_subscriber_file(config: PublisherConfig, store: Store, *, now: datetime) -> list[str]:
    """Upsert `subscribers.file` (if configured) into the store; never re-subscribes anyone."""
    from publisher.store.subscribers import import_subscribers
    from publisher.subscribers.files import SubscriberFileError, read_subscriber_file

    if not config.subscribers.file:
        return []
    path = config.resolve(config.subscribers.file)
    try:
        rows, problems = read_subscriber_file(path)
    except SubscriberFileError as exc:  # one bad file: the run goes on with who is stored
        return [f"subscribers: skipped {exc}; the subscribers already stored are kept"]
    result = import_subscribers(store, rows, now=now)
    notes = [f"subscribers: {result.inserted} new, {result.updated} updated from {path.name}"]
    if result.suppressed:
        notes.append(f"subscribers: {result.suppressed} suppressed addresses not re-added")
    return notes + [f"subscribers: skipped {problem}" for problem in problems]


# --- scheduled runs (scheduling issue): publisher/schedule/daemon.py calls this per slot ---------


@dataclass(frozen=True)
class SlotOutcome:
    # 'sent', 'skipped' (nothing new) or 'failed' (paused by backend errors, stopped between
    # batches, or reached nobody: the next daemon start resumes it), 'held' (waits for
    # approval: publisher/deliver/approval.py); other errors raise
    status: str
    edition_id: int | None = None
    detail: str = ""


def run_campaign_slot(
    config: PublisherConfig,
    store: Store,
    campaign: str,
    slot: datetime,
    *,
    now: datetime,
    should_stop: Callable[[], bool] | None = None,
    collect_first: bool = False,
) -> SlotOutcome:
    """One scheduled slot: collect (with `collect_first`, the daemon's way), compose its
    edition (or find it), send it, rebuild the feeds.

    Safe to repeat: the edition is unique per (campaign, slot) and sending is exactly-once
    per subscriber, so a retry or a restart resumes an interrupted send. An edition the
    approval rule holds makes the slot 'held' (the daemon runs it again once approved).
    """
    try:
        return _run_slot(config, store, campaign, slot, now, should_stop, collect_first)
    except approval.NotApproved as exc:
        edition = find_edition_by_slot(store, campaign, slot) or unfinished_edition(store, campaign)
        return SlotOutcome("held", edition.id if edition else None, str(exc))


def _run_slot(
    config: PublisherConfig,
    store: Store,
    campaign: str,
    slot: datetime,
    now: datetime,
    should_stop: Callable[[], bool] | None,
    collect_first: bool,
) -> SlotOutcome:
    collected = ""
    if collect_first and find_edition_by_slot(store, campaign, slot) is None:
        collected = "; " + collect_before_slot(config, store, now=now)
    earlier, notes = _unsent_before(store, campaign, slot), []
    if earlier is not None:  # composed by a send or slot that stopped before sending
        delivery = send_edition(config, store, earlier.id, now=now, should_stop=should_stop)
        notes.append(f"edition {earlier.number}, composed earlier and never sent: {delivery.note}")
        if delivery.status in STARTED:
            return SlotOutcome("failed", earlier.id, notes[0] + collected)
    record = compose_campaign(config, store, campaign, now=now, slot=slot)
    if record is None and earlier is None:
        unfinished = unfinished_edition(store, campaign)  # paused, say, by `publisher send`
        said = f"nothing new; {unfinished_note(unfinished)}" if unfinished else "nothing new"
        return SlotOutcome("skipped", None, said + collected)
    if record is not None:
        delivery = send_edition(config, store, record.id, now=now, should_stop=should_stop)
        notes.append(delivery.note)
    notes.append(build_feeds(config, store, now=now).note)
    # A send paused by backend errors, stopped by a shutdown between batches, or that
    # reached nobody is 'failed': the next daemon start resumes it.
    status = "failed" if delivery.status in STARTED else "sent"
    edition_id = record.id if record else earlier.id if earlier else None
    return SlotOutcome(status, edition_id, "; ".join(notes) + collected)


def _unsent_before(store: Store, campaign: str, slot: datetime) -> StoredEdition | None:
    """The campaign's newest edition if it was composed and never sent, for another slot
    (or for none: `publisher send`); this slot's own edition is found by compose."""
    edition = unfinished_edition(store, campaign)
    if edition is None or edition.status != UNSENT or edition.slot == slot:
        return None
    return edition


def collect_before_slot(config: PublisherConfig, store: Store, *, now: datetime) -> str:
    """Collect every source (and the subscriber file) right before a slot is composed, so
    an edit made minutes before it is what goes out. Each remote source is bounded by its
    own deadline; a failing source is reported (logged, and in the returned note) and the
    slot goes on with what is stored."""
    try:
        report, _subscriber_notes = refresh_inputs(config, store, now=now)
    except PublisherError as exc:  # e.g. an unreadable content folder: compose what is stored
        log.warning("collect before the slot failed, composing what is stored: %s", exc)
        return f"collect before the slot failed ({exc}); composed what was stored"
    failing = sorted({problem.source for problem in report.problems})
    if failing:
        return f"{report.note} (problems: {', '.join(failing)}; composed with what was stored)"
    return report.note


# --- the next edition, curated (issue 20): the editor's saved choices, as compose reads them


def for_compose(saved: SavedCuration) -> Curation:
    """The stored choices as compose's plain Curation."""
    c = saved.choices
    return Curation(c.note, frozenset(c.pinned), frozenset(c.excluded), c.order, c.subject)


def audit_composed(store: Store, saved: SavedCuration, number: int, *, now: datetime) -> None:
    """The audit log says which edition an editor's choices went into (they are cleared)."""
    from publisher.store import audit

    c = saved.choices
    parts = [
        "note" if c.note else "",
        f"{len(c.pinned)} pinned" if c.pinned else "",
        f"{len(c.excluded)} excluded" if c.excluded else "",
        "order" if c.order else "",
        f"subject '{c.subject}'" if c.subject else "",
    ]
    chosen = ", ".join(part for part in parts if part) or "none"
    target = f"{saved.campaign} #{number}: choices of {saved.changed_by} ({chosen})"
    audit.record(store, "publisher", "compose with choices", target, ip=None, now=now)
