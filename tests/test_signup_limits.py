"""The sign-up's rate limits in the store: per mailbox (plus-tags, Gmail dots), per IP, per
network (/24, /64) and a global ceiling; all or nothing; counters pruned when their window
ends, so the table stays bounded however many clients come and go."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

import pytest

from publisher.store import Store, open_store
from publisher.store.limits import Limit, count_limits, take
from publisher.web import limits
from publisher.web.limits import allow_client, allow_mail, mailbox, network


@pytest.mark.parametrize(
    ("address", "box"),
    [
        ("Ana+news@Example.org", "ana@example.org"),
        ("a.n.a+x+y@gmail.com", "ana@gmail.com"),
        ("A.NA@googlemail.com", "ana@gmail.com"),
        ("a.na@example.org", "a.na@example.org"),  # dots matter elsewhere
        ("+tag@example.org", "+tag@example.org"),
    ],
)
def test_addresses_count_as_their_mailbox(address, box):
    assert mailbox(address) == box


def test_networks_are_the_24_or_the_64():
    assert network("203.0.113.77") == "203.0.113.0/24"
    assert network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert network("::ffff:203.0.113.9") == "203.0.113.0/24"
    assert network("unknown") == "unknown"


def test_a_limit_counts_within_its_window_and_starts_again_after(store, fixed_now):
    limit = Limit("k", 3, 600)
    start = fixed_now - timedelta(seconds=int(fixed_now.timestamp()) % 600)
    assert [take(store, [limit], now=start) for _ in range(4)] == [None, None, None, limit]
    assert take(store, [limit], now=start + timedelta(seconds=599)) == limit
    assert take(store, [limit], now=start + timedelta(seconds=600)) is None


def test_a_full_limit_counts_nothing_against_the_others(store, fixed_now):
    roomy, tight = Limit("roomy", 5, 600), Limit("tight", 1, 600)
    assert take(store, [roomy, tight], now=fixed_now) is None
    for _ in range(3):
        assert take(store, [roomy, tight], now=fixed_now) == tight
    # roomy counted once only: four more fit
    assert [take(store, [roomy], now=fixed_now) for _ in range(5)] == [None] * 4 + [roomy]


def test_clients_are_limited_per_ip_per_network_and_in_total(store, fixed_now, monkeypatch):
    now = fixed_now
    assert all(allow_client(store, "198.51.100.7", now=now) for _ in range(limits.IP_LIMIT))
    assert not allow_client(store, "198.51.100.7", now=now)
    # the rest of its /24 shares the network's limit
    others = [allow_client(store, f"198.51.100.{i}", now=now) for i in range(100, 140)]
    assert others.count(True) == limits.NETWORK_LIMIT - limits.IP_LIMIT
    v6 = [allow_client(store, f"2001:db8::{i:x}", now=now) for i in range(40)]
    assert v6.count(True) == limits.NETWORK_LIMIT  # one /64
    monkeypatch.setattr(limits, "GLOBAL_LIMIT", 70)
    spread = [allow_client(store, f"10.{i}.0.1", now=now) for i in range(30)]
    assert spread.count(True) == 70 - 60  # 60 sign-ups counted above: the ceiling is reached


def test_mail_is_limited_per_mailbox(store, fixed_now):
    spellings = ["ana@gmail.com", "a.na@gmail.com", "ana+1@gmail.com", "ANA@googlemail.com"]
    assert [allow_mail(store, a, now=fixed_now) for a in spellings] == [True] * 3 + [False]
    assert allow_mail(store, "bo@gmail.com", now=fixed_now)
    assert allow_mail(store, "ana@gmail.com", now=fixed_now + timedelta(hours=1))


def test_counters_are_pruned_so_the_table_stays_bounded(store, fixed_now):
    for i in range(300):  # many clients, each once, over several windows
        allow_client(store, f"10.{i // 250}.{i % 250}.1", now=fixed_now + timedelta(minutes=i))
    # only the current windows' keys are left: 11 minutes of IPs and networks, one global
    assert count_limits(store) <= 1 + 2 * 11
    allow_client(store, "10.9.9.9", now=fixed_now + timedelta(days=1))
    assert count_limits(store) == 3


def test_migration_0009_gives_existing_subscribers_an_opaque_reference(tmp_path, fixed_now):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from publisher.store import MIGRATIONS

    engine = create_engine(f"sqlite:///{tmp_path}/old.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0006")
        for i in range(3):
            connection.execute(
                text(
                    "INSERT INTO subscribers (email, topics, status, token, created_at, "
                    "updated_at) VALUES (:e, '[]', 'active', :t, :now, :now)"
                ),
                {"e": f"p{i}@example.org", "t": f"tok{i}", "now": fixed_now.isoformat()},
            )
        command.upgrade(cfg, "0009")
        refs: list[str] = list(connection.execute(text("SELECT ref FROM subscribers")).scalars())
        assert len(set(refs)) == 3 and all(r and len(r) == 16 for r in refs)
        command.downgrade(cfg, "0006")
        assert connection.execute(text("SELECT count(*) FROM subscribers")).scalar() == 3


def test_insert_if_absent_says_whether_the_row_went_in(store):
    """psycopg's rowcount of an INSERT ... ON CONFLICT DO NOTHING is -1 either way: the
    answer comes from RETURNING, the same on both databases."""
    from sqlalchemy import Table

    from publisher.store import dialect
    from publisher.store.models import RateLimitRow

    row = {"key": "k", "window_start": 0, "expires": 60, "hits": 1}
    with store.engine.begin() as connection:
        table = cast(Table, RateLimitRow.__table__)
        assert dialect.insert_if_absent(connection, table, row) is True
        assert dialect.insert_if_absent(connection, table, row | {"hits": 5}) is False
    assert count_limits(store) == 1


def test_a_counter_another_process_makes_meanwhile_still_counts_our_hit(pg_cluster, fixed_now):
    """PostgreSQL: another process inserts the window's row between our UPDATE (no row yet)
    and our INSERT; our INSERT then does nothing, and the hit is counted on that row, not
    lost (two hits, two counted). SQLite has one writer: nobody can get in between."""
    name = pg_cluster.create_database()
    store = open_store(pg_cluster.url(name))
    try:
        _counted_once_more(store, fixed_now)
    finally:
        store.close()
        pg_cluster.drop_database(name)


def _counted_once_more(store: Store, fixed_now: datetime) -> None:
    from sqlalchemy import event

    limit = Limit("raced", 5, 600)
    start = int(fixed_now.timestamp()) - int(fixed_now.timestamp()) % 600
    values = {"key": "raced", "window_start": start, "expires": start + 600, "hits": 1}

    def other_process(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO rate_limits") and not done:
            done.append(True)
            with store.engine.connect() as other:  # its own transaction, committed now
                other.exec_driver_sql(
                    "INSERT INTO rate_limits (key, window_start, expires, hits) "
                    "VALUES (%(key)s, %(window_start)s, %(expires)s, %(hits)s)",
                    values,
                )
                other.commit()

    done: list[bool] = []
    event.listen(store.engine, "before_cursor_execute", other_process)
    try:
        assert take(store, [limit], now=fixed_now) is None
    finally:
        event.remove(store.engine, "before_cursor_execute", other_process)
    from sqlalchemy import select

    from publisher.store.models import RateLimitRow

    with store.engine.connect() as connection:
        hits = connection.execute(select(RateLimitRow.hits).where(RateLimitRow.key == "raced"))
        assert hits.scalar() == 2
