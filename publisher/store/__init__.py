"""The store: SQLite (WAL) by default, PostgreSQL accepted. Schema via Alembic only."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from publisher.errors import PublisherError, StoreError
from publisher.items import Item
from publisher.sources.base import SourceMemory
from publisher.store import dialect
from publisher.store.models import ItemRow, PublishStateRow, SourceStateRow
from publisher.support.slug import slugify

MIGRATIONS = Path(__file__).parent / "migrations"
LOG = logging.getLogger(__name__)
T = TypeVar("T")


class ItemNotFound(PublisherError):
    """`publisher items retire ID` named an item the store does not have."""


@dataclass
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0  # collected again, but retired: left as it is

    @property
    def written(self) -> int:
        return self.inserted + self.updated


def create_store_engine(url: str, *, pool_size: int | None = None) -> Engine:
    """An engine for `url` (PUBLISHER_DATABASE_URL or database_url). Anything wrong with the
    URL is one StoreError line with the password hidden, never a traceback. `pool_size`:
    the connections the process's threads use at once (see publisher.store.dialect)."""
    try:
        parsed = dialect.driver_url(make_url(url))
        database = parsed.database
        if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
            _create_private(Path(database))
        options = dialect.engine_options(parsed.get_backend_name(), pool_size)
        engine = create_engine(parsed, future=True, **options)
    except (SQLAlchemyError, ImportError, ValueError, TypeError, OSError) as exc:
        raise StoreError(f"cannot open store {_redact(url)}: {_one_line(exc, url)}") from None
    dialect.on_connect(engine)
    return engine


_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (it holds subscribers' addresses
    and tokens) before SQLite opens it; SQLite gives its -wal and -shm files the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot create the store file {path}: {exc.strerror}") from None


