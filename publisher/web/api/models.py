"""The API's request and response bodies: pydantic models, unknown keys refused, every
string and list bounded. The OpenAPI document's schemas are generated from these."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

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


def encode_cursor(kind: str, after: int) -> str:
    """An opaque cursor: which list, and the last id of the page (keyset, never an offset)."""
    return base64.urlsafe_b64encode(f"{kind}:{after}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int:
    """The id a page starts after (0: the first page); 422 for a cursor not ours."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found, _, after = text.partition(":")
        if found == kind and after.isdigit() and len(after) < 19:
            return int(after)
    except ValueError:
        pass
    detail = {"location": "query", "field": "cursor", "detail": "not a cursor of this list"}
    raise Problem(422, "invalid", "The cursor is not one of this list.", errors=[detail])


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
