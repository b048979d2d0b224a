"""Posts and items through the API, through the same functions as /admin: a post is saved
by store/posts.py (a stale version is a 409, as a stale save is in the editor) and reaches
the items at once (pipeline.publish_posts); an item is retired by store/items.py."""

from __future__ import annotations

from datetime import UTC, datetime

from publisher.pipeline import publish_posts
from publisher.store import Store, audit, item_search, posts
from publisher.store.group import one_write
from publisher.web.api import models
from publisher.web.api.framework import Call, Endpoint
from publisher.web.api.problems import Problem


def _out(post: posts.Post) -> models.Post:
    f = post.fields
    return models.Post(
        id=post.id, status=post.status, version=post.version, title=f.title,  # type: ignore[arg-type]
        body=f.body, summary=f.summary, kind=f.kind, topics=list(f.topics), date=f.date,
        author=f.author, image=f.image, image_alt=f.image_alt, external_url=f.external_url,
        slug=f.slug, updated_by=post.updated_by, updated_at=post.updated_at,
    )  # fmt: skip


def _fields(call: Call, body: models.PostIn) -> posts.PostFields:
    known = {topic.slug for topic in call.w.topics}
    unknown = sorted(set(body.topics) - known)
    if unknown:
        detail = f"Unknown topics: {', '.join(unknown)}."
        errors = [{"location": "body", "field": "topics", "detail": detail}]
        raise Problem(422, "invalid", detail, errors=errors)
    # a date without an offset is UTC
    date = (
        (body.date if body.date.tzinfo else body.date.replace(tzinfo=UTC))
        if body.date
        else call.now
    )
    return posts.PostFields(
        title=body.title.strip(), body=body.body, summary=body.summary, kind=body.kind,
        topics=tuple(sorted(set(body.topics))), date=date, author=body.author,
        image=body.image or None, image_alt=body.image_alt or None,
        external_url=body.external_url or None, slug=body.slug,
    )  # fmt: skip


def _audit(call: Call, store: Store, post: posts.Post, action: str) -> None:
    """In the one_write of the save it records (both stored, or neither)."""
    target = f"post {post.id} v{post.version}: {post.fields.title}"[:300]
    audit.record(store, call.actor, action, target, ip=call.ip, now=call.now)


def _saved(call: Call, post: posts.Post) -> models.Post:
    """Every save reaches the items (and the public pages) at once."""
    publish_posts(call.w.config, call.w.store, now=call.now, pages=True)
    return _out(posts.get_post(call.w.store, post.id))


def create_post(call: Call) -> models.Post:
    fields = _fields(call, call.body)
    with one_write(call.w.store) as store:
        post = posts.create_post(store, fields, by=call.actor, now=call.now)
        _audit(call, store, post, "api: post created")
    return _saved(call, post)


def read_post(call: Call) -> models.Post:
    return _out(posts.get_post(call.w.store, call.params["id"]))


def list_posts(call: Call) -> models.PostPage:
    """By id: a post written meanwhile comes last, so nobody is skipped or repeated."""
    query: models.PostQuery = call.query
    after = models.decode_cursor("posts", query.cursor)
    found = posts.posts_after(call.w.store, after, query.limit + 1, status=query.status)
    page = found[: query.limit]
    more = len(found) > query.limit
    cursor = models.encode_cursor("posts", page[-1].id) if more else None
    return models.PostPage(items=[_out(p) for p in page], next_cursor=cursor)


def change_post(call: Call) -> models.Post:
    body: models.PostChange = call.body
    fields = _fields(call, body)
    with one_write(call.w.store) as store:
        post = posts.save_post(
            store, call.params["id"], fields, version=body.version, by=call.actor, now=call.now
        )
        _audit(call, store, post, "api: post saved")
    return _saved(call, post)


