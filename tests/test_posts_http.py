"""The post editor over plain HTTP against a real server: a viewer is refused every write
(with a valid viewer CSRF token), the preview endpoint answers sanitised HTML, a stale
save is refused with the text kept, and a save after the session ended keeps the text."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from publisher.store import audit, posts
from publisher.store.items import list_items
from publisher.store.staff_access import SESSION_LIFETIME
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts, csrf_of, log_in
from tests.conftest import FIXED_NOW
from tests.web_support import serve


@pytest.fixture
def admin_server(project, store):
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        yield served


def client(served) -> httpx.Client:
    return httpx.Client(base_url=served.url, follow_redirects=True, timeout=30)


def form(csrf: str, **values: str) -> dict[str, str]:
    base = {
        "csrf": csrf, "title": "Nurses win their strike", "body": "The nurses *won*.",
        "kind": "news", "topics": "labor", "date": "2026-11-25T06:00", "author": "Edu",
    }  # fmt: skip
    return base | values


def a_post(store) -> posts.Post:
    fields = posts.PostFields(title="Rent board", body="Tuesday.", date=FIXED_NOW)
    return posts.create_post(store, fields, status="published", by=STAFF["owner"], now=FIXED_NOW)


def test_a_viewer_reads_and_is_refused_every_write(admin_server, store):
    post = a_post(store)
    revision = posts.post_revisions(store, post.id)[0]
    with client(admin_server) as http:
        log_in(http, STAFF["viewer"])
        listing = http.get("/admin/posts")
        assert listing.status_code == 200 and "Rent board" in listing.text
        assert "Write a post" not in listing.text
        view = http.get(f"/admin/posts/{post.id}")
        assert view.status_code == 200 and "<p>Tuesday.</p>" in view.text
        assert 'name="title"' not in view.text  # read-only: no form
        assert http.get(f"/admin/posts/{post.id}/revisions").status_code == 200
        assert http.get("/admin/posts/new").status_code == 403
        csrf = csrf_of(listing.text)  # a valid token of the viewer's session
        writes = {
            "/admin/posts/new": form(csrf, do="publish"),
            f"/admin/posts/{post.id}": form(csrf, do="publish", version=str(post.version)),
            "/admin/posts/preview": {"csrf": csrf, "body": "x"},
            f"/admin/posts/{post.id}/revisions/{revision.id}/restore": {
                "csrf": csrf, "version": str(post.version),
            },
        }  # fmt: skip
        for path, data in writes.items():
            answer = http.post(path, data=data)
            assert answer.status_code == 403, path
            assert "may not do this" in answer.text
    assert [p.version for p in posts.list_posts(store)] == [1]
    assert len(posts.list_posts(store)) == 1


def test_editor_writes_previews_and_is_refused_a_stale_save(admin_server, store):
    with client(admin_server) as http:
        log_in(http, STAFF["editor"])
        editor = http.get("/admin/posts/new")
        policy = editor.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "connect-src 'self'" in policy
        assert "unsafe-inline" not in policy and 'admin/posts/editor.js" defer' in editor.text
        script = http.get("/admin/posts/editor.js")
        assert script.headers["content-type"].startswith("text/javascript")
        csrf = csrf_of(editor.text)
        fragment = http.post(
            "/admin/posts/preview", data={"csrf": csrf, "body": "# Hi\n<script>x()</script>"}
        )
        assert fragment.text == "<h1>Hi</h1>\n"
        preview = http.post("/admin/posts/new", data=form(csrf, do="preview"))
        assert "<p>The nurses <em>won</em>.</p>" in preview.text
        assert posts.list_posts(store) == []  # a preview saves nothing
        missing_alt = http.post(
            "/admin/posts/new", data=form(csrf, do="publish", image="https://example.org/a.jpg")
        )
        assert missing_alt.status_code == 400 and "Describe the image" in missing_alt.text
        saved = http.post("/admin/posts/new", data=form(csrf, do="publish"))
        assert "Published" in saved.text
        (post,) = posts.list_posts(store)
        assert post.status == "published" and post.fields.date == FIXED_NOW - timedelta(hours=1)
        (item,) = list_items(store)
        assert item.title == "Nurses win their strike"  # at once, no collect
        # someone else saves version 2; this editor's save from version 1 is refused
        posts.save_post(
            store, post.id, replace(post.fields, body="Their words."), version=1,
            by=STAFF["owner"], now=FIXED_NOW,
        )  # fmt: skip
        stale = http.post(
            f"/admin/posts/{post.id}", data=form(csrf, do="publish", body="My words.", version="1")
        )
        assert stale.status_code == 409
        assert "someone else changed this post" in stale.text
        assert "My words." in stale.text and "<ins>+Their words.</ins>" in stale.text
        assert 'name="version" value="2"' in stale.text
        assert posts.get_post(store, post.id).fields.body == "Their words."
    actions = [row.action for row in audit.recent(store, limit=10)]
    assert actions.count("post-save") == 1


def test_a_save_after_the_session_ended_keeps_the_text(admin_server, store):
    post = a_post(store)
    with client(admin_server) as http:
        log_in(http, STAFF["editor"])
        csrf = csrf_of(http.get(f"/admin/posts/{post.id}").text)
        admin_server.clock.advance(seconds=SESSION_LIFETIME.total_seconds() + 60)
        data = form(csrf, do="publish", body="Typed while away.", version="1", post=str(post.id))
        held = http.post(f"/admin/posts/{post.id}", data=data)
        assert held.status_code == 401
        assert "Typed while away." in held.text and "Log in again" in held.text
        assert posts.get_post(store, post.id).version == 1  # nothing written
        again = http.post("/admin/posts/held", data={**data, "csrf": ""})  # not logged in yet
        assert again.status_code == 401 and "Typed while away." in again.text
        log_in(http, STAFF["editor"])
        back = http.post("/admin/posts/held", data={**data, "csrf": ""})
        assert back.status_code == 200 and "Typed while away." in back.text
        assert "Nothing is saved yet" in back.text
        saved = http.post(f"/admin/posts/{post.id}", data={**data, "csrf": csrf_of(back.text)})
        assert "Published" in saved.text
    assert posts.get_post(store, post.id).fields.body == "Typed while away."
    with httpx.Client(base_url=admin_server.url, timeout=30) as anonymous:
        answer = anonymous.post(f"/admin/posts/{post.id}", data=data)
        assert answer.status_code == 303  # no staff cookie at all: to the log-in page


def test_a_future_date_schedules_the_post(admin_server, store):
    with client(admin_server) as http:
        log_in(http, STAFF["editor"])
        csrf = csrf_of(http.get("/admin/posts/new").text)
        data = form(csrf, do="preview", date="2026-11-27T09:00")  # New York time
        assert ">Schedule</button>" in http.post("/admin/posts/new", data=data).text
        saved = http.post("/admin/posts/new", data={**data, "do": "publish"})
        assert "Scheduled: it goes live at its date." in saved.text
        assert ">Schedule</button>" in saved.text and ">Unpublish</button>" in saved.text
    (post,) = posts.list_posts(store)
    assert post.status == "scheduled"
    assert post.fields.date == FIXED_NOW.replace(day=27, hour=14)  # 09:00 EST is 14:00 UTC
    assert list_items(store) == []


def test_a_body_over_the_limit_is_refused_and_nothing_stored(admin_server, store):
    with client(admin_server) as http:
        log_in(http, STAFF["editor"])
        csrf = csrf_of(http.get("/admin/posts/new").text)
        huge = http.post("/admin/posts/new", data=form(csrf, do="publish", body="x" * 1_100_000))
        assert huge.status_code == 413
        hostile = form(csrf, do="publish", title="<b>Bold</b> & co", body="<iframe src=x></iframe>")
        page = http.post("/admin/posts/new", data=hostile).text
        assert "&lt;b&gt;Bold&lt;/b&gt; &amp; co" in page and "<b>Bold</b>" not in page
    (post,) = posts.list_posts(store)
    assert post.fields.title == "<b>Bold</b> & co"
    (item,) = list_items(store)
    assert item.title == "<b>Bold</b> & co" and "iframe" not in item.body_html
