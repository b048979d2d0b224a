"""Keeping the list of people in /admin (issue 20): add a person with the note on where
their consent came from, correct a name and topics, unsubscribe, and ask someone who left
to come back (only by mailing them the confirmation email: they stay unsubscribed until
they click). The rules are publisher.subscribers.consent's, the CLI's too; every change is
in the person's history (by whom) and in the audit log (by subscriber number, never the
address: an erased person's address must not survive in the log)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.store import audit
from publisher.store.consent import Context, record_history, update_preferences
from publisher.store.subscribers import Subscriber, find_subscriber, normalise_email
from publisher.subscribers.consent import (
    StaffRefused,
    add_person,
    resubscribe_refusal,
    unsubscribe,
)
from publisher.subscribers.files import MAX_NAME
from publisher.web.admin.auth import Admin, action, base_of, view
from publisher.web.context import Topic, client_ip, in_thread
from publisher.web.forms import many, name_problem, text
from publisher.web.notices import mail

MAX_NOTE = 500  # characters of the consent note: a sentence, not a document


@dataclass(frozen=True)
class PersonForm:
    """What staff typed, and the problems to show beside each field."""

    values: dict[str, Any]
    errors: dict[str, str]


def staff_context(request: Request, admin: Admin, note: str | None = None) -> Context:
    """A change by a staff member: who (their address, kept in the history's `form`)."""
    return Context(via="staff", ip=client_ip(request), form=admin.staff.email, consent_text=note)


def note_problem(note: str) -> str | None:
    """Why a consent note cannot be kept, or None."""
    if not note:
        return "Say where the consent came from, e.g. “sign-up sheet at the 3 Dec town hall”."
    if len(note) > MAX_NOTE:
        return f"Keep it under {MAX_NOTE} characters."
    return name_problem(note)


def _name(form: FormData, errors: dict[str, str]) -> str:
    name = text(form, "name", MAX_NAME + 1)
    problem = name_problem(name) or (
        f"Keep it under {MAX_NAME} characters." if len(name) > MAX_NAME else None
    )
    if problem:
        errors["name"] = problem
    return name


def read_person(form: FormData, topics: list[Topic], *, new: bool) -> PersonForm:
    """The add (new=True: address and consent note too) or edit form, checked."""
    allowed = {t.slug for t in topics}
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"topics": sorted({t for t in many(form, "topics") if t in allowed})}
    values["name"] = _name(form, errors)
    if new:
        values["email"], values["note"] = text(form, "email"), text(form, "note", MAX_NOTE + 1)
        try:
            values["address"] = normalise_email(values["email"])
        except ValueError:
            errors["email"] = "Enter an email address like name@example.org."
        if problem := note_problem(values["note"]):
            errors["note"] = problem
    return PersonForm(values, errors)


def to_person(request: Request, subscriber_id: int, notice: str) -> Response:
    url = f"{base_of(request)}admin/subscribers/{subscriber_id}?notice={quote(notice)}"
    return RedirectResponse(url, status_code=303)


def _new_page(admin: Admin, person: PersonForm, status: int = 200) -> Response:
    values = {"email": "", "name": "", "note": "", "topics": []} | person.values
    return admin.page(
        "subscriber_new.html", "Add a person", status=status, values=values,
        errors=person.errors, choices=admin.w.topics,
    )  # fmt: skip


@view("editor")
@in_thread
def new_page(request: Request, admin: Admin) -> Response:
    return _new_page(admin, PersonForm({}, {}))


@action("editor")
@in_thread
def new_post(request: Request, admin: Admin, form: FormData) -> Response:
    w = admin.w
    person = read_person(form, w.topics, new=True)
    if person.errors:
        return _new_page(admin, person, status=400)
    values = person.values
    try:
        added = add_person(
            w.store, values["address"], name=values["name"] or None, topics=values["topics"],
            ctx=staff_context(request, admin, values["note"]), now=w.now(),
        )  # fmt: skip
    except StaffRefused as exc:
        return _new_page(admin, PersonForm(values, {"email": str(exc)}), status=409)
    _audit(request, admin, "subscriber added", added)
    return to_person(request, added.id, f"Added {added.email}: active from now on.")


def offered_topics(configured: list[Topic], person: Subscriber) -> list[Topic]:
    """The configured topics, and those the person follows that no longer are (offered, so
    saving the form does not drop them unasked)."""
    slugs = {t.slug for t in configured}
    return configured + [Topic(t, t) for t in person.topics if t not in slugs]


def _person(admin: Admin, request: Request) -> Subscriber | None:
    found = find_subscriber(admin.w.store, id=int(request.path_params["id"]))
    if found is None or found.email.endswith("@erased.invalid"):
        return None
    return found


def _audit(request: Request, admin: Admin, what: str, person: Subscriber, more: str = "") -> None:
    w = admin.w
    target = f"subscriber #{person.id}{more}"
    audit.record(w.store, admin.staff.email, what, target, ip=client_ip(request), now=w.now())


def _missing(admin: Admin) -> Response:
    return admin.message("No such subscriber", status=404)


@action("editor")
@in_thread
def edit_post(request: Request, admin: Admin, form: FormData) -> Response:
    w, person = admin.w, _person(admin, request)
    if person is None:
        return _missing(admin)
    edited = read_person(form, offered_topics(w.topics, person), new=False)
    if edited.errors:
        return admin.message("Not saved", *edited.errors.values(), status=400)
    name, topics = edited.values["name"] or None, edited.values["topics"]
    update_preferences(
        w.store, person.id, name=name, topics=topics, ctx=staff_context(request, admin), now=w.now()
    )
    _audit(request, admin, "subscriber edited", person)
    return to_person(request, person.id, "Saved the name and topics.")


@action("editor")
@in_thread
def unsubscribe_post(request: Request, admin: Admin, form: FormData) -> Response:
    w, person = admin.w, _person(admin, request)
    if person is None:
        return _missing(admin)
    if not unsubscribe(w.store, person.id, ctx=staff_context(request, admin), now=w.now()):
        return to_person(request, person.id, f"Nothing changed: {person.email} is {person.status}.")
    _audit(request, admin, "subscriber unsubscribed", person)
    return to_person(request, person.id, f"Unsubscribed {person.email}: they get no more email.")


@action("editor")
@in_thread
def resubscribe_post(request: Request, admin: Admin, form: FormData) -> Response:
    """Someone who left comes back only by their own click: the confirmation email."""
    w, person = admin.w, _person(admin, request)
    if person is None:
        return _missing(admin)
    refusal = resubscribe_refusal(w.store, person)
    if refusal:
        return to_person(request, person.id, refusal)
    if not mail(w, person, "reconfirm"):
        return to_person(
            request, person.id, "This address had several emails from us in the last hour: "
            "nothing was sent. Try again later.",
        )  # fmt: skip
    ctx = staff_context(request, admin)
    record_history(
        w.store, person.id, "comeback mailed", ctx=ctx, now=w.now(), status=person.status,
        detail="confirmation email sent; unsubscribed until they confirm",
    )  # fmt: skip
    _audit(request, admin, "resubscribe mailed", person)
    return to_person(
        request, person.id, f"A confirmation email went to {person.email}. They stay "
        "unsubscribed until they click its link.",
    )  # fmt: skip
