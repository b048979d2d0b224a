"""Sign-up with double opt-in against a real server: the confirmation email in the file
outbox, a confirm page (a GET never confirms), expiry, no list enumeration, honeypot, rate
limits, form tokens."""

from __future__ import annotations

import email
import re
from email.policy import default

import httpx
import pytest

from publisher.store.subscriber_record import history
from publisher.store.subscribers import find_subscriber
from tests.conftest import present
from tests.servers.data import add_subscribers
from tests.web_support import serve


@pytest.fixture
def served(project, store, fixed_now):
    with serve(project, store) as s:
        yield s


def _csrf(page: str) -> str:
    return present(re.search(r'name="csrf" value="([^"]+)"', page)).group(1)


def _sign_up(served, address, **extra):
    page = httpx.get(f"{served.url}/subscribe").text
    form = {"csrf": _csrf(page), "email": address, "name": "Ana", "consent": "yes"} | extra
    before = len(served.jobs)
    answer = httpx.post(f"{served.url}/subscribe", data=form, headers={"User-Agent": "test-agent"})
    if answer.status_code == 200 and "website" not in extra:  # stored after the answer
        served.wait_for_jobs(before + 1)
    return answer


def _confirm_link(path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=default)
    text = present(message.get_body(("plain",))).get_content()
    return present(re.search(r"(http://\S+/confirm\?token=\S+)", text)).group(1)


def test_sign_up_records_consent_and_sends_a_confirmation(served, store):
    answer = _sign_up(served, "Ana@Example.org", topics=["labor", "bogus"])
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    ana = present(find_subscriber(store, email="ana@example.org"))
    assert ana.status == "pending" and ana.topics == ("labor",)
    (record,) = history(store, ana.id)
    assert record["action"] == "signup" and record["ip"] == "127.0.0.1"
    assert record["user_agent"] == "test-agent" and record["form"] == "subscribe-page"
    assert record["consent_text"].startswith("I agree to receive email from Test Org")
    (mail,) = served.confirmation_emails(1)
    message = email.message_from_bytes(mail.read_bytes(), policy=default)
    assert message["To"] == "ana@example.org"  # no display name a stranger could type
    assert message["Subject"] == "Please confirm your subscription to Test Org"
    html = present(message.get_body(("html",))).get_content()
    link = _confirm_link(mail)
    assert link.replace("&", "&amp;") in html or link in html


def test_opening_the_link_never_confirms_the_button_does_idempotently(served, store):
    _sign_up(served, "ana@example.org")
    link = _confirm_link(served.confirmation_emails(1)[0])
    for _ in range(3):  # a mail gateway's link scanner
        page = httpx.get(link)
        assert page.status_code == 200 and "Confirm my subscription" in page.text
    assert present(find_subscriber(store, email="ana@example.org")).status == "pending"
    token = link.split("token=")[1]
    form = {"csrf": _csrf(page.text), "token": token}
    assert httpx.post(f"{served.url}/confirm", data={"token": token}).status_code == 403
    for _ in range(2):  # a double click: the second press answers, changes nothing
        done = httpx.post(f"{served.url}/confirm", data=form)
        assert done.status_code == 200 and "You are subscribed" in done.text
    ana = present(find_subscriber(store, email="ana@example.org"))
    assert ana.status == "active"
    assert [h["action"] for h in history(store, ana.id)] == ["signup", "confirm"]
    assert "ana@example.org" not in done.text  # a used link shows no address, no token
    assert httpx.get(link).text.count("already confirmed") == 1


def test_confirmation_links_expire_after_7_days(served, store):
    _sign_up(served, "ana@example.org")
    link = _confirm_link(served.confirmation_emails(1)[0])
    served.clock.advance(days=7, seconds=1)
    page = httpx.get(link)
    assert page.status_code == 404 and "This link does not work" in page.text
    assert present(find_subscriber(store, email="ana@example.org")).status == "pending"


def test_the_same_answer_for_new_pending_and_existing_addresses(served, store, fixed_now):
    add_subscribers(store, fixed_now, 1)  # person0@example.org, active
    answers = [
        _sign_up(served, "new@example.org"),
        _sign_up(served, "new@example.org"),  # pending: the confirmation is sent again
        _sign_up(served, "person0@example.org"),
    ]
    bodies = {re.sub(r'value="[^"]*"', "", a.text) for a in answers}
    assert {a.status_code for a in answers} == {200} and len(bodies) == 1
    assert present(find_subscriber(store, email="person0@example.org")).status == "active"
    assert len(served.confirmation_emails(2)) == 1  # one file per subscriber, rewritten
    assert served.sent == ["new@example.org"] * 2


def test_honeypot_invalid_address_and_missing_consent(served, store):
    bot = _sign_up(served, "bot@example.org", website="http://spam.example")
    assert bot.status_code == 200 and "Check your inbox" in bot.text
    assert find_subscriber(store, email="bot@example.org") is None
    bad = _sign_up(served, "not an address")
    assert bad.status_code == 400 and 'aria-describedby="email-error"' in bad.text
    assert 'aria-invalid="true"' in bad.text and 'value="not an address"' in bad.text
    no_consent = _sign_up(served, "ana@example.org", consent="")
    assert no_consent.status_code == 400 and 'id="consent-error"' in no_consent.text
    assert find_subscriber(store, email="ana@example.org") is None
    assert served.confirmation_emails() == []


def test_form_posts_without_a_valid_form_token_are_refused(served, store):
    form = {"email": "ana@example.org", "consent": "yes"}
    assert httpx.post(f"{served.url}/subscribe", data=form).status_code == 403
    forged = form | {"csrf": "eyJhIjoxfQ.forged.sig"}
    assert httpx.post(f"{served.url}/subscribe", data=forged).status_code == 403
    old = _csrf(httpx.get(f"{served.url}/subscribe").text)
    served.clock.advance(hours=2, seconds=1)
    expired = httpx.post(f"{served.url}/subscribe", data=form | {"csrf": old})
    assert expired.status_code == 403 and find_subscriber(store, email="ana@example.org") is None


def test_rate_limits_per_ip_and_per_address(served, store):
    for _ in range(4):
        _sign_up(served, "ana@example.org")
    ana = present(find_subscriber(store, email="ana@example.org"))
    assert len([h for h in history(store, ana.id) if h["action"] == "signup"]) == 4
    answers = [_sign_up(served, f"p{i}@example.org") for i in range(6)]
    assert [a.status_code for a in answers] == [200] * 6
    # 3 confirmation emails per address per hour: the 4th sign-up sent none (same answer)
    assert served.wait_for_mail(9).count("ana@example.org") == 3
    refused = _sign_up(served, "late@example.org")  # 11th sign-up from this IP in 10 minutes
    assert refused.status_code == 429 and find_subscriber(store, email="late@example.org") is None
    served.clock.advance(minutes=11)
    assert _sign_up(served, "late@example.org").status_code == 200
    assert served.wait_for_mail(10).count("late@example.org") == 1


def test_the_sign_up_page_may_be_framed_by_the_website_only(served):
    page = httpx.get(f"{served.url}/subscribe")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://www.example.org" in policy
    assert '<label for="email">' in page.text and 'type="checkbox" name="topics"' in page.text
