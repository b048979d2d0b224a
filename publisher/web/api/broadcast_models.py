"""The broadcasts' request and response bodies in the API (issue 22). The bounds are the
broadcast editor's own (publisher.web.admin.broadcast_form), so the document states the
limits the same checks enforce; whatever they cannot say (one line, a configured sender,
configured topics, an https button) is checked by that form's `checked`, one place."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from publisher.web.admin.broadcast_form import BODY_MAX, ITEMS_MAX, LIMITS
from publisher.web.api.models import Cursor, Email, Limit, Strict, Topic

Status = Literal["draft", "scheduled", "sending", "sent", "failed", "cancelled"]
Version = Annotated[
    int, Field(ge=1, le=2**31 - 1, description="the version this starts from (409 if stale)")
]
TopicList = Annotated[list[Topic], Field(max_length=100)]


def _text(name: str, minimum: int = 0) -> object:
    return Field(min_length=minimum, max_length=LIMITS[name])


class BroadcastIn(Strict):
    """A broadcast as the editor in /admin writes it; `topics` empty: everyone."""

    name: Annotated[str, _text("name", 1)]
    subject: Annotated[str, _text("subject", 1)] = Field(description="one line")
    preheader: Annotated[str, _text("preheader")] = ""
    sender: Annotated[str, Field(max_length=80, description="a configured sender's name")] = (
        "organisation"
    )
    topics: TopicList = Field(default=[], description="who it reaches: people following any")
    exclude: TopicList = Field(default=[], description="left out: people who chose any of these")
    body: Annotated[str, Field(min_length=1, max_length=BODY_MAX, description="Markdown")]
    items: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=ITEMS_MAX)] = []
    cta_label: Annotated[str, _text("cta_label")] | None = None
    cta_url: Annotated[str, _text("cta_url")] | None = Field(
        default=None, description="the button's https:// address (with cta_label)"
    )


class BroadcastChange(BroadcastIn):
    version: Version


class Broadcast(Strict):
    id: int
    url: str = Field(description="this broadcast in the API")
    slug: str
    status: Status
    version: int
    name: str
    subject: str
    preheader: str
    sender: str
    topics: list[str]
    exclude: list[str]
    body: str
    items: list[str]
    cta_label: str | None
    cta_url: str | None
    send_at: datetime | None
    edition_id: int | None = Field(description="its edition once its send started")
    counts: dict[str, int] = Field(description="its delivery ledger rows per status")
    created_by: str
    updated_by: str
    created_at: datetime
    updated_at: datetime


class BroadcastQuery(Strict):
    cursor: Cursor | None = None
    limit: Limit = 50


class BroadcastPage(Strict):
    items: list[Broadcast]
    next_cursor: str | None


class BroadcastPreview(Strict):
    subject: str
    preheader: str
    html: str = Field(description="as a sample person gets it (personal links are samples)")
    text: str


class AudienceCount(Strict):
    topics: list[str]
    exclude: list[str]
    count: int = Field(description="who a send now would reach")


class BroadcastTest(Strict):
    to: Annotated[list[Email], Field(min_length=1, max_length=20)] = Field(
        description="staff members' or configured test addresses only"
    )


class BroadcastTestAnswer(Strict):
    to: list[str]
    subject: str


class BroadcastVersion(Strict):
    version: Version


class BroadcastSchedule(Strict):
    version: Version
    send_at: AwareDatetime = Field(description="ISO 8601 with its offset, in the future")
