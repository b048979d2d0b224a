"""The staff's subscriber search ("address or name contains") on SQLite and PostgreSQL: a
match in the middle of an address or a name, whatever its case, sorted by address, erased
people never; the very statement the page runs is served by migration 0023's trigram
indexes (PostgreSQL: pg_trgm; SQLite: an FTS5 table its triggers keep equal to the rows
through every kind of write), and a PostgreSQL role that may not create pg_trgm still
migrates and searches (without them)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import delete, event, inspect, text, update

from publisher.store import Store, open_store
from publisher.store.consent import erase_personal_data
from publisher.store.models import SubscriberRow
from publisher.store.people_queries import search_subscribers
from publisher.store.subscribers import (
    SubscriberInput,
    find_subscriber,
    import_subscribers,
    iter_subscribers,
)
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


def test_sqlite_serves_the_search_from_the_trigram_table(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    try:
        _people(store)
        with statements(store) as seen:
            assert found(store, "lopez")
        [(statement, parameters)] = [s for s in seen if "FROM subscribers" in s[0]]
        with store.engine.connect() as connection:
            plan = " ".join(
                str(row[-1])
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
        assert "VIRTUAL TABLE INDEX" in plan and "subscribers_search" in plan, plan
        assert found(store, "bo") == ["bo@lopez-family.net"]  # under three: every row read
    finally:
        store.close()


def _by_hand(store: Store, fragment: str) -> list[str]:
    """The search done the slow way: every row read in Python."""
    people = [s for s in iter_subscribers(store) if not s.email.endswith("@erased.invalid")]
    wanted = fragment.lower()
    hits = [s.email for s in people if wanted in s.email or wanted in (s.name or "").lower()]
    return sorted(hits)


def test_the_trigram_table_follows_every_kind_of_write(store):
    """Imports, renames, address changes, erasure, deletes (through the store and in plain
    SQL): the search still finds exactly what reading every row finds."""
    rng = random.Random(20)
    _people(store)
    for step in range(60):
        people = [s for s in iter_subscribers(store) if not s.email.endswith("@erased.invalid")]
        person = rng.choice(people)
        kind = step % 5
        if kind == 0:
            new = SubscriberInput(f"new{step}.lopez@example.net", rng.choice([None, "Neu LOPEZ"]))
            import_subscribers(
                store, [new, SubscriberInput(person.email, f"Renamed {step}")], now=FIXED_NOW
            )
        elif kind == 1:
            erase_personal_data(store, person, now=FIXED_NOW)
        else:
            change = (
                {"email": f"moved{step}@lopez.example"}
                if kind == 2
                else {"name": rng.choice(["Lopez Again", None, "Zed"])}
            )
            with store.session() as session:
                if kind == 4 and step % 2:
                    session.execute(delete(SubscriberRow).where(SubscriberRow.id == person.id))
                else:
                    session.execute(
                        update(SubscriberRow).where(SubscriberRow.id == person.id).values(**change)
                    )
    for fragment in ("lopez", "LOPEZ", "renamed", "moved", "example.", "zed", "neu l", "bo"):
        assert sorted(found(store, fragment, limit=1000)) == _by_hand(store, fragment), fragment
    if store.engine.dialect.name == "sqlite":  # the FTS5 index against its rows
        with store.session() as session:
            session.execute(
                text(
                    "INSERT INTO subscribers_search (subscribers_search) VALUES ('integrity-check')"
                )
            )
