"""The API's request and response bodies: pydantic models, unknown keys refused, every
string and list bounded. The OpenAPI document's schemas are generated from these."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from publisher.web.api.problems import Problem

Name = Annotated[str, Field(max_length=200)]
Topic = Annotated[str, Field(min_length=1, max_length=100)]
Topics = Annotated[list[Topic], Field(max_length=50)]
Email = Annotated[str, Field(min_length=3, max_length=320, examples=["ada@example.org"])]
Limit = Annotated[int, Field(ge=1, le=200)]
Cursor = Annotated[str, Field(max_length=100, description="next_cursor of the page before")]
SubscriberStatus = Literal["pending", "active", "unsubscribed", "bounced", "complained"]
EventKind = Literal["unsubscribed", "bounced", "complained"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def encode_cursor(kind: str, after: int | str) -> str:
    """An opaque cursor: which list, and where its page ended (keyset, never an offset)."""
    return base64.urlsafe_b64encode(f"{kind}:{after}".encode()).decode().rstrip("=")


def cursor_text(kind: str, cursor: str) -> str:
    """Where a page of this list ended, as encode_cursor wrote it; 422 for any other."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found, _, after = text.partition(":")
        if found == kind and after:
            return after
    except ValueError:
        pass
    raise bad_cursor()


def bad_cursor() -> Problem:
    detail = {"location": "query", "field": "cursor", "detail": "not a cursor of this list"}
    return Problem(422, "invalid", "The cursor is not one of this list.", errors=[detail])


def decode_cursor(kind: str, cursor: str | None) -> int:
    """The id a page starts after (0: the first page); 422 for a cursor not ours."""
    if not cursor:
        return 0
    after = cursor_text(kind, cursor)
    if not after.isdigit() or len(after) > 18:
        raise bad_cursor()
    return int(after)


class Consent(Strict):
    """Where and how the person agreed, kept in their history as a web sign-up's is."""

    text: Annotated[str, Field(min_length=1, max_length=2000)]
    form: Annotated[str, Field(max_length=100)] | None = None
    ip: Annotated[str, Field(max_length=64)] | None = None
    user_agent: Annotated[str, Field(max_length=500)] | None = None


class SubscriberIn(Strict):
    email: Email
    name: Name | None = None
    topics: Topics = []
    consent: Consent


class SubscriberChange(Strict):
    name: Name | None = None
    topics: Topics | None = None


class Subscriber(Strict):
    id: int
    email: str
    name: str | None
    status: SubscriberStatus
    topics: list[str]


class SubscriberQuery(Strict):
    status: SubscriberStatus | None = None
    q: Annotated[str, Field(max_length=100, description="in the address or name")] | None = None
    cursor: Cursor | None = None
    limit: Limit = 50


class SubscriberPage(Strict):
    items: list[Subscriber]
    next_cursor: str | None = Field(description="null on the last page")


class Event(Strict):
    id: int
    kind: EventKind
    at: datetime
    subscriber_id: int
    email: str
    via: str


class EventQuery(Strict):
    kind: EventKind | None = None
    cursor: Cursor | None = None
    limit: Limit = 100


class EventPage(Strict):
    items: list[Event]
    next_cursor: str | None = Field(
        description="where to continue; on the last page, keep it to poll for newer events"
    )


class SignupIn(Strict):
    email: Email
    name: Name | None = None
    topics: Topics = []
    consent: Literal[True] = Field(description="the person ticked the consent box")
    form: Annotated[str, Field(max_length=100)] | None = None


class SignupAnswer(Strict):
    detail: str


Kind = Literal["article", "resource", "news", "action", "event"]
Url = Annotated[str, Field(max_length=2000)]


def _sane_date(value: datetime | None) -> datetime | None:
    if value is not None and not 1970 <= value.year <= 2200:
        raise ValueError("a date between 1970 and 2200")
    return value


class PostIn(Strict):
    """A post as an editor writes it in /admin; `date` absent: now."""

    title: Annotated[str, Field(min_length=1, max_length=300)]
    body: Annotated[str, Field(max_length=500_000, description="Markdown")] = ""
    summary: Annotated[str, Field(max_length=2000)] = ""
    kind: Kind = "article"
    topics: Topics = []
    date: Annotated[datetime | None, AfterValidator(_sane_date)] = None
    author: Annotated[str, Field(max_length=200)] = ""
    image: Url | None = None
    image_alt: Annotated[str, Field(max_length=1000)] | None = None
    external_url: Url | None = None
    slug: Annotated[str, Field(max_length=200)] = ""


class PostChange(PostIn):
    version: int = Field(
        ge=1, le=2**31 - 1, description="the version this change starts from (409 if stale)"
    )


class PostVersion(Strict):
    version: int = Field(
        ge=1, le=2**31 - 1, description="the version this change starts from (409 if stale)"
    )


class Post(Strict):
    id: int
    status: Literal["draft", "scheduled", "published", "retired"]
    version: int
    title: str
    body: str
    summary: str
    kind: str
    topics: list[str]
    date: datetime
    author: str
    image: str | None
    image_alt: str | None
    external_url: str | None
    slug: str
    updated_by: str
    updated_at: datetime


class PostQuery(Strict):
    status: Literal["draft", "scheduled", "published", "retired"] | None = None
    cursor: Cursor | None = None
    limit: Limit = 50


class PostPage(Strict):
    items: list[Post]
    next_cursor: str | None


class Item(Strict):
    id: str
    source: str
    title: str
    url: str
    summary: str | None
    kind: str
    topics: list[str]
    published: datetime | None
    retired: bool


class ItemQuery(Strict):
    q: Annotated[str, Field(max_length=200)] | None = None
    source: Annotated[str, Field(max_length=200)] | None = None
    topic: Annotated[str, Field(max_length=100)] | None = None
    status: Literal["live", "retired"] | None = None
    cursor: Annotated[str, Field(max_length=1000)] | None = None
    limit: Limit = 50


class ItemPage(Strict):
    items: list[Item]
    next_cursor: str | None


class ItemRetire(Strict):
    id: Annotated[str, Field(min_length=1, max_length=512)]
    reason: Annotated[str, Field(max_length=200)] = "retired through the API"


class Campaign(Strict):
    name: str
    title: str
    audience: list[str]
    paused: bool
    audience_size: int


class CampaignList(Strict):
    items: list[Campaign]


class Edition(Strict):
    id: int
    campaign: str
    number: int
    subject: str
    status: str
    composed_at: datetime
    sent_at: datetime | None
    counts: dict[str, int] = Field(description="delivery ledger rows per status")
    accepted: int
    failed: int
    events: dict[str, int] = Field(description="unique recipients per provider event")
    rates: dict[str, float] = Field(description="events per accepted message, 0 to 1")


class EditionQuery(Strict):
    campaign: Annotated[str, Field(min_length=1, max_length=100)]
    cursor: Cursor | None = None
    limit: Annotated[int, Field(ge=1, le=50)] = 10


class EditionPage(Strict):
    items: list[Edition]
    next_cursor: str | None
