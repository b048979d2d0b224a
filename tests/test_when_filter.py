"""The `when` filter (every time in /admin): formatted once per (moment, style), and the
same instant reads the same whether given in UTC, in another zone or naive (UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from publisher.web.context import moment_filter


def test_one_format_in_the_organisations_zone_whatever_the_input():
    when = moment_filter(ZoneInfo("America/New_York"))
    moment = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    shown = (
        '<time datetime="2026-12-07T14:00:00Z" title="2026-12-07 14:00 UTC">'
        "Mon 7 Dec 2026, 09:00 EST</time>"
    )
    assert str(when(moment)) == shown
    assert str(when(moment)) == shown  # again: from the cache, the same
    assert str(when(moment.astimezone(ZoneInfo("Asia/Tokyo")))) == shown  # the same instant
    assert str(when(moment.replace(tzinfo=None))) == shown  # naive is UTC
    assert str(when("2026-12-07T14:00:00+00:00")) == shown
    assert str(when(moment, "day")).endswith(">Mon 7 Dec 2026</time>")
    assert str(when(date(2026, 12, 8))) == '<time datetime="2026-12-08">Tue 8 Dec 2026</time>'
    assert str(when(None)) == "–"
    later = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)
    assert "10:30 EST" in str(when(later))
