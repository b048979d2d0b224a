"""Subscribers, their events and the public sign-up through the API: the same rules as the
web and /admin (publisher.subscribers.consent). A key without `subscribers:import` creates
people through double opt-in exactly as the sign-up form does; with it, they are active
at once (the key's owner vouches for their consent, as staff do in /admin)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from publisher.store import Store, api_adds, api_pages, audit, consent
from publisher.store.api_keys import ApiKey
from publisher.store.group import one_write
from publisher.store.subscribers import Subscriber as Person
from publisher.store.subscribers import find_subscriber, normalise_email
from publisher.subscribers.consent import add_person, erase, sign_up, staff_refusal, unsubscribe
from publisher.web.api import models
from publisher.web.api.framework import Call, Endpoint
from publisher.web.api.problems import Problem
from publisher.web.forms import name_problem
from publisher.web.limits import client_wait
from publisher.web.notices import mail

ERASED = "@erased.invalid"


def _out(person: Person) -> models.Subscriber:
    return models.Subscriber(
        id=person.id,
        email=person.email,
        name=person.name,
        status=person.status,  # type: ignore[arg-type]
        topics=list(person.topics),
    )


def _field_problem(field: str, detail: str) -> Problem:
    errors = [{"location": "body", "field": field, "detail": detail}]
    return Problem(422, "invalid", detail, errors=errors)


def _checked(call: Call, email: str, name: str | None, topics: list[str]) -> str:
    """The normalised address, once the name and topics are ones we keep (422 otherwise)."""
    try:
        address = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        raise _field_problem("email", "Not an email address.") from None
    if name and (problem := name_problem(name)):
        raise _field_problem("name", problem)
    _check_topics(call, topics)
    return address


def _check_topics(call: Call, topics: list[str]) -> None:
    known = {topic.slug for topic in call.w.topics}
    unknown = sorted(set(topics) - known)
    if unknown:
        raise _field_problem("topics", f"Unknown topics: {', '.join(unknown)}.")


def _person(call: Call) -> Person:
    person = find_subscriber(call.w.store, id=call.params["id"])
    if person is None or person.email.endswith(ERASED):
        raise Problem(404, "not-found", "No subscriber with this id.")
    return person


def _audit(call: Call, store: Store, action: str, target: str) -> None:
    """In `store`: the one_write of the change it records (both stored, or neither)."""
    audit.record(store, call.actor, action, target, ip=call.ip, now=call.now)


def _imports(key: ApiKey) -> bool:
    """A key that adds people confirmed: its create only writes the store (group commit);
    a sign-up mails a confirmation, so it runs alone."""
    return "subscribers:import" in key.scopes


def _prepare(call: Call) -> None:
    """The address checked and normalised before a batched create reaches the writer."""
    body: models.SubscriberIn = call.body
    try:  # one email-validator reading (remembered: the writer asks again) when it is fine
        address = normalise_email(body.email)
    except ValueError:  # _checked says why, or add_person does, as they always did
        _checked(call, body.email, body.name, body.topics)
        return
    if body.name and (problem := name_problem(body.name)):
        raise _field_problem("name", problem)
    _check_topics(call, body.topics)
    call.prepared = address


def _context(call: Call) -> consent.Context:
    body: models.SubscriberIn = call.body
    return consent.Context(
        via="api",
        ip=body.consent.ip,
        user_agent=body.consent.user_agent,
        form=body.consent.form or f"api: {call.key.name}"[:100],
        consent_text=body.consent.text,
    )


def create_many(store: Store, calls: list[Call]) -> list[models.Subscriber | Exception]:
    """The prepared creates of import keys in one batch (see Endpoint.bulk): what `create`
    answers each, one at a time in this order, with a few statements for them all."""
    requests = [
        api_adds.NewActive(call.prepared, call.body.name or None, call.body.topics, _context(call))
        for call in calls
    ]
    added = api_adds.add_active_many(store, requests, now=max(call.now for call in calls))
    answers: list[models.Subscriber | Exception] = []
    entries = []
    for call, outcome in zip(calls, added, strict=True):
        address = call.prepared
        if outcome.subscriber is None:
            refused = staff_refusal(
                address, existing=outcome.existing, suppressed=outcome.suppressed
            )
            answers.append(refused)
            continue
        answers.append(_out(outcome.subscriber))
        entries.append(
            audit.AuditEntry(
                call.now, call.actor, "api: subscriber added, confirmed", address, call.ip
            )
        )
    audit.record_many(store, entries)
    return answers


def create(call: Call) -> models.Subscriber:
    body: models.SubscriberIn = call.body
    address = call.prepared or _checked(call, body.email, body.name, body.topics)
    ctx = _context(call)
    name = body.name or None
    if "subscribers:import" in call.key.scopes:
        with one_write(call.w.store) as store:
            person = add_person(
                store,
                address,
                name=name,
                topics=body.topics,
                ctx=ctx,
                now=call.now,
                normalised=call.prepared is not None,
            )
            _audit(call, store, "api: subscriber added, confirmed", address)
        return _out(person)
    with one_write(call.w.store) as store:
        found, confirm = sign_up(
            store, address, name=name, topics=body.topics, ctx=ctx, now=call.now
        )
        if found is not None:
            _audit(call, store, "api: subscriber signed up", address)
    if found is None:
        raise Problem(409, "conflict", "This address cannot be added (erased or suppressed).")
    if confirm:  # once both are stored: the mail cannot be taken back
        mail(call.w, found, "confirm")
    return _out(found)


def read(call: Call) -> models.Subscriber:
    return _out(_person(call))


def search(call: Call) -> models.SubscriberPage:
    query: models.SubscriberQuery = call.query
    after = models.decode_cursor("subscribers", query.cursor)
    found = api_pages.subscriber_page(
        call.w.store, after=after, limit=query.limit + 1, status=query.status, text=query.q
    )
    page = found[: query.limit]
    more = len(found) > query.limit
    cursor = models.encode_cursor("subscribers", page[-1].id) if more else None
    return models.SubscriberPage(items=[_out(p) for p in page], next_cursor=cursor)


def change(call: Call) -> models.Subscriber:
    body: models.SubscriberChange = call.body
    if body.name is None and body.topics is None:  # checked first: no read through a write key
        raise _field_problem("name", "Nothing to change: give a name or topics.")
    person = _person(call)
    name = person.name if body.name is None else (body.name or None)
    topics = list(person.topics) if body.topics is None else body.topics
    if name and (problem := name_problem(name)):
        raise _field_problem("name", problem)
    _check_topics(call, topics)
    ctx = consent.Context(via="api", ip=call.ip, form=f"api: {call.key.name}"[:100])
    with one_write(call.w.store) as store:
        consent.update_preferences(
            store, person.id, name=name, topics=topics, ctx=ctx, now=call.now
        )
        _audit(call, store, "api: subscriber changed", person.email)
    return _out(find_subscriber(call.w.store, id=person.id) or person)


def leave(call: Call) -> models.Subscriber:
    person = _person(call)
    ctx = consent.Context(via="api", ip=call.ip, form=f"api: {call.key.name}"[:100])
    with one_write(call.w.store) as store:
        unsubscribe(store, person.id, ctx=ctx, now=call.now)
        _audit(call, store, "api: subscriber unsubscribed", person.email)
    return _out(find_subscriber(call.w.store, id=person.id) or person)


def forget(call: Call) -> None:
    person = _person(call)
    with one_write(call.w.store) as store:
        erase(store, person, now=call.now, source="api")
        _audit(call, store, "api: subscriber erased", f"subscriber {person.id}")


EVENTS_ORDER = (
    "Oldest first, in an order fixed at commit: an event is listed once its transaction, "
    "and every one that started writing before it, has ended, so an event committed late "
    "never lands behind a cursor already handed out (a long-running transaction on the "
    "database delays events, never loses them). A cursor from before this order (a bare "
    "id) is still accepted and continues where it was."
)


def _event_after(cursor: str | None) -> api_pages.EventPosition:
    """The position a page of events starts after: "txid.id" as _event_cursor writes it,
    or a bare id (a cursor given before migration 0033: its rows all have txid 0)."""
    if not cursor:
        return api_pages.FIRST_EVENT
    txid, dot, after = models.cursor_text("events", cursor).rpartition(".")
    parts = (txid if dot else "0", after)
    if not all(part.isascii() and part.isdigit() and len(part) <= 18 for part in parts):
        raise models.bad_cursor()
    return api_pages.EventPosition(int(parts[0]), int(parts[1]))


def _event_cursor(position: api_pages.EventPosition) -> str:
    return models.encode_cursor("events", f"{position.txid}.{position.id}")


def events(call: Call) -> models.EventPage:
    query: models.EventQuery = call.query
    after = _event_after(query.cursor)
    kinds = (query.kind,) if query.kind else api_pages.EVENT_STATUSES
    found = api_pages.subscriber_events(call.w.store, after=after, limit=query.limit, kinds=kinds)
    items = [
        models.Event(
            id=e.id,
            kind=e.kind,  # type: ignore[arg-type]
            at=e.at,
            subscriber_id=e.subscriber_id,
            email=e.email,
            via=e.via,
        )
        for e in found
    ]
    last = found[-1].position if found else after
    return models.EventPage(items=items, next_cursor=_event_cursor(last))


def signup(call: Call) -> models.SignupAnswer:
    """Another website's form: the web sign-up's limits and double opt-in. The answer is
    the same whoever the address is (nobody learns who is on the list)."""
    body: models.SignupIn = call.body
    address = _checked(call, body.email, body.name, body.topics)
    wait = client_wait(call.w.store, call.ip, now=call.now)
    if wait is not None:
        detail = "Too many sign-ups from here. Try again later."
        raise Problem(429, "rate-limited", detail, headers={"Retry-After": str(wait)})
    ctx = consent.Context(
        via="api",
        ip=call.ip,
        user_agent=call.user_agent,
        form=body.form or f"api: {call.key.name}"[:100],
        consent_text=call.w.consent_text,
    )
    with one_write(call.w.store) as store:
        person, confirm = sign_up(
            store, address, name=body.name or None, topics=body.topics, ctx=ctx, now=call.now
        )
        if person is not None:  # audited as every write through a key is, by its name
            _audit(call, store, "api: sign-up form", address)
    if confirm and person is not None:
        mail(call.w, person, "confirm")
    return models.SignupAnswer(
        detail="If this address can receive our email, a link is on its way."
    )


TAG = "subscribers"
ENDPOINTS = [
    Endpoint("POST", "/subscribers", "subscribers:write", create, "Add a subscriber", TAG,
             models.Subscriber, body=models.SubscriberIn, status=201, batched=_imports,
             prepare=_prepare, bulk=create_many),
    Endpoint("GET", "/subscribers", "subscribers:read", search, "List or search subscribers",
             TAG, models.SubscriberPage, query=models.SubscriberQuery),
    Endpoint("GET", "/subscribers/{id}", "subscribers:read", read, "One subscriber", TAG,
             models.Subscriber),
    Endpoint("PATCH", "/subscribers/{id}", "subscribers:write", change,
             "Change a subscriber's name or topics (one at least)", TAG, models.Subscriber,
             body=models.SubscriberChange),
    Endpoint("POST", "/subscribers/{id}/unsubscribe", "subscribers:write", leave,
             "Unsubscribe a subscriber", TAG, models.Subscriber),
    Endpoint("DELETE", "/subscribers/{id}", "subscribers:write", forget,
             "Erase a subscriber's personal data (the address stays suppressed)", TAG),
    Endpoint("GET", "/events", "subscribers:read", events,
             "Unsubscribes, bounces and complaints since a cursor", "events", models.EventPage,
             query=models.EventQuery, description=EVENTS_ORDER),
    Endpoint("POST", "/signup", "signup", signup,
             "Sign up from another website's form (double opt-in)", "signup",
             models.SignupAnswer, body=models.SignupIn, status=202, cors=True),
]  # fmt: skip
