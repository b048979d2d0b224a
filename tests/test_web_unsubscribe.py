"""Unsubscribe and the preference centre over plain HTTP against a real server: RFC 8058
one-click with no cookies, GET never changes anything, bad tokens change nothing, forms
without a valid form token are refused."""

from __future__ import annotations

import email
import re
import time
from datetime import timedelta
from email.policy import default

import httpx
import pytest

from publisher.store.subscriber_record import history, paused_until
from publisher.store.subscribers import find_subscriber, iter_subscribers
from tests.conftest import present
from tests.servers.data import add_subscribers
from tests.web_support import serve


@pytest.fixture
def served(project, store, fixed_now):
    add_subscribers(store, fixed_now, 3, topics=("labor",))
    with serve(project, store) as s:
        yield s


def _people(store):
    return list(iter_subscribers(store))


def _csrf(page: str) -> str:
    return present(re.search(r'name="csrf" value="([^"]+)"', page)).group(1)


def _token(page: str) -> str:
    return present(re.search(r'name="token" value="([^"]+)"', page)).group(1)


def _status(store, subscriber):
    return present(find_subscriber(store, id=subscriber.id)).status


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes_without_cookies_twice(served, store, encoding):
    person, other = _people(store)[:2]
    url = f"{served.url}/unsubscribe?token={person.token}"
    for _ in range(2):  # idempotent: the second POST answers the same and changes nothing
        with httpx.Client(follow_redirects=False) as client:  # a fresh client: no cookies
            if encoding == "urlencoded":
                answer = client.post(url, data={"List-Unsubscribe": "One-Click"})
            else:
                answer = client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
        assert answer.status_code == 200 and "set-cookie" not in answer.headers
        assert "You are unsubscribed" in answer.text
    assert _status(store, person) == "unsubscribed"
    assert _status(store, other) == "active"
    rows = [h for h in history(store, person.id) if h["action"] == "unsubscribe"]
    assert len(rows) == 1 and rows[0]["via"] == "one-click" and rows[0]["ip"] == "127.0.0.1"


def test_get_never_unsubscribes_and_shows_a_button_and_the_preferences(served, store):
    person = _people(store)[0]
    for _ in range(3):
        page = httpx.get(f"{served.url}/unsubscribe?token={person.token}")
        assert page.status_code == 200
    assert 'method="post"' in page.text and ">Unsubscribe</button>" in page.text
    assert f"preferences?token={person.token}" in page.text
    httpx.get(f"{served.url}/preferences?token={person.token}")
    assert _status(store, person) == "active" and history(store, person.id) == []


def test_the_unsubscribe_button_needs_its_form_token(served, store):
    person = _people(store)[0]
    url = f"{served.url}/unsubscribe"
    refused = httpx.post(url, data={"token": person.token})
    forged = httpx.post(url, data={"token": person.token, "csrf": "forged"})
    assert refused.status_code == forged.status_code == 403
    assert _status(store, person) == "active"
    page = httpx.get(f"{url}?token={person.token}").text
    other = _people(store)[1]  # a form token is bound to its subscriber
    stolen = httpx.post(url, data={"token": other.token, "csrf": _csrf(page)})
    assert stolen.status_code == 403 and _status(store, other) == "active"
    done = httpx.post(url, data={"token": person.token, "csrf": _csrf(page)})
    assert done.status_code == 200 and _status(store, person) == "unsubscribed"


@pytest.mark.parametrize("path", ["unsubscribe", "preferences", "confirm"])
def test_tampered_unknown_and_foreign_tokens_get_a_friendly_page(served, store, path):
    person = _people(store)[0]
    tampered = person.token[:-2] + ("AA" if not person.token.endswith("AA") else "BB")
    for token in (tampered, "", "x" * 5000, "../../etc/passwd"):
        page = httpx.get(f"{served.url}/{path}", params={"token": token})
        assert page.status_code == 404 and "This link does not work" in page.text
        post = httpx.post(
            f"{served.url}/{path}?token={token}", data={"List-Unsubscribe": "One-Click"}
        )
        assert post.status_code in (403, 404)
    assert {s.status for s in _people(store)} == {"active"}
    assert all(history(store, s.id) == [] for s in _people(store))


def test_preferences_change_topics_name_and_pause(served, store, fixed_now):
    person = _people(store)[0]
    page = httpx.get(f"{served.url}/preferences?token={person.token}").text
    form = {
        "csrf": _csrf(page),
        "token": person.token,
        "action": "save",
        "name": "Renamed",
        "topics": ["housing", "not-a-topic"],
        "pause": "4",
    }
    answer = httpx.post(f"{served.url}/preferences", data=form)
    assert answer.status_code == 200 and "Your preferences are saved." in answer.text
    changed = present(find_subscriber(store, id=person.id))
    assert changed.name == "Renamed" and changed.topics == ("housing",)
    assert paused_until(store, person.id, now=fixed_now) == fixed_now + timedelta(weeks=4)
    assert "paused until 2026-12-23" in answer.text
    without = {k: v for k, v in form.items() if k != "csrf"}
    assert httpx.post(f"{served.url}/preferences", data=without).status_code == 403


