"""The counts per topic list the database's own triggers keep (migration 0030), read by
count_reachable: after every kind of write (import, topic change, status change, erasure,
delete, plain SQL) they equal the old GROUP BY over every active subscriber, on SQLite and
PostgreSQL; the migration fills them from the rows already there."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from datetime import timedelta
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Text, cast, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from publisher.store import MIGRATIONS, Store
from publisher.store.audience_counts import _count_active, _topics_of, count_audience
from publisher.store.models import SubscriberListRow, SubscriberRow
from publisher.store.subscribers import SubscriberInput, follows, import_subscribers, new_token
from tests.test_subscriber_tallies import OLD_SUBSCRIBERS, _step

AUDIENCES = [(), ("climate",), ("housing", "transit"), ("schools",), ("nobody-follows",)]


def grouped(session: Session) -> Counter[tuple[str, tuple[str, ...]]]:
    """The oracle: the query _count_active ran before 0030, a GROUP BY over every row,
    per status and topic list (parsed as _count_active parses it)."""
    topics_text = cast(SubscriberRow.topics, Text)
    found = session.execute(
        select(SubscriberRow.status, topics_text, func.count()).group_by(
            SubscriberRow.status, topics_text
        )
    ).all()
    out: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for status, topics, n in found:
        out[(str(status), tuple(_topics_of(topics)))] += int(n)
    return out


def kept(session: Session) -> Counter[tuple[str, tuple[str, ...]]]:
    """The same counts read from subscriber_lists."""
    out: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for row in session.scalars(select(SubscriberListRow)):
        if row.n:
            out[(row.status, tuple(_topics_of(row.topics)))] += row.n
    return out


def old_count(session: Session, audience: tuple[str, ...]) -> int:
    return sum(
        n
        for (status, topics), n in grouped(session).items()
        if status == "active" and follows(list(topics), audience)
    )


def assert_same(store: Store, where: str) -> None:
    with store.session() as session:
        assert kept(session) == grouped(session), where
        for audience in AUDIENCES:
            chooses = lambda topics, a=audience: follows(topics, a)  # noqa: E731
            assert _count_active(session, chooses) == old_count(session, audience), where


def test_the_lists_equal_the_old_group_by_after_random_writes(store, fixed_now):
    rng = random.Random(30)
    for serial in range(60):  # import, status, erasure, delete, plain SQL: see _step
        _step(store, rng, fixed_now + timedelta(minutes=serial), serial)
        assert_same(store, f"after step {serial}")
    with store.session() as session:
        assert sum(n for (s, _), n in kept(session).items() if s == "active") > 0
    assert count_audience(store, ["climate"]) > 0


def test_topic_and_status_changes_and_odd_values_move_the_counts(store, fixed_now):
    # 5,000 characters that do not compress: past a PostgreSQL btree entry's size limit
    long_list = [hashlib.sha512(bytes([i])).hexdigest()[:100] for i in range(50)]
    rows: list[dict[str, Any]] = [
        dict(email="a@example.org", topics=["climate", "climate"]),
        dict(email="b@example.org", topics=[]),
        dict(email="c@example.org", topics=['it\'s "quoted"']),
        dict(email="d@example.org", topics=long_list),
        dict(email="e@example.org", topics=None),  # JSON null: follows everything
    ]
    with store.session() as session:
        session.execute(
            insert(SubscriberRow),
            [
                {**r, "status": "active", "token": new_token(), "created_at": fixed_now}
                | {"updated_at": fixed_now}
                for r in rows
            ],
        )
    assert_same(store, "inserted")
    with store.session() as session:
        assert old_count(session, ("climate",)) == 3  # a, b (no topic), e (null)
        assert old_count(session, (long_list[7],)) == 3
    with store.session() as session:  # a topic change, a status change, both at once
        session.execute(update(SubscriberRow).where(SubscriberRow.email == "a@example.org")
                        .values(topics=["housing"]))  # fmt: skip
        session.execute(update(SubscriberRow).where(SubscriberRow.email == "b@example.org")
                        .values(status="bounced"))  # fmt: skip
        session.execute(update(SubscriberRow).where(SubscriberRow.email == "d@example.org")
                        .values(status="unsubscribed", topics=["climate"]))  # fmt: skip
        session.execute(update(SubscriberRow).values(name="no count changes"))
    assert_same(store, "updated")
    with store.session() as session:
        assert old_count(session, ("climate",)) == 1  # e only
    import_subscribers(  # an import: new people and a change to a known one
        store,
        [SubscriberInput("a@example.org", None, ("climate",)),
         SubscriberInput("f@example.org", None, ("climate", "transit"))],
        now=fixed_now,
    )  # fmt: skip
    assert_same(store, "imported")
    with store.session() as session:
        session.execute(delete(SubscriberRow))
        assert kept(session) == Counter() == grouped(session)


def test_a_rolled_back_write_leaves_the_lists_as_they_were(store, fixed_now):
    import_subscribers(store, [SubscriberInput("a@example.org", None, ("climate",))], now=fixed_now)
    with store.session() as session:
        before = kept(session)
    try:
        with store.session() as session:
            session.execute(update(SubscriberRow).values(status="bounced", topics=[]))
            raise RuntimeError("the request failed half way")
    except RuntimeError:
        pass
    with store.session() as session:
        assert kept(session) == before == Counter({("active", ("climate",)): 1})


def test_the_migration_fills_the_lists_from_the_rows_already_there(database_url, fixed_now):
    store = Store(database_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0029")
        command.downgrade(cfg, "0029")  # PostgreSQL test databases start migrated
    people = [
        ("active", ["climate"]),
        ("active", []),
        ("bounced", ["climate", "housing"]),
        ("active", ["housing", "climate"]),
        ("active", ["climate"]),
    ]
    with store.session() as session:
        session.execute(
            insert(OLD_SUBSCRIBERS),
            [
                dict(email=f"p{i}@example.org", status=s, topics=t, token=new_token())
                | dict(created_at=fixed_now, updated_at=fixed_now)
                for i, (s, t) in enumerate(people)
            ],
        )
    store.migrate()
    with store.session() as session:
        assert kept(session) == grouped(session) == Counter({
            ("active", ("climate",)): 2, ("active", ()): 1,
            ("bounced", ("climate", "housing")): 1, ("active", ("housing", "climate")): 1,
        })  # fmt: skip
    with store.engine.begin() as connection:  # and the triggers are there from then on
        connection.execute(text("UPDATE subscribers SET status = 'unsubscribed'"))
    with store.session() as session:
        assert kept(session) == grouped(session)
        assert not any(status == "active" for status, _ in kept(session))
    with store.engine.begin() as connection:  # downgrade drops table, triggers (and functions)
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0029")
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM subscribers"))
    store.close()
