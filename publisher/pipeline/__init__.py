"""The whole job, stage by stage: collect -> store -> compose -> render -> deliver, publish.

This is the top of the flow (like cli/): it may import every stage; no stage imports it.
The CLI and the scheduler both call these functions; `run_once` is what `make run` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from publisher.config import PublisherConfig
from publisher.deliver import DeliveryBackend, DeliveryReport, approval, deliver_edition
from publisher.deliver.service import STARTED, UNSENT, unfinished_edition
from publisher.errors import DeliveryError, PublisherError
from publisher.pipeline.next_edition import (
    describe_left_out,
    for_compose,
    next_selection,
    prepare_edition,
    unstored_edition,
)
from publisher.publish.build import build_feeds
from publisher.publish.edition_pages import write_archive_index, write_edition_archive
from publisher.publish.newsroom import POST_RETIRED, publish_posts, write_newsroom_pages
from publisher.render.email import archive_url, render_public
from publisher.render.environment import search_path_for
from publisher.sources.collect import CollectReport, collect_all
from publisher.store import Store
from publisher.store.curation import SavedCuration, get_curation
from publisher.store.editions import (
    NOT_REACHED,
    NewEdition,
    StoredEdition,
    find_edition_by_slot,
    save_edition,
)
from publisher.store.sink import StoreSink
from publisher.subscribers.files import import_subscriber_file
from publisher.support.screen import count

# The stages' functions the edges (cli/, web/, schedule/) and the tests import from here:
# the pipeline is the one place they call, wherever each function lives.
__all__ = [
    "POST_RETIRED",
    "EditionRecord",
    "RunReport",
    "SlotOutcome",
    "audit_composed",
    "build_feeds",
    "collect_before_slot",
    "compose_campaign",
    "describe_edition",
    "describe_left_out",
    "for_compose",
    "import_subscriber_file",
    "next_selection",
    "prepare_edition",
    "preview_email",
    "publish_posts",
    "refresh_inputs",
    "run_campaign_slot",
    "run_once",
    "send_edition",
    "unfinished_note",
    "unstored_edition",
    "write_newsroom_pages",
]

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
    prepared = prepare_edition(config, store, campaign_name, now=now, curation=saved, slot=slot)
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
        write_edition_archive(config, store, stored, public)
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
        write_archive_index(config, store, report.campaign)
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


# --- the next edition, curated (issue 20): which edition the editor's saved choices went into


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
