"""Posts written in /admin (issue 20) and their revisions. Every save names the version the
editor started from: a stale one is refused with the current post (optimistic locking), and
every save keeps a revision with the full values it saved. Functions take the store first
and return plain dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from publisher.errors import PublisherError
from publisher.items import NEWSROOM
from publisher.store import Store, outbox
from publisher.store.dialect import rowcount
from publisher.store.models import ItemRow, PostRevisionRow, PostRow
from publisher.support.slug import slugify

__all__ = [
    "LIVE",
    "STATUSES",
    "Post",
    "PostConflict",
    "PostFields",
    "PostInvalid",
    "PostNotFound",
    "PostRevision",
    "create_post",
    "get_post",
    "list_posts",
    "mark_due_published",
    "newsroom_items",
    "post_revisions",
    "posts_after",
    "restore_revision",
    "save_post",
    "set_post_status",
]

STATUSES = ("draft", "scheduled", "published", "retired")
LIVE = ("scheduled", "published")  # an item once its date has come


class PostNotFound(PublisherError):
    """No post (or revision) with that id."""


class PostInvalid(PublisherError):
    """Values a post cannot hold (an image without its description, an unknown status)."""


@dataclass(frozen=True)
class PostFields:
    """What an editor writes: every value a save (and a revision) holds but the status."""

    title: str
    body: str = ""
    summary: str = ""
    kind: str = "article"
    topics: tuple[str, ...] = ()
    date: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    author: str = ""
    image: str | None = None
    image_alt: str | None = None
    external_url: str | None = None
    slug: str = ""  # "": made from the title


@dataclass(frozen=True)
class Post:
    id: int
    fields: PostFields
    status: str
    version: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime

    @property
    def slug(self) -> str:
        return self.fields.slug


@dataclass(frozen=True)
class PostRevision:
    id: int
    post_id: int
    version: int
    saved_by: str
    saved_at: datetime
    status: str
    fields: PostFields
    note: str = ""


class PostConflict(PublisherError):
    """A save from a stale version: someone else saved in between; `current` is theirs."""

    def __init__(self, current: Post, started_from: int) -> None:
        super().__init__(
            f"post {current.id} was saved by {current.updated_by} (version {current.version}) "
            f"after you opened version {started_from}"
        )
        self.current = current
        self.started_from = started_from


def utc(moment: datetime) -> datetime:
    """A naive moment is UTC; an aware one is converted to UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def create_post(
    store: Store, fields: PostFields, *, status: str = "draft", by: str, now: datetime
) -> Post:
    """A new post (version 1) and its first revision."""
    _check(fields, status)
    with store.session() as session:
        row = PostRow(version=1, created_by=by, created_at=now)
        _fill(session, row, fields, status, by, now)
        session.add(row)
        session.flush()
        _revision(session, row, by, now, "created")
        if status == "published":
            _published(session, row, now)
        return _post(row)


def save_post(
    store: Store,
    post_id: int,
    fields: PostFields,
    *,
    version: int,
    status: str | None = None,
    by: str,
    now: datetime,
    note: str = "",
) -> Post:
    """Save `fields` (and `status`, if given) over version `version`; raises PostConflict
    when the post has moved on since, PostNotFound when there is no such post."""
    with store.session() as session:
        # compare and set in one statement: of two saves from one version, one wins (on
        # SQLite too, where a read takes no lock)
        claim = update(PostRow).where(PostRow.id == post_id, PostRow.version == version)
        if rowcount(session.execute(claim.values(version=version + 1))) == 0:
            raise PostConflict(_post(_row(session, post_id)), version)
        row = _row(session, post_id)
        was, status = row.status, status or row.status
        _check(fields, status)
        _fill(session, row, fields, status, by, now)
        _revision(session, row, by, now, note)
        if status == "published" and was != "published":
            _published(session, row, now)
        return _post(row)


def set_post_status(
    store: Store, post_id: int, status: str, *, version: int, by: str, now: datetime
) -> Post:
    """Only the status changes (a new version and revision all the same)."""
    current = get_post(store, post_id)
    return save_post(
        store, post_id, current.fields, version=version, status=status, by=by, now=now,
        note=f"status: {status}",
    )  # fmt: skip


def get_post(store: Store, post_id: int) -> Post:
    with store.session() as session:
        return _post(_row(session, post_id))


def list_posts(store: Store, *, status: str | None = None) -> list[Post]:
    """Every post (or those of one status), newest date first."""
    query = select(PostRow).order_by(PostRow.date.desc(), PostRow.id.desc())
    if status:
        query = query.where(PostRow.status == status)
    with store.session() as session:
        return [_post(row) for row in session.scalars(query)]


def posts_after(store: Store, after: int, limit: int, *, status: str | None = None) -> list[Post]:
    """Up to `limit` posts (or of one status) with an id above `after`, by id: a page of
    the API's list, where a post written meanwhile comes last (nobody skipped or repeated)."""
    query = select(PostRow).where(PostRow.id > after).order_by(PostRow.id).limit(limit)
    if status:
        query = query.where(PostRow.status == status)
    with store.session() as session:
        return [_post(row) for row in session.scalars(query)]


