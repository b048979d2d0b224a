"""The staff's subscriber search ("address or name contains") on SQLite and PostgreSQL: a
match in the middle of an address or a name, whatever its case, sorted by address, erased
people never; on PostgreSQL the very statement the page runs can be served by migration
0023's trigram indexes, and a role that may not create pg_trgm still migrates and searches
(without them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import event, inspect, text

from publisher.store import Store, open_store
from publisher.store.consent import erase_personal_data
from publisher.store.dashboard import search_subscribers
from publisher.store.subscribers import SubscriberInput, find_subscriber, import_subscribers
from tests.conftest import FIXED_NOW, present
from tests.pgcluster import Cluster

PEOPLE = [
    SubscriberInput("ana.lopez@example.org", "Ana"),
    SubscriberInput("bo@lopez-family.net", None),
    SubscriberInput("carl@example.org", "Carl LOPEZ"),
    SubscriberInput("dee@example.org", "Dee Lopezzi"),
    SubscriberInput("eve@example.org", "Eve Martin"),
    SubscriberInput("gone.lopez@example.org", "Gone Lopez"),
    *(SubscriberInput(f"filler{n}@example.com", f"Filler {n}") for n in range(40)),
]


def _people(store: Store) -> None:
    import_subscribers(store, PEOPLE, now=FIXED_NOW)
    gone = present(find_subscriber(store, email="gone.lopez@example.org"))
    erase_personal_data(store, gone, now=FIXED_NOW)


def found(store: Store, text_: str, **limit: int) -> list[str]:
    return [s.email for s in search_subscribers(store, text_, **limit)]


def test_search_finds_the_middle_of_an_address_or_a_name_in_any_case(store):
    _people(store)
    expected = [
        "ana.lopez@example.org",  # the middle of an address
        "bo@lopez-family.net",  # the domain
        "carl@example.org",  # a name in capitals
        "dee@example.org",  # the start of a longer word in a name
    ]
    assert found(store, "lopez") == expected  # by address; the erased person never
    assert found(store, "  LoPeZ ") == expected
    assert found(store, "pez-fam") == ["bo@lopez-family.net"]
    assert found(store, "rl lop") == ["carl@example.org"]
    assert found(store, "ample.or") == [
        "ana.lopez@example.org", "carl@example.org", "dee@example.org", "eve@example.org",
    ]  # fmt: skip
    assert found(store, "filler1", limit=3) == [
        "filler10@example.com", "filler11@example.com", "filler12@example.com",
    ]  # fmt: skip
    assert found(store, "erased.invalid") == [] and found(store, "nobody") == []
    assert found(store, "100%") == [] and found(store, "_") == found(store, "")


@contextmanager
def statements(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (and parameters) the store sends while the block runs."""
    seen: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", keep)


def test_postgresql_serves_the_search_from_the_trigram_indexes(pg_cluster: Cluster):
    """The statement search_subscribers sends, explained with sequential and ordered index
    scans ruled out: both tests (address and name) can be answered by the GIN trigram
    indexes (on a table this small the planner would otherwise read it whole, which tells
    nothing; at a million rows it picks them itself, see bench/README.md)."""
    name = pg_cluster.create_database()
    store = open_store(pg_cluster.url(name))
    try:
        _people(store)
        with statements(store) as seen:
            assert found(store, "lopez")
        [(statement, parameters)] = [s for s in seen if "FROM subscribers" in s[0]]
        with store.engine.connect() as connection:
            for scan in ("seqscan", "indexscan"):  # left: bitmap scans
                connection.exec_driver_sql(f"SET enable_{scan} = off")
            plan = "\n".join(
                row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            )
        assert "ix_subscribers_email_trgm" in plan and "ix_subscribers_name_trgm" in plan, plan
    finally:
        store.close()
        pg_cluster.drop_database(name)


def test_without_the_right_to_create_pg_trgm_the_store_migrates_and_searches(
    pg_cluster: Cluster,
):
    """A role that owns its tables but may not create extensions in the database (no
    CREATE on it): the migration leaves the trigram indexes out, the search still works."""
    role, database = f"plain{os.getpid()}", f"plain{os.getpid()}"
    with psycopg.connect(pg_cluster.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'CREATE DATABASE "{database}"')
    with psycopg.connect(
        pg_cluster.admin_url.rsplit("/", 1)[0] + f"/{database}", autocommit=True
    ) as conn:
        conn.execute(f'GRANT CREATE ON SCHEMA public TO "{role}"')
    url = f"postgresql+psycopg://{role}@127.0.0.1:{pg_cluster.port}/{database}"
    store = open_store(url)
    try:
        with store.engine.connect() as connection:
            extensions = connection.execute(text("SELECT extname FROM pg_extension"))
            assert "pg_trgm" not in {str(name) for (name,) in extensions}
        indexes = {i["name"] for i in inspect(store.engine).get_indexes("subscribers")}
        assert not {"ix_subscribers_email_trgm", "ix_subscribers_name_trgm"} & indexes
        _people(store)
        assert found(store, "lopez") == [
            "ana.lopez@example.org", "bo@lopez-family.net", "carl@example.org", "dee@example.org",
        ]  # fmt: skip
    finally:
        store.close()
        pg_cluster.drop_database(database)
        with psycopg.connect(pg_cluster.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{role}"')