def test_unsubscribe_everything_then_resubscribe_from_the_preference_centre(served, store):
    person = _people(store)[0]
    url = f"{served.url}/preferences"
    csrf = _csrf(httpx.get(f"{url}?token={person.token}").text)
    gone = httpx.post(url, data={"csrf": csrf, "token": person.token, "action": "unsubscribe"})
    assert "Resubscribe" in gone.text and _status(store, person) == "unsubscribed"
    # unsubscribing rotated the token: the old one (in every email sent) opens nothing more
    stale = httpx.post(url, data={"csrf": csrf, "token": person.token, "action": "resubscribe"})
    assert stale.status_code == 404 and _status(store, person) == "unsubscribed"
    token = _token(gone.text)
    assert token == present(find_subscriber(store, id=person.id)).token != person.token
    csrf = _csrf(gone.text)
    back = httpx.post(url, data={"csrf": csrf, "token": token, "action": "resubscribe"})
    assert "subscribed again" in back.text and _status(store, person) == "active"
    actions = [h["action"] for h in history(store, person.id)]
    assert actions == ["unsubscribe", "resubscribe"]


def _data_link(served) -> str:
    (path,) = sorted((served.outbox / "data-links" / "0").glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=default)
    text = present(message.get_body(("plain",))).get_content()
    return present(re.search(r"(http://\S+/my-data\?token=\S+)", text)).group(1)


def test_download_my_data_and_delete_me(served, store, fixed_now):
    from publisher.store.suppression import suppression_reason

    person = _people(store)[0]
    url = f"{served.url}/preferences"
    csrf = _csrf(httpx.get(f"{url}?token={person.token}").text)
    asked = httpx.post(url, data={"csrf": csrf, "token": person.token, "action": "export"})
    # the answer holds no data: a newsletter's token may be forwarded; the address gets a link
    assert asked.headers["content-type"].startswith("text/html") and "127.0.0.1" not in asked.text
    assert served.wait_for_mail(1) == [person.email]
    data = httpx.get(_data_link(served))
    assert data.headers["content-type"] == "application/json"
    assert data.json()["email"] == person.email and data.json()["topics"] == ["labor"]
    served.clock.advance(hours=1, seconds=1)
    assert httpx.get(_data_link(served)).status_code == 404  # short-lived
    kept = httpx.post(url, data={"csrf": csrf, "token": person.token, "action": "erase"})
    assert "Nothing was changed" in kept.text  # the box was not ticked
    erased = httpx.post(
        url, data={"csrf": csrf, "token": person.token, "action": "erase", "confirm": "yes"}
    )
    assert "Your data is deleted" in erased.text
    assert find_subscriber(store, email=person.email) is None
    assert suppression_reason(store, person.email) == "erased"
    row = present(find_subscriber(store, id=person.id))
    assert row.name is None and row.status == "unsubscribed" and row.token != person.token
    assert httpx.get(f"{url}?token={person.token}").status_code == 404


def test_tokens_never_reach_the_access_log_and_pages_send_no_referrer(served, store, caplog):
    import logging

    person = _people(store)[0]
    with caplog.at_level(logging.INFO, logger="publisher.web.access"):
        page = httpx.get(f"{served.url}/unsubscribe?token={person.token}")
        # the line is written once the answer has gone out: wait for it
        for _ in range(100):
            lines = [r.getMessage() for r in caplog.records if r.name == "publisher.web.access"]
            if any('"GET /unsubscribe" 200' in line for line in lines):
                break
            time.sleep(0.02)
    assert any('"GET /unsubscribe" 200' in line for line in lines)
    assert not any(person.token in line or "token=" in line for line in lines)
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_archive_and_feeds_are_served_with_etag_and_304(project, store):
    (project / "archive" / "weekly").mkdir(parents=True)
    (project / "archive" / "weekly" / "1.html").write_text("<!doctype html><p>One</p>")
    (project / "feeds").mkdir()
    (project / "feeds" / "everything.rss").write_text("<rss/>")
    with serve(project, store) as served:
        page = httpx.get(f"{served.url}/archive/weekly/1.html")
        assert page.status_code == 200 and page.headers["etag"]
        assert page.headers["last-modified"]
        again = httpx.get(
            f"{served.url}/archive/weekly/1.html", headers={"If-None-Match": page.headers["etag"]}
        )
        assert again.status_code == 304
        feed = httpx.get(f"{served.url}/feeds/everything.rss")
        since = {"If-Modified-Since": feed.headers["last-modified"]}
        assert httpx.get(f"{served.url}/feeds/everything.rss", headers=since).status_code == 304
        assert httpx.get(f"{served.url}/archive/../schedules.yaml").status_code == 404


def test_feeds_not_built_yet_are_a_404_not_an_error(project, store):
    with serve(project, store) as served:
        assert httpx.get(f"{served.url}/feeds/everything.rss").status_code == 404
        (project / "feeds").mkdir()
        (project / "feeds" / "everything.rss").write_text("<rss/>")
        assert httpx.get(f"{served.url}/feeds/everything.rss").status_code == 200


def test_an_unexpected_failure_is_a_plain_page_and_changes_nothing(served, store):
    from sqlalchemy import text

    person = _people(store)[0]
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE subscriber_history"))
    answer = httpx.post(
        f"{served.url}/unsubscribe?token={person.token}", data={"List-Unsubscribe": "One-Click"}
    )
    assert answer.status_code == 500 and "Something went wrong" in answer.text
    assert "Traceback" not in answer.text and _status(store, person) == "active"


@pytest.mark.parametrize("path", ["/unsubscribe", "/preferences", "/subscribe", "/confirm"])
def test_a_form_over_the_size_limit_gets_a_413_page_and_changes_nothing(served, store, path):
    person = _people(store)[0]
    url = f"{served.url}{path}?token={person.token}"
    body = {"List-Unsubscribe": "One-Click", "token": person.token, "pad": "x" * 70_000}
    answer = httpx.post(url, data=body)
    assert answer.status_code == 413 and "That request was too large." in answer.text
    assert _status(store, person) == "active"