def post_revisions(store: Store, post_id: int) -> list[PostRevision]:
    """A post's revisions, newest first."""
    query = (
        select(PostRevisionRow)
        .where(PostRevisionRow.post_id == post_id)
        .order_by(PostRevisionRow.version.desc(), PostRevisionRow.id.desc())
    )
    with store.session() as session:
        _row(session, post_id)
        return [_revision_of(row) for row in session.scalars(query)]


def restore_revision(
    store: Store, post_id: int, revision_id: int, *, version: int, by: str, now: datetime
) -> Post:
    """A new save whose values (and status) are those of an earlier revision."""
    with store.session() as session:
        found = session.get(PostRevisionRow, revision_id)
        if found is None or found.post_id != post_id:
            raise PostNotFound(f"post {post_id} has no revision {revision_id}")
        old = _revision_of(found)
    return save_post(
        store, post_id, old.fields, version=version, status=old.status, by=by, now=now,
        note=f"restored version {old.version}",
    )  # fmt: skip


def mark_due_published(store: Store, *, now: datetime) -> list[int]:
    """Scheduled posts whose date has come are published (not a save: no new version, so
    an editor's open form stays current); their ids."""
    query = select(PostRow).where(PostRow.status == "scheduled", PostRow.date <= now)
    with store.session() as session:
        rows = list(session.scalars(query))
        for row in rows:
            row.status = "published"
            _published(session, row, now)
        return [row.id for row in rows]


def _published(session: Any, row: PostRow, now: datetime) -> None:
    """post.published, in the transaction that publishes it (publisher.store.outbox)."""
    data = {
        "post": {
            "id": row.id,
            "title": row.title,
            "slug": row.slug,
            "kind": row.kind,
            "date": utc(row.date).isoformat().replace("+00:00", "Z"),
            "topics": list(row.topics or ()),
        }
    }
    session.flush()
    outbox.enqueue(session, "post.published", data, now, ordering_key=f"post:{row.id}")


def newsroom_items(store: Store) -> dict[str, str | None]:
    """The stored items of the newsroom source: id -> why it is retired (None: live)."""
    query = select(ItemRow.id, ItemRow.retired_at, ItemRow.retired_reason).where(
        ItemRow.source == NEWSROOM
    )
    with store.session() as session:
        return {
            item_id: (reason or "retired") if retired_at else None
            for item_id, retired_at, reason in session.execute(query)
        }


# --- inside the store ---------------------------------------------------------------------


def _check(fields: PostFields, status: str) -> None:
    if status not in STATUSES:
        raise PostInvalid(f"status '{status}' is not one of {', '.join(STATUSES)}")
    if not fields.title.strip():
        raise PostInvalid("a post needs a title")
    if fields.image and not (fields.image_alt or "").strip():
        raise PostInvalid("an image needs its description (alt text)")


def _row(session: Any, post_id: int) -> PostRow:
    row = session.scalars(select(PostRow).where(PostRow.id == post_id)).first()
    if row is None:
        raise PostNotFound(f"no post {post_id}")
    return row


def _unique_slug(session: Any, wanted: str, post_id: int | None) -> str:
    """The wanted slug, or it with -2, -3… when another post has it."""
    base = (slugify(wanted) or "post")[:110]
    taken = set(
        session.scalars(
            select(PostRow.slug).where(PostRow.slug.like(f"{base}%"), PostRow.id != (post_id or 0))
        )
    )
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def _fill(
    session: Any, row: PostRow, fields: PostFields, status: str, by: str, now: datetime
) -> None:
    row.slug = _unique_slug(session, fields.slug or fields.title, row.id)
    row.title, row.summary, row.body = fields.title, fields.summary, fields.body
    row.kind, row.topics, row.date = fields.kind, list(fields.topics), utc(fields.date)
    row.author, row.image, row.image_alt = fields.author, fields.image, fields.image_alt
    row.external_url, row.status = fields.external_url, status
    row.updated_by, row.updated_at = by, now


def _revision(session: Any, row: PostRow, by: str, now: datetime, note: str) -> None:
    values = asdict(_fields(row)) | {"status": row.status}
    values["date"], values["topics"] = row.date.isoformat(), list(row.topics or ())
    session.add(
        PostRevisionRow(
            post_id=row.id, version=row.version, saved_by=by, saved_at=now, note=note,
            values=values,
        )
    )  # fmt: skip


def _fields(row: PostRow) -> PostFields:
    return PostFields(
        title=row.title, body=row.body, summary=row.summary, kind=row.kind,
        topics=tuple(row.topics or ()), date=utc(row.date), author=row.author,
        image=row.image, image_alt=row.image_alt, external_url=row.external_url, slug=row.slug,
    )  # fmt: skip


def _post(row: PostRow) -> Post:
    return Post(
        id=row.id, fields=_fields(row), status=row.status, version=row.version,
        created_by=row.created_by, created_at=row.created_at, updated_by=row.updated_by,
        updated_at=row.updated_at,
    )  # fmt: skip


def _revision_of(row: PostRevisionRow) -> PostRevision:
    values = dict(row.values)
    status = values.pop("status", "draft")
    values["date"] = utc(datetime.fromisoformat(values["date"]))
    values["topics"] = tuple(values.get("topics") or ())
    fields = replace(PostFields(title=""), **values)
    return PostRevision(
        id=row.id, post_id=row.post_id, version=row.version, saved_by=row.saved_by,
        saved_at=row.saved_at, status=status, fields=fields, note=row.note,
    )  # fmt: skip
