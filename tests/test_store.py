"""The store itself: SQLite in WAL mode, schema only through Alembic, aware UTC times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import StatementError

from publisher.errors import StoreError
from publisher.items import Item
from publisher.store import open_store
from publisher.store.items import list_items, upsert_items


def test_sqlite_store_uses_wal_and_is_at_the_newest_migration(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert revision == "0033"
    tables = set(inspect(store.engine).get_table_names())
    assert {"items", "editions", "subscribers", "deliveries", "source_state"} <= tables
    store.migrate()  # a second upgrade is a no-op, not an error
    store.close()


def test_times_come_back_aware_in_utc(store, fixed_now):
    local = fixed_now.astimezone(timezone(timedelta(hours=-5)))
    item = Item(id="t:1", title="T", url="https://e.org/1", published=local, source="t")
    upsert_items(store, [item], now=fixed_now)
    [back] = list_items(store)
    assert back.published == fixed_now and back.published.tzinfo is not None
    assert back.published.utcoffset() == timedelta(0)


def test_naive_times_are_refused(store, fixed_now):
    item = Item(
        id="t:1", title="T", url="https://e.org/1", published=datetime(2026, 1, 1), source="t"
    )
    with pytest.raises(StatementError, match="timezone-aware"):
        upsert_items(store, [item], now=fixed_now)


def test_an_unreachable_database_is_a_clear_error_without_the_password():
    with pytest.raises(StoreError) as info:
        open_store("postgresql://staff:s3cret@127.0.0.1:9/publisher?connect_timeout=2")
    assert "s3cret" not in str(info.value)
    assert "cannot migrate store" in str(info.value)


def test_the_ledger_keeps_room_for_updates_and_no_row_locks_on_postgresql(store):
    """The ledger's storage (publisher.store.dialect): on PostgreSQL pages keep room for HOT
    updates and no foreign key checks lock the edition and subscriber of every row written;
    SQLite keeps its (lock-free) foreign keys. Either way no single-column index on status
    or batch is left to update at every status change."""
    inspector = inspect(store.engine)
    keys = {tuple(k["constrained_columns"]) for k in inspector.get_foreign_keys("deliveries")}
    indexes = {tuple(i["column_names"]) for i in inspector.get_indexes("deliveries")}
    assert ("status",) not in indexes and ("batch",) not in indexes
    assert ("edition_id", "batch") in indexes
    if store.engine.dialect.name == "postgresql":
        assert keys == set()
        with store.engine.connect() as connection:
            options = connection.execute(
                text("SELECT reloptions FROM pg_class WHERE relname = 'deliveries'")
            ).scalar()
        assert options == ["fillfactor=60"]
    else:
        assert keys == {("edition_id",), ("subscriber_id",)}