def _redact(url: str) -> str:
    """Never print a database password (even of a URL SQLAlchemy cannot parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL: hide what looks like a password
        return _PASSWORD.sub(r"\1***@", url)


def _one_line(exc: BaseException, url: str) -> str:
    """A driver's message on one line, without the URL's password if it quotes it."""
    text = " ".join(str(exc).split()).replace(url, _redact(url))
    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001
        password = None
    return text.replace(str(password), "***") if password else text


class Store:
    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        self.url = url
        self.engine = create_store_engine(url, pool_size=pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def single_writer(self) -> bool:
        """One writer at a time for the whole database (SQLite)."""
        return dialect.single_writer(self.engine)

    def retrying(
        self,
        action: Callable[[], T],
        *,
        what: str,
        sleep: Callable[[float], None] = time.sleep,
        patience: float = 600.0,
    ) -> T:
        """Run one store transaction, again while the database is unreachable (a restart, a
        network cut), logged on every try; after about `patience` seconds the last error is
        raised (the CLI says it in one line). Only for transactions that are safe to repeat:
        a commit whose answer was lost may have happened, so the caller's statements must
        find their work done."""
        delay, waited = 0.5, 0.0
        while True:
            try:
                return action()
            except SQLAlchemyError as exc:
                if not dialect.lost_connection(exc) or waited >= patience:
                    raise
                reason = _one_line(getattr(exc, "orig", None) or exc, self.url).split(" [")[0]
                LOG.warning(
                    "database connection lost during %s (%s); retrying in %.1f s",
                    what, reason[:200], delay,
                )  # fmt: skip
                sleep(delay)
                waited += delay
                delay = min(delay * 2, 10.0)

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest Alembic revision."""
        # Imported here: Alembic is a fifth of the CLI's start-up, and --help, `check` and
        # configuration errors never open the store.
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:  # unreachable server, not a database file, no rights
            reason = _one_line(getattr(exc, "orig", None) or exc, self.url)
            raise StoreError(f"cannot migrate store {_redact(self.url)}: {reason}") from None

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    # --- items ------------------------------------------------------------------------

    def upsert_items(self, items: Iterable[Item], *, now: datetime) -> UpsertResult:
        """Insert new items, update edited ones (by content hash), leave the rest untouched."""
        result = UpsertResult()
        items = list(items)
        if not items:
            return result
        with self.session() as session:
            ids = [item.id for item in items]
            existing: dict[str, ItemRow] = {}
            for chunk_start in range(0, len(ids), 500):
                chunk = ids[chunk_start : chunk_start + 500]
                rows = session.scalars(select(ItemRow).where(ItemRow.id.in_(chunk)))
                existing.update({row.id: row for row in rows})
            for item in items:
                digest = item.content_hash
                row = existing.get(item.id)
                if row is None:
                    row = ItemRow(id=item.id, first_seen=now)
                    _fill_row(row, item, digest, now)
                    session.add(row)
                    existing[item.id] = row
                    result.inserted += 1
                elif row.retired_at is not None:
                    result.retired += 1  # retired for good: collecting it again changes nothing
                elif row.content_hash != digest:
                    _fill_row(row, item, digest, now)
                    result.updated += 1
                else:
                    row.origin = item.origin  # a moved file keeps its item
                    result.unchanged += 1
        return result

    def retire_item(self, item_id: str, *, now: datetime, reason: str = "retired by hand") -> Item:
        """Retire one item: it never appears in an edition or a feed again."""
        with self.session() as session:
            row = session.get(ItemRow, item_id)
            if row is None:
                raise ItemNotFound(f"no item '{item_id}' in the store; `publisher items` lists ids")
            if row.retired_at is None:
                row.retired_at, row.retired_reason = now, reason
            return row_to_item(row)

    def retire_missing(self, source: str, present: set[str], *, now: datetime) -> list[str]:
        """Retire the items of `source` whose origin (a file) is no longer among `present`;
        returns their ids. Items without an origin are never retired this way."""
        query = (
            select(ItemRow)
            .where(ItemRow.source == source)
            .where(ItemRow.origin.is_not(None))
            .where(ItemRow.retired_at.is_(None))
        )
        retired = []
        with self.session() as session:
            for row in session.scalars(query):
                if row.origin not in present:
                    row.retired_at = now
                    row.retired_reason = f"its file {row.origin} was deleted"
                    retired.append(row.id)
        return retired

    def list_items(
        self,
        *,
        topic: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Item]:
        """Items newest first (never a retired one), optionally filtered; `topic` goes
        through the one slug function, so "Workers Rights" finds `workers-rights`."""
        topic = slugify(topic) if topic else None
        query = (
            select(ItemRow)
            .where(ItemRow.retired_at.is_(None))
            .order_by(ItemRow.published.desc(), ItemRow.id)
        )
        if kind:
            query = query.where(ItemRow.kind == kind)
        if since:
            query = query.where(ItemRow.published >= since)
        with self.session() as session:
            rows = session.scalars(query)
            out = []
            for row in rows:
                if topic and topic not in (row.topics or []):
                    continue
                out.append(row_to_item(row))
                if limit and len(out) >= limit:
                    break
            return out

    # --- publishers' state --------------------------------------------------------------

    def load_publish_state(self, name: str) -> dict:
        with self.session() as session:
            row = session.get(PublishStateRow, name)
            return dict(row.data) if row is not None and isinstance(row.data, dict) else {}

    def save_publish_state(self, name: str, data: dict, *, now: datetime) -> None:
        with self.session() as session:
            row = session.get(PublishStateRow, name) or PublishStateRow(name=name)
            if row.data != data:
                row.data, row.updated_at = data, now
                session.add(row)

    # --- source state -----------------------------------------------------------------

    def get_source_memory(self, name: str) -> SourceMemory:
        with self.session() as session:
            row = session.get(SourceStateRow, name)
            if row is None:
                return SourceMemory()
            return SourceMemory(
                etag=row.etag,
                last_modified=row.last_modified,
                url=row.url,
                disabled=row.disabled,
                disabled_reason=row.disabled_reason,
            )

    def save_source_memory(self, name: str, state: SourceMemory, *, now: datetime) -> None:
        with self.session() as session:
            row = session.get(SourceStateRow, name) or SourceStateRow(name=name)
            row.etag = state.etag
            row.last_modified = state.last_modified
            row.url = state.url
            row.disabled = state.disabled
            row.disabled_reason = state.disabled_reason
            row.checked_at = now
            session.add(row)

    def record_source_run(
        self, name: str, problems: list[str], *, failed: bool, now: datetime
    ) -> None:
        """dashboard.record_source_run as a method, so the Store is an ItemSink."""
        from publisher.store import dashboard  # it imports this module

        dashboard.record_source_run(self, name, problems, failed=failed, now=now)


def _fill_row(row: ItemRow, item: Item, digest: str, now: datetime) -> None:
    row.source = item.source
    row.title = item.title
    row.url = item.url
    row.summary = item.summary
    row.body_html = item.body_html
    row.author = item.author
    row.published = item.published
    row.updated = item.updated
    row.kind = item.kind
    row.topics = list(item.topics)
    row.image = item.image
    row.image_alt = item.image_alt
    row.content_hash = digest
    row.last_changed = now
    row.origin = item.origin


def row_to_item(row: ItemRow) -> Item:
    return Item(
        id=row.id,
        title=row.title,
        url=row.url,
        published=row.published,
        source=row.source,
        kind=row.kind,
        summary=row.summary,
        body_html=row.body_html,
        author=row.author,
        updated=row.updated,
        topics=tuple(row.topics or ()),
        image=row.image,
        image_alt=row.image_alt,
        first_seen=row.first_seen,
        origin=row.origin,
    )


def open_store(url: str, *, pool_size: int | None = None) -> Store:
    """Open and migrate the store at url."""
    store = Store(url, pool_size=pool_size)
    store.migrate()
    return store
