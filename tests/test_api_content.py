"""Posts, items, campaigns and editions through the API on the app `publisher serve` runs
(uvicorn in a thread), on SQLite and PostgreSQL; every answer validated against the served
OpenAPI document."""

from __future__ import annotations

from publisher.store import audit, posts
from publisher.store.item_search import item_entry
from tests.admin_support import LEDGER, seed_edition
from tests.api_support import api_server, make_key

POST = {"title": "Nurses win their strike", "body": "After **six weeks**.", "topics": ["labor"]}


def test_posts_are_written_published_and_become_items(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "content:read", "content:write", name="Website CMS")
        made = api.call("POST", "/posts", key, json=POST)
        assert made.status_code == 201, made.text
        post = made.json()
        assert post["status"] == "draft" and post["version"] == 1
        path = f"/posts/{post['id']}"
        saved = api.call("PUT", path, key, json=POST | {"summary": "They won.", "version": 1})
        assert saved.json()["version"] == 2
        stale = api.call("PUT", path, key, json=POST | {"version": 1})
        assert stale.status_code == 409 and "version" in stale.json()["detail"]
        published = api.call("POST", path + "/publish", key, json={"version": 2})
        assert published.json()["status"] == "published"
        items = api.call("GET", "/items", key, params={"source": "newsroom"}).json()["items"]
        assert [i["title"] for i in items] == ["Nurses win their strike"]
        retired = api.call("POST", "/items/retire", key, json={"id": items[0]["id"]})
        assert retired.json()["retired"] is True
        entry = item_entry(store, items[0]["id"])
        assert entry is not None and entry.retired_at is not None
        listed = api.call("GET", "/posts", key, params={"status": "published"}).json()
        assert [p["id"] for p in listed["items"]] == [post["id"]]
        assert api.call("GET", "/posts/999", key).status_code == 404
        assert posts.get_post(store, post["id"]).updated_by == "api key: Website CMS"
        actions = [e.action for e in audit.recent(store) if e.actor == "api key: Website CMS"]
        assert "api: post published" in actions and "api: item retired" in actions


def test_a_content_reader_cannot_write_and_pages_follow_each_other(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        writer = make_key(store, served, "content:write")
        reader = make_key(store, served, "content:read")
        assert api.call("POST", "/posts", reader, json=POST).status_code == 403
        assert api.call("GET", "/posts", writer).status_code == 403
        for n in range(5):
            api.call("POST", "/posts", writer, json=POST | {"title": f"Post {n}"})
        seen, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = api.call("GET", "/posts", reader, params=params).json()
            seen += [p["title"] for p in page["items"]]
            if (cursor := page["next_cursor"]) is None:
                break
        assert seen == [f"Post {n}" for n in range(5)]
        bad = api.call("GET", "/posts", reader, params={"cursor": "bm90LW91cnM"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


def test_campaigns_and_editions_with_counts_and_rates(tmp_path, store):
    edition_id = seed_edition(store)
    with api_server(tmp_path, store) as (served, api):
        key = make_key(store, served, "campaigns:read")
        campaigns = api.call("GET", "/campaigns", key).json()["items"]
        assert [(c["name"], c["paused"]) for c in campaigns] == [("weekly", False)]
        page = api.call("GET", "/editions", key, params={"campaign": "weekly"}).json()
        assert [e["number"] for e in page["items"]] == [1] and page["next_cursor"] is None
        edition = api.call("GET", f"/editions/{edition_id}", key).json()
        assert edition["counts"] == {k: v for k, v in LEDGER.items() if v}
        assert edition["status"] == "sent" and set(edition["rates"]) >= {"open", "click"}
        unknown = api.call("GET", "/editions", key, params={"campaign": "daily"})
        assert unknown.status_code == 422
        assert api.call("GET", "/editions/999", key).status_code == 404
        assert api.call("GET", "/subscribers", key).status_code == 403
