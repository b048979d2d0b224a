"""Subscriber counts kept by the database's own triggers (migration 0022): after every kind
of write (sign-up, import, topic change, unsubscribe, bounce, erasure, delete) the tallies
equal a recount of the rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import JSON, column, delete, insert, select, table, text, update

from publisher.store import MIGRATIONS, Store
from publisher.store.consent import erase_personal_data
from publisher.store.dashboard import _aware
from publisher.store.models import SubscriberRow, SubscriberTallyRow, UTCDateTime
from publisher.store.people_queries import growth, subscriber_counts
from publisher.store.subscribers import (
    STATUSES,
    SubscriberInput,
    import_subscribers,
    iter_subscribers,
    new_token,
    set_status,
)

TOPICS = ("climate", "housing", "transit", "schools")


# subscribers as a revision before 0031 has them (no email_hash, which the model's insert
# default would fill): for the migration tests that write rows at an older revision
OLD_SUBSCRIBERS = table(
    "subscribers",
    *(column(c) for c in ("email", "status", "token")),
    column("topics", JSON),
    column("created_at", UTCDateTime()),
    column("updated_at", UTCDateTime()),
)


def recount(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    """The counts the page shows, counted the slow way: every row read in Python."""
    with store.session() as session:
        found: list[Any] = list(session.execute(select(SubscriberRow.status, SubscriberRow.topics)))
    rows = [(str(s), [str(x) for x in t or []]) for s, t in found]
    statuses = Counter(status for status, _ in rows)
    topics: Counter[str] = Counter()
    for status, chosen in rows:
        if status == "active":
            topics.update(chosen or ["(all topics)"])
    return dict(statuses), dict(sorted(topics.items()))


def tallies(store: Store) -> dict[tuple[str, str, str], int]:
    with store.session() as session:
        found = session.execute(select(SubscriberTallyRow))
        return {(r.status, r.kind, r.topic): r.n for (r,) in found if r.n}


def _some_topics(rng: random.Random) -> tuple[str, ...]:
    return tuple(rng.sample(TOPICS, rng.randint(0, 3)))


def _step(store: Store, rng: random.Random, now: datetime, serial: int) -> None:
    """One random write through one of the store's own write paths (or plain SQL)."""
    people = [s for s in iter_subscribers(store) if not s.email.endswith("@erased.invalid")]
    kind = (
        rng.choice(["import", "import", "status", "erase", "delete", "sql"]) if people else "import"
    )
    if kind == "import":  # new people and changes to known ones (topics, status) at once
        known = [p.email for p in rng.sample(people, min(len(people), rng.randint(0, 3)))]
        fresh = [f"p{serial}-{i}@example.org" for i in range(rng.randint(0, 4))]
        rows = [
            SubscriberInput(email, None, _some_topics(rng), rng.choice([None, *STATUSES]))
            for email in known + fresh
        ]
        import_subscribers(store, rows, now=now)
    elif kind == "status":  # unsubscribe link, bounce or complaint webhook
        set_status(store, token=rng.choice(people).token, status=rng.choice(STATUSES), now=now)
    elif kind == "erase":
        erase_personal_data(store, rng.choice(people), now=now)
    elif kind == "delete":
        with store.session() as session:
            session.execute(delete(SubscriberRow).where(SubscriberRow.id == rng.choice(people).id))
    else:  # a write no store function makes: a staff tool, a console
        with store.session() as session:
            session.execute(
                update(SubscriberRow)
                .where(SubscriberRow.id == rng.choice(people).id)
                .values(topics=list(_some_topics(rng)), name="renamed")
            )


def test_tallies_equal_a_recount_after_random_writes(store, fixed_now):
    rng = random.Random(20)
    for serial in range(60):
        _step(store, rng, fixed_now + timedelta(minutes=serial), serial)
        assert subscriber_counts(store) == recount(store), f"after step {serial}"
    statuses, topics = subscriber_counts(store)
    assert sum(statuses.values()) > 0 and topics  # the walk did leave people to count
    # growth's totals start from the tallies: each day's total is a recount by created_at
    later = fixed_now + timedelta(minutes=30)
    with store.session() as session:
        made = [_aware(t) for t in session.scalars(select(SubscriberRow.created_at))]
    days = growth(store, now=later, days=3)
    assert [total for _, _, total in days] == [
        sum(t < day + timedelta(days=1) and t <= later for t in made) for day, _, _ in days
    ]
    assert days[-1][1] > 0


def test_a_repeated_topic_and_odd_topics_values_are_counted_like_a_recount(store, fixed_now):
    rows = [
        dict(email="a@example.org", topics=["climate", "climate"]),
        dict(email="b@example.org", topics=[]),
        dict(email="c@example.org", topics=['it\'s "quoted"']),
    ]
    with store.session() as session:
        session.execute(
            insert(SubscriberRow),
            [
                {
                    **r,
                    "status": "active",
                    "token": new_token(),
                    "created_at": fixed_now,
                    "updated_at": fixed_now,
                }
                for r in rows
            ],
        )
    statuses, topics = subscriber_counts(store)
    assert statuses == {"active": 3}
    assert topics == {"(all topics)": 1, "climate": 2, 'it\'s "quoted"': 1}
    with store.session() as session:  # the same status and topics: no change to count
        session.execute(
            update(SubscriberRow).values(status="active", topics=["climate", "climate"])
        )
    assert subscriber_counts(store) == ({"active": 3}, {"climate": 6})
    with store.session() as session:
        session.execute(delete(SubscriberRow))
    assert subscriber_counts(store) == ({}, {})
    assert tallies(store) == {}  # the emptied rows stay at 0 and are never shown


def test_a_rolled_back_write_leaves_the_tallies_as_they_were(store, fixed_now):
    import_subscribers(store, [SubscriberInput("a@example.org", None, ("climate",))], now=fixed_now)
    before = tallies(store)
    try:
        with store.session() as session:
            session.execute(update(SubscriberRow).values(status="bounced", topics=[]))
            raise RuntimeError("the request failed half way")
    except RuntimeError:
        pass
    assert tallies(store) == before == {("active", "all", ""): 1, ("active", "topic", "climate"): 1}


def test_the_migration_fills_the_tallies_from_the_rows_already_there(database_url, fixed_now):
    store = Store(database_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0021")
        command.downgrade(cfg, "0021")  # PostgreSQL test databases start migrated
    people = [
        ("active", ["climate"]),
        ("active", []),
        ("bounced", ["climate", "housing"]),
        ("active", ["housing", "climate"]),
    ]
    with store.session() as session:
        session.execute(
            insert(OLD_SUBSCRIBERS),
            [
                dict(
                    email=f"p{i}@example.org",
                    status=s,
                    topics=t,
                    token=new_token(),
                    created_at=fixed_now,
                    updated_at=fixed_now,
                )
                for i, (s, t) in enumerate(people)
            ],
        )
    store.migrate()
    assert (
        subscriber_counts(store)
        == recount(store)
        == (
            {"active": 3, "bounced": 1},
            {"(all topics)": 1, "climate": 2, "housing": 1},
        )
    )
    with store.engine.begin() as connection:  # and the triggers are there from then on
        connection.execute(text("UPDATE subscribers SET status = 'unsubscribed'"))
    assert subscriber_counts(store) == ({"unsubscribed": 4}, {})
    with store.engine.begin() as connection:  # downgrade drops table, triggers (and function)
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0021")
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM subscribers"))
    store.close()