def _status(call: Call, status: str) -> models.Post:
    body: models.PostVersion = call.body
    current = posts.get_post(call.w.store, call.params["id"])
    if status == "published" and current.fields.date > call.now:
        status = "scheduled"  # goes live at its date, as the editor's Publish does
    with one_write(call.w.store) as store:
        post = posts.set_post_status(
            store, current.id, status, version=body.version, by=call.actor, now=call.now
        )
        _audit(call, store, post, f"api: post {status}")
    return _saved(call, post)


def publish_post(call: Call) -> models.Post:
    return _status(call, "published")


def unpublish_post(call: Call) -> models.Post:
    return _status(call, "draft")


def retire_post(call: Call) -> models.Post:
    return _status(call, "retired")


def _item(entry: item_search.ItemEntry) -> models.Item:
    item = entry.item
    return models.Item(
        id=item.id, source=item.source, title=item.title, url=item.url,
        summary=item.summary or None, kind=item.kind, topics=list(item.topics),
        published=item.published, retired=entry.retired_at is not None,
    )  # fmt: skip


def _item_after(cursor: str | None) -> item_search.Cursor | None:
    if not cursor:
        return None
    stamp, _, item_id = models.cursor_text("items", cursor).partition("|")
    try:
        return item_search.Cursor(datetime.fromisoformat(stamp), item_id)
    except ValueError:
        raise models.bad_cursor() from None


def list_items(call: Call) -> models.ItemPage:
    """Newest first, keyset on (published, id) as the items page of /admin."""
    query: models.ItemQuery = call.query
    search = item_search.ItemQuery(
        text=query.q or "", source=query.source, topic=query.topic, status=query.status,
        after=_item_after(query.cursor), limit=query.limit,
    )  # fmt: skip
    found = item_search.search_items(call.w.store, search)
    cursor = None
    if found.next is not None:
        position = f"{found.next.published.isoformat()}|{found.next.id}"
        cursor = models.encode_cursor("items", position)
    return models.ItemPage(items=[_item(e) for e in found.entries], next_cursor=cursor)


def retire_item(call: Call) -> models.Item:
    body: models.ItemRetire = call.body
    from publisher.store.items import retire_item as retire

    with one_write(call.w.store) as store:
        retire(store, body.id, now=call.now, reason=body.reason)
        audit.record(
            store, call.actor, "api: item retired", body.id[:300], ip=call.ip, now=call.now
        )
    entry = item_search.item_entry(call.w.store, body.id)
    if entry is None:
        raise Problem(404, "not-found", "No item with this id.")
    return _item(entry)


READ, WRITE, POSTS = "content:read", "content:write", "posts"
ENDPOINTS = [
    Endpoint("POST", "/posts", WRITE, create_post, "Write a post (a draft)", POSTS,
             models.Post, body=models.PostIn, status=201),
    Endpoint("GET", "/posts", READ, list_posts, "List posts", POSTS, models.PostPage,
             query=models.PostQuery),
    Endpoint("GET", "/posts/{id}", READ, read_post, "One post", POSTS, models.Post),
    Endpoint("PUT", "/posts/{id}", WRITE, change_post, "Save a post over its version", POSTS,
             models.Post, body=models.PostChange),
    Endpoint("POST", "/posts/{id}/publish", WRITE, publish_post,
             "Publish a post (scheduled when its date is ahead)", POSTS, models.Post,
             body=models.PostVersion),
    Endpoint("POST", "/posts/{id}/unpublish", WRITE, unpublish_post, "Make a post a draft again",
             POSTS, models.Post, body=models.PostVersion),
    Endpoint("POST", "/posts/{id}/retire", WRITE, retire_post, "Retire a post", POSTS,
             models.Post, body=models.PostVersion),
    Endpoint("GET", "/items", READ, list_items, "List or search collected items", "items",
             models.ItemPage, query=models.ItemQuery),
    Endpoint("POST", "/items/retire", WRITE, retire_item,
             "Retire an item: it never appears in an edition or feed again", "items",
             models.Item, body=models.ItemRetire),
]  # fmt: skip
