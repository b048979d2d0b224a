"""Numbers from every backend (issue 21): an edition sent through the file backend, then
unsubscribes and a preference change made through that edition's own links on the real
app count for that edition with their source, once per person; a link of another edition
or another person credits nothing; SMTP permanent refusals count as bounces; the link-
scanner heuristic; the edition page's wording per backend."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email.policy import default
from pathlib import Path

import httpx
import pytest
from lxml import html as lxml_html

from publisher.deliver import deliver_edition
from publisher.store.numbers import (
    link_key,
    page_counts,
    record_page_event,
    smtp_refusals,
)
from publisher.store.subscribers import find_subscriber, subscriber_at
from publisher.subscribers.numbers import (
    OPENS_NOTE,
    Number,
    edition_numbers,
    email_links,
    probable_scanners,
)
from publisher.support.marks import edition_mark, mark_maker, read_mark, well_formed
from publisher.web.admin.numbers import backend_note
from tests.admin_support import STAFF, add_accounts, csrf_of, log_in, xpath_strings
from tests.conftest import FIXED_NOW, present
from tests.servers.data import add_edition, add_subscribers, config_text
from tests.servers.smtp import SmtpServer
from tests.test_deliver_smtp import smtp_options
from tests.web_support import WEB_CONFIG, serve

NUMBERS_CONFIG = WEB_CONFIG.replace("audience: [labor, housing]", "audience: []")


# --- the marks: which edition a link came from ----------------------------------------------------


def test_a_mark_names_its_edition_only_for_its_person_and_key():
    key = "k" * 43
    mark = edition_mark(key, 7, 12)
    assert re.fullmatch(r"7\.[A-Za-z0-9_-]{16}", mark)
    assert mark_maker(key, 7)(12) == mark  # the sender's per-recipient maker agrees
    assert read_mark(key, mark, 12) == 7
    assert read_mark(key, mark, 13) is None  # another person's link
    assert read_mark("other" * 9, mark, 12) is None  # another store's key
    forged = "8" + mark[1:]  # the same signature moved to another edition
    assert read_mark(key, forged, 12) is None
    for broken in ("", "7", "7.", "x.AAAAAAAAAAAAAAAA", mark + "A", "0." + mark[2:], None):
        assert read_mark(key, broken, 12) is None
    assert mark_maker("", 7)(12) == "" and mark_maker(key, 0)(12) == ""  # test sends, previews
    assert well_formed(mark) == mark and well_formed(forged) == forged  # the form, not the key
    for odd in ("7.AAAAAAAAAAAAAAAA&token=x", '7.AAAAAAAAAAAAAAA"', "", None):
        assert well_formed(odd) == ""


# --- through the real app -------------------------------------------------------------------------


def _eml(outbox: Path, edition: int, subscriber_id: int) -> email.message.EmailMessage:
    raw = (outbox / "weekly" / str(edition) / f"{subscriber_id}.eml").read_bytes()
    return email.message_from_bytes(raw, policy=default)


def _links(outbox: Path, edition: int, subscriber_id: int) -> tuple[str, str]:
    """(one-click unsubscribe URL of the header, preferences URL of the text) as sent."""
    message = _eml(outbox, edition, subscriber_id)
    unsubscribe = present(re.match(r"<([^>]+)>", message["List-Unsubscribe"])).group(1)
    text = present(message.get_body(("plain",))).get_content()
    preferences = present(re.search(r"Preferences: (\S+)", text)).group(1)
    return unsubscribe, preferences


def _hidden(page: str, name: str) -> str:
    return present(re.search(rf'name="{name}" value="([^"]*)"', page)).group(1)


def _save_preferences(http: httpx.Client, url: str) -> str:
    """Open a preferences link and save a change (the person's own form, as a browser)."""
    page = http.get(url).text
    form = {"csrf": csrf_of(page), "token": _hidden(page, "token"), "action": "save"}
    if 'name="e"' in page:
        form["e"] = _hidden(page, "e")
    answer = http.post("/preferences", data=form | {"name": "Changed", "pause": "2"})
    assert "Your preferences are saved." in answer.text
    return answer.text


def _ids(store, count: int) -> list[int]:
    return [present(subscriber_at(store, f"person{i}@example.org")).id for i in range(count)]


def _text(page: str, xpath: str) -> str:
    """The words of what `xpath` finds, spaces collapsed."""
    return " ".join(" ".join(xpath_strings(lxml_html.fromstring(page), xpath)).split())


def _row(page: str, name: str) -> tuple[str, str]:
    """(count, where it comes from) of a number on the edition page."""
    row = f'//table[@id="outcome-table"]//tr[@data-outcome="{name}"]'
    return _text(page, f"{row}/td[1]//text()"), _text(page, f'{row}/td[@class="source"]//text()')


def test_our_pages_count_unsubscribes_and_preferences_per_edition(project, store, monkeypatch):
    monkeypatch.delenv("PUBLISHER_DELIVERY", raising=False)
    add_accounts(store)
    with serve(project, store, config_text=NUMBERS_CONFIG) as served:
        add_subscribers(store, FIXED_NOW, 5)
        first = add_edition(store, FIXED_NOW)
        second = add_edition(store, FIXED_NOW, number=2)
        for edition in (first, second):
            report = deliver_edition(served.config, store, edition, now=FIXED_NOW)
            assert report.sent == 5 and report.backend == "file"
        p = _ids(store, 5)
        links = {(e, s): _links(served.outbox, e, s) for e in (first, second) for s in p}
        assert all(f"&e={first}." in u for e, s in links if e == first for u in links[e, s])
        with httpx.Client(base_url=served.url, follow_redirects=True, timeout=30) as http:
            # person 0: the one-click POST of the header (RFC 8058), twice: counted once
            one_click = {"List-Unsubscribe": "One-Click"}
            for _ in range(2):
                assert http.post(links[first, p[0]][0], data=one_click).status_code == 200
            # person 1: the unsubscribe page of edition 1's link, then its button
            page = http.get(links[first, p[1]][0]).text
            form = {"csrf": csrf_of(page), "token": _hidden(page, "token")}
            answer = http.post("/unsubscribe", data=form | {"e": _hidden(page, "e")})
            assert "You are unsubscribed" in answer.text
            # person 2: a preference change through edition 2's link, saved twice
            for _ in range(2):
                _save_preferences(http, links[second, p[2]][1])
            # person 3: edition 1's mark moved onto edition 2's id; then person 4's mark
            forged_link = links[first, p[3]][1].replace(f"&e={first}.", f"&e={second}.")
            _save_preferences(http, forged_link)
            token_3 = present(find_subscriber(store, id=p[3])).token
            mark_4 = links[first, p[4]][0].split("&e=")[1]
            stolen = f"{served.url}/unsubscribe?token={token_3}&e={mark_4}"
            assert http.post(stolen, data=one_click).status_code == 200
            # person 4: a link without a mark (an older email) still works, counts nothing
            plain = links[first, p[4]][1].split("&e=")[0]
            _save_preferences(http, plain)
            # ... then "Unsubscribe from everything" on edition 2's preferences link
            page = http.get(links[second, p[4]][1]).text
            form = {"csrf": csrf_of(page), "token": _hidden(page, "token"), "e": _hidden(page, "e")}
            answer = http.post("/preferences", data=form | {"action": "unsubscribe"})
            assert "You are unsubscribed from everything." in answer.text

            assert present(find_subscriber(store, id=p[3])).status == "unsubscribed"
            assert page_counts(store, first) == {"unsubscribe": 2, "preferences": 0}
            assert page_counts(store, second) == {"unsubscribe": 1, "preferences": 1}

            log_in(http, STAFF["viewer"])
            page = http.get(f"/admin/editions/{first}").text
            assert _row(page, "unsubscribed") == ("2", "our unsubscribe page")
            assert _row(page, "changed preferences") == ("0", "our preferences page")
            count, source = _row(page, "unique opens")
            assert count == "not available"
            assert "needs SendGrid's event webhook: not available with the file backend" in source
            assert "unreliable" in source and "Apple Mail Privacy Protection" in source
            assert _row(page, "bounced")[0] == "not available"
            assert _text(page, '//*[@id="numbers-backend"]//text()').startswith(
                "This site sends with the file backend."
            )
            page = http.get(f"/admin/editions/{second}").text
            assert _row(page, "changed preferences") == ("1", "our preferences page")

            # the page's wording follows the backend this site sends with
            monkeypatch.setenv("PUBLISHER_DELIVERY", "smtp")
            page = http.get(f"/admin/editions/{first}").text
            assert _row(page, "bounced") == ("0", "SMTP answers")
            assert "not available with the SMTP backend" in _row(page, "delivered")[1]
            monkeypatch.setenv("PUBLISHER_DELIVERY", "sendgrid")
            page = http.get(f"/admin/editions/{first}").text
            assert _row(page, "unique opens")[0] == "0"  # SendGrid's, when its events come
            assert "SendGrid's event webhook is not configured here" not in page


def test_a_page_event_counts_only_for_a_recipient_and_once(store, make_config):
    add_subscribers(store, FIXED_NOW, 1)
    edition = add_edition(store, FIXED_NOW)
    deliver_edition(make_config(config_text("file")), store, edition, now=FIXED_NOW)
    add_subscribers(store, FIXED_NOW, 1, start=1)  # after the send: never received it
    sent, never = _ids(store, 2)
    assert not record_page_event(store, edition, never, "unsubscribe", now=FIXED_NOW)
    assert record_page_event(store, edition, sent, "unsubscribe", now=FIXED_NOW)
    assert not record_page_event(store, edition, sent, "unsubscribe", now=FIXED_NOW)
    assert page_counts(store, edition) == {"unsubscribe": 1, "preferences": 0}
    with pytest.raises(ValueError):
        record_page_event(store, edition, sent, "open", now=FIXED_NOW)
    assert link_key(store, now=FIXED_NOW) == link_key(store, now=FIXED_NOW + timedelta(days=1))


# --- SMTP answers ---------------------------------------------------------------------------------


def test_smtp_permanent_refusals_count_as_bounces(store, make_config, tmp_path):
    with SmtpServer(tmp_path) as server:
        config = make_config(config_text("smtp", delivery=smtp_options(server)))
        add_subscribers(store, FIXED_NOW, 3)
        from publisher.store.subscribers import SubscriberInput, import_subscribers

        refused = ["reject-me@example.org", "nodata-me@example.org", "later-me@example.org"]
        import_subscribers(store, [SubscriberInput(a, None) for a in refused], now=FIXED_NOW)
        edition = add_edition(store, FIXED_NOW)
        report = deliver_edition(config, store, edition, now=FIXED_NOW)
    assert report.sent == 3
    # 550 at RCPT and 554 at DATA are permanent; 450 (try later) is not a bounce
    assert smtp_refusals(store, edition) == 2
    numbers = {n.name: n for n in edition_numbers(store, edition, backend="smtp", html="")}
    assert numbers["bounced"] == Number("bounced", 2, ("SMTP answers",))
    assert numbers["delivered"].count is None
    assert "not available with the SMTP backend" in numbers["delivered"].note


# --- link scanners (pure) -------------------------------------------------------------------------

A, B = "https://www.example.org/a", "https://www.example.org/b"


def test_a_recipient_clicking_every_link_within_seconds_is_a_probable_scanner():
    t0 = FIXED_NOW
    s = timedelta(seconds=1)
    clicks = [
        ("scanner@x", A, t0 + 2 * s), ("scanner@x", B, t0 + 3 * s),  # both links at once
        ("scanner@x", A, t0 + 3600 * s),  # a later click changes nothing
        ("reader@x", A, t0 + 40 * s), ("reader@x", B, t0 + 90 * s),  # a person reading
        ("half@x", A, t0 + 1 * s),  # one link fast, the other never
        ("slow@x", A, t0 + 2 * s), ("slow@x", B, t0 + 600 * s),
        ("nodelivery@x", B, t0 + 500 * s), ("nodelivery@x", A, t0 + 501 * s),
    ]  # fmt: skip
    delivered = {w: t0 for w in ("scanner@x", "reader@x", "half@x", "slow@x")}
    assert probable_scanners(clicks, {A, B}, delivered) == {"scanner@x", "nodelivery@x"}
    assert probable_scanners(clicks, set(), delivered) == set()  # no links: nothing to see
    wider = timedelta(minutes=2)
    assert probable_scanners(clicks, {A, B}, delivered, wider) == {
        "scanner@x", "nodelivery@x", "reader@x",
    }  # fmt: skip


def test_the_links_of_an_email_leave_out_its_personal_pages():
    html = (
        f'<p><a href="{A}">A</a> <a href="{A}">again</a> <a href=" {B} ">B</a>'
        '<a href="%%UNSUBSCRIBE_URL%%">Unsubscribe</a> <a href="mailto:x@example.org">m</a>'
        '<a name="top">no link</a></p>'
    )
    assert email_links(html) == {A, B}


def test_scanner_clicks_are_counted_apart_from_people(store):
    from publisher.subscribers.events import record_events

    edition = add_edition(store, FIXED_NOW)
    stamp = FIXED_NOW.timestamp()

    def event(n: int, kind: str, who: str, seconds: float, **extra: object) -> dict:
        return dict(
            sg_event_id=f"n{n}", event=kind, email=who, timestamp=int(stamp + seconds),
            edition_id=str(edition), **extra,
        )  # fmt: skip

    events = [event(1, "delivered", "scan@x.org", 0), event(2, "delivered", "ann@x.org", 0)]
    events += [event(3, "click", "scan@x.org", 1, url=A), event(4, "click", "scan@x.org", 2, url=B)]
    events += [event(5, "click", "ann@x.org", 300, url=A), event(6, "open", "ann@x.org", 200)]
    record_events(store, events, now=FIXED_NOW)
    html = f'<a href="{A}">a</a><a href="{B}">b</a>'
    numbers = {n.name: n for n in edition_numbers(store, edition, backend="sendgrid", html=html)}
    assert numbers["unique clicks"].count == 1
    assert numbers["probably a link scanner"].count == 1
    assert numbers["unique opens"] == Number("unique opens", 1, ("SendGrid events",), OPENS_NOTE)
    assert numbers["delivered"].count == 2 and numbers["bounced"].count == 0


# --- the page's words per backend (pure) ----------------------------------------------------------


def test_the_backend_note_says_what_each_backend_can_count():
    file_note = backend_note("file", webhook_ready=False)
    assert "file backend" in file_note and "not available with the file backend" in file_note
    assert "counted by our unsubscribe and preferences pages" in file_note
    smtp_note = backend_note("smtp", webhook_ready=False)
    assert "Bounces come from the SMTP server's answers" in smtp_note
    assert "not available with the SMTP backend" in smtp_note
    unready = backend_note("sendgrid", webhook_ready=False)
    assert "SENDGRID_WEBHOOK_PUBLIC_KEY is not set" in unready
    ready = backend_note("sendgrid", webhook_ready=True)
    assert "come from SendGrid's events" in ready and "not set" not in ready
