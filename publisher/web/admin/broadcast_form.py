"""The broadcast editor's form (issue 21): what was posted, kept as typed (a refused save
loses nothing), and checked into the store's BroadcastDraft. Everything that reaches an
email header (subject, preheader, the CTA label) must be one line; the sender is one of
the configured ones (nobody types a From); the call to action is an https:// address."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from publisher.config import PublisherConfig
from publisher.store.broadcasts import Audience, Broadcast, BroadcastDraft
from publisher.support.slug import slugify
from publisher.web.forms import many, name_problem, text

__all__ = ["BODY_MAX", "Form", "audience_of", "checked", "form_from_post", "form_of", "parse_when"]

BODY_MAX = 900_000  # characters: the route's body limit is 1 MiB
ITEMS_MAX = 20
LIMITS = {"name": 200, "subject": 200, "preheader": 300, "cta_label": 80, "cta_url": 2000}
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"  # <input type="datetime-local">


@dataclass
class Form:
    """The editor's values as text, exactly what the form shows."""

    name: str = ""
    subject: str = ""
    preheader: str = ""
    sender: str = "organisation"
    topics: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    body: str = ""
    items: list[str] = field(default_factory=list)
    cta_label: str = ""
    cta_url: str = ""
    version: str = ""
    search: str = ""  # the items search box (never stored)


def form_of(broadcast: Broadcast) -> Form:
    d = broadcast.draft
    return Form(
        name=d.name, subject=d.subject, preheader=d.preheader, sender=d.sender,
        topics=list(d.audience.topics), exclude=list(d.audience.exclude), body=d.body,
        items=list(d.items), cta_label=d.cta_label or "", cta_url=d.cta_url or "",
        version=str(broadcast.version),
    )  # fmt: skip


def _raw(form: FormData, name: str) -> str:
    """One line as typed, one character over its limit (so too long is seen, not cut)."""
    value = form.get(name)
    return value.strip()[: LIMITS[name] + 1] if isinstance(value, str) else ""


def _slugs(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values[:100]:
        slug = slugify(value)
        if slug and slug not in out:
            out.append(slug)
    return out


def form_from_post(form: FormData) -> Form:
    """Every posted value, bounded, as typed (the body keeps its spaces and line breaks)."""
    body = form.get("body")
    items = [i.strip()[:500] for i in many(form, "items") if i.strip()]
    return Form(
        name=_raw(form, "name"), subject=_raw(form, "subject"),
        preheader=_raw(form, "preheader"), sender=text(form, "sender", 80),
        topics=_slugs(many(form, "topics")), exclude=_slugs(many(form, "exclude")),
        body=body[: BODY_MAX + 1].replace("\r\n", "\n") if isinstance(body, str) else "",
        items=list(dict.fromkeys(items))[: ITEMS_MAX + 1], cta_label=_raw(form, "cta_label"),
        cta_url=_raw(form, "cta_url"), version=text(form, "version", 20),
        search=text(form, "search", 200),
    )  # fmt: skip


def audience_of(form: Form) -> Audience:
    return Audience(tuple(form.topics), tuple(t for t in form.exclude if t not in form.topics))


def _one_line(problems: dict[str, str], name: str, label: str, value: str) -> None:
    if len(value) > LIMITS[name]:
        problems[name] = f"{label}: at most {LIMITS[name]} characters."
    elif name_problem(value):
        problems[name] = f"{label}: one line only, no line breaks or control characters."


def cta_problem(label: str, url: str) -> str | None:
    if not label and not url:
        return None
    if not label or not url:
        return "A button needs both its label and its address (or leave both empty)."
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in url):
        return "The button's address must be a complete https:// address."
    return None


def checked(
    form: Form, config: PublisherConfig, topics: list[str], known_items: set[str]
) -> tuple[BroadcastDraft | None, dict[str, str]]:
    """The store's draft of a form, or None and what is wrong by field name. `topics`: the
    configured topics (the only ones offered); `known_items`: the picked ids that exist."""
    problems: dict[str, str] = {}
    for name, label in (("name", "Name"), ("subject", "Subject"), ("preheader", "Preheader")):
        _one_line(problems, name, label, getattr(form, name))
    for name, label in (("name", "Name"), ("subject", "Subject")):
        if not getattr(form, name):
            problems.setdefault(name, f"{label}: required.")
    if form.sender not in [s.name for s in config.sender_choices()]:
        problems["sender"] = "Choose one of the senders offered."
    unknown = [t for t in form.topics + form.exclude if t not in topics]
    if unknown:
        problems["topics"] = f"Choose only the topics offered (not {', '.join(unknown)})."
    if not form.body.strip():
        problems["body"] = "Write the message."
    elif len(form.body) > BODY_MAX:
        problems["body"] = f"The message is too long (at most {BODY_MAX:,} characters)."
    if len(form.items) > ITEMS_MAX or any(i not in known_items for i in form.items):
        problems["items"] = f"Pick at most {ITEMS_MAX} stored items."
    _one_line(problems, "cta_label", "Button label", form.cta_label)
    cta = cta_problem(form.cta_label, form.cta_url)
    if cta:
        problems["cta_url"] = cta
    if problems:
        return None, problems
    return BroadcastDraft(
        name=form.name, subject=form.subject, preheader=form.preheader, sender=form.sender,
        audience=audience_of(form), body=form.body, items=tuple(form.items),
        cta_label=form.cta_label or None, cta_url=form.cta_url or None,
    ), {}  # fmt: skip


def parse_when(value: str, zone: ZoneInfo) -> datetime | None:
    """A datetime-local value in the organisation's zone, as UTC; None when unreadable."""
    try:
        moment = datetime.strptime(value.strip()[:16], LOCAL_FORMAT).replace(tzinfo=zone)
    except ValueError:
        return None
    return moment.astimezone(UTC)
