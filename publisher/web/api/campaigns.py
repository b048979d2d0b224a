"""Campaigns and their editions through the API, read only: status, counts and rates, from
the same queries as the dashboard (store/dashboard.py)."""

from __future__ import annotations

from publisher.store import dashboard
from publisher.store.audience_counts import count_audience
from publisher.store.schedule_state import paused_campaigns
from publisher.web.api import models
from publisher.web.api.framework import Call, Endpoint
from publisher.web.api.problems import Problem

RATE_EVENTS = ("open", "click", "bounce", "spamreport", "unsubscribe")


def campaigns(call: Call) -> models.CampaignList:
    paused = paused_campaigns(call.w.store)
    return models.CampaignList(
        items=[
            models.Campaign(
                name=c.name,
                title=c.title,
                audience=list(c.audience),
                paused=c.name in paused,
                audience_size=count_audience(call.w.store, c.audience),
            )  # fmt: skip
            for c in call.w.config.campaigns
        ]
    )


def _edition(call: Call, line: dashboard.EditionLine) -> models.Edition:
    events = dashboard.recipients_per_event(call.w.store, line.id)
    base = line.accepted
    rates = {e: round(events.get(e, 0) / base, 4) if base else 0.0 for e in RATE_EVENTS}
    return models.Edition(
        id=line.id, campaign=line.campaign, number=line.number, subject=line.subject,
        status=line.status, composed_at=line.composed_at, sent_at=line.sent_at,
        counts=dict(line.counts), accepted=line.accepted, failed=line.failed, events=events,
        rates=rates,
    )  # fmt: skip


def edition(call: Call) -> models.Edition:
    found = dashboard.edition_line(call.w.store, call.params["id"])
    if found is None:
        raise Problem(404, "not-found", "No edition with this id.")
    return _edition(call, found[0])


def editions(call: Call) -> models.EditionPage:
    """A campaign's editions, newest first (keyset on the edition number)."""
    query: models.EditionQuery = call.query
    if query.campaign not in {c.name for c in call.w.config.campaigns}:
        errors = [{"location": "query", "field": "campaign", "detail": "no such campaign"}]
        raise Problem(422, "invalid", "No campaign of that name.", errors=errors)
    before = models.decode_cursor("editions", query.cursor) or None
    lines, older = dashboard.campaign_editions(
        call.w.store, query.campaign, limit=query.limit, before=before
    )
    cursor = models.encode_cursor("editions", lines[-1].number) if older and lines else None
    return models.EditionPage(items=[_edition(call, line) for line in lines], next_cursor=cursor)


READ, TAG = "campaigns:read", "campaigns"
ENDPOINTS = [
    Endpoint("GET", "/campaigns", READ, campaigns, "The campaigns", TAG, models.CampaignList),
    Endpoint("GET", "/editions", READ, editions, "A campaign's editions, newest first", TAG,
             models.EditionPage, query=models.EditionQuery),
    Endpoint("GET", "/editions/{id}", READ, edition, "One edition: status, counts, rates", TAG,
             models.Edition),
]  # fmt: skip
