"""The next edition, curated: an editor's note, pins, exclusions, order and a one-time
subject, changed from the campaign page (plain forms, redirect back: no JavaScript needed).

What each choice does to the edition is publisher/compose/curation.py's; here a change is
checked (the item must be one the next edition carries or leaves out now), stored as a
function of the choices before it (publisher.store.curation.change_curation) and audited
with the item's title.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import replace

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from publisher.compose.curation import NOTE_MAX, SUBJECT_MAX
from publisher.compose.edition import Selection
from publisher.items import Item
from publisher.store import audit
from publisher.store.curation import Choices, change_curation, clear_curation
from publisher.web.admin.auth import Admin, action
from publisher.web.admin.campaigns import _back, _campaign
from publisher.web.context import client_ip, in_thread
from publisher.web.forms import text

Change = Callable[[Choices], Choices]


def _without(ids: tuple[str, ...], item_id: str) -> tuple[str, ...]:
    return tuple(i for i in ids if i != item_id)


def _selection(admin: Admin, name: str) -> Selection:
    from publisher.pipeline import next_selection

    return next_selection(admin.w.config, admin.w.store, name, now=admin.w.now())


def _find(selection: Selection, item_id: str) -> Item | None:
    chosen = [item for section in selection.sections for item in section.items]
    left = [item for item, _reason in selection.left_out]
    return next((item for item in chosen + left if item.id == item_id), None)


def _save(request: Request, admin: Admin, change: Change, verb: str, target: str) -> None:
    w, name = admin.w, request.path_params["name"]
    change_curation(w.store, name, change, by=admin.staff.email, now=w.now())
    audit.record(
        w.store, admin.staff.email, verb, f"{name}: {target}", ip=client_ip(request), now=w.now()
    )


def _on_item(request: Request, admin: Admin, form: FormData, verb: str) -> Response:
    """Pin, unpin or exclude the posted item: one the next edition carries or leaves out."""
    name = request.path_params["name"]
    if _campaign(admin, name) is None:
        return admin.page("message.html", "No such campaign", status=404, paragraphs=[name])
    item = _find(_selection(admin, name), text(form, "item", 600))
    if item is None:
        return _back(request, name, "That item is no longer stored or went out already.")
    changes: dict[str, Change] = {
        "pin": lambda c: replace(
            c,
            pinned=(*_without(c.pinned, item.id), item.id),
            excluded=_without(c.excluded, item.id),
        ),
        "unpin": lambda c: replace(c, pinned=_without(c.pinned, item.id)),
        "exclude": lambda c: replace(
            c,
            excluded=(*_without(c.excluded, item.id), item.id),
            pinned=_without(c.pinned, item.id),
        ),
    }
    _save(request, admin, changes[verb], verb, item.title)
    said = {"pin": "Pinned", "unpin": "Unpinned", "exclude": "Excluded"}[verb]
    return _back(request, name, f"{said}: {item.title}.")


@action("editor")
@in_thread
def pin_post(request: Request, admin: Admin, form: FormData) -> Response:
    return _on_item(request, admin, form, "pin")


@action("editor")
@in_thread
def unpin_post(request: Request, admin: Admin, form: FormData) -> Response:
    return _on_item(request, admin, form, "unpin")


@action("editor")
@in_thread
def exclude_post(request: Request, admin: Admin, form: FormData) -> Response:
    return _on_item(request, admin, form, "exclude")


def _moved(ids: list[str], item_id: str, up: bool) -> list[str]:
    """The section's ids with `item_id` swapped with its neighbour above (or below)."""
    at = ids.index(item_id)
    other = at - 1 if up else at + 1
    if 0 <= other < len(ids):
        ids[at], ids[other] = ids[other], ids[at]
    return ids


@action("editor")
@in_thread
def move_post(request: Request, admin: Admin, form: FormData) -> Response:
    """Move a chosen item up or down inside its section: the whole section's order is
    saved, so what the editor saw is what goes out."""
    name, item_id = request.path_params["name"], text(form, "item", 600)
    if _campaign(admin, name) is None:
        return admin.page("message.html", "No such campaign", status=404, paragraphs=[name])
    up = text(form, "direction", 10) != "down"
    section = next(
        (s for s in _selection(admin, name).sections if item_id in {i.id for i in s.items}), None
    )
    if section is None:
        return _back(request, name, "That item is not in the next edition.")
    item = next(i for i in section.items if i.id == item_id)
    ids = _moved([i.id for i in section.items], item_id, up)

    def change(c: Choices) -> Choices:
        return replace(c, order=(*ids, *(i for i in c.order if i not in ids)))

    direction = "up" if up else "down"
    _save(request, admin, change, f"move {direction}", item.title)
    return _back(request, name, f"Moved {direction}: {item.title}.")


def _one_line(value: str) -> bool:
    """No line break, tab, other control character or line/paragraph separator: a
    header must stay one line (a no-break space or an emoji is fine)."""
    return not any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value)


@action("editor")
@in_thread
def subject_post(request: Request, admin: Admin, form: FormData) -> Response:
    name, subject = request.path_params["name"], text(form, "subject", SUBJECT_MAX + 1)
    if _campaign(admin, name) is None:
        return admin.page("message.html", "No such campaign", status=404, paragraphs=[name])
    if len(subject) > SUBJECT_MAX or not _one_line(subject):
        return _back(request, name, f"A subject is one line of at most {SUBJECT_MAX} characters.")
    _save(request, admin, lambda c: replace(c, subject=subject), "one-time subject", subject)
    said = f"The next edition's subject: {subject}" if subject else "The usual subject is back."
    return _back(request, name, said)


@action("editor")
@in_thread
def note_post(request: Request, admin: Admin, form: FormData) -> Response:
    raw = form.get("note")
    name, note = request.path_params["name"], raw.strip() if isinstance(raw, str) else ""
    if _campaign(admin, name) is None:
        return admin.page("message.html", "No such campaign", status=404, paragraphs=[name])
    if len(note) > NOTE_MAX:
        return _back(request, name, f"A note is at most {NOTE_MAX} characters.")
    _save(request, admin, lambda c: replace(c, note=note), "editor's note", note[:80])
    return _back(request, name, "Note saved." if note else "Note removed.")


@action("editor")
@in_thread
def clear_post(request: Request, admin: Admin, form: FormData) -> Response:
    name, w = request.path_params["name"], admin.w
    if _campaign(admin, name) is None:
        return admin.page("message.html", "No such campaign", status=404, paragraphs=[name])
    clear_curation(w.store, name)
    audit.record(
        w.store, admin.staff.email, "clear choices", name, ip=client_ip(request), now=w.now()
    )
    return _back(request, name, "Choices cleared: the next edition is as configured.")
