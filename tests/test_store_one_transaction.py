"""Store.one_transaction: on PostgreSQL every store call inside shares one session and one
transaction (one checkout, one BEGIN and COMMIT for a staff page), committed at the end or
rolled back on an error; on SQLite each call keeps its own."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from publisher.store.audit import record
from publisher.store.models import AuditRow


def _checkouts(store) -> list[int]:
    seen = [0]

    def count(*_args: object) -> None:
        seen[0] += 1

    event.listen(store.engine, "checkout", count)
    return seen


def _entries(store) -> int:
    with store.session() as session:
        return len(session.scalars(select(AuditRow)).all())


def test_calls_inside_share_one_session_and_commit_at_the_end(store, fixed_now):
    seen = _checkouts(store)
    with store.one_transaction():
        with store.session() as first, store.session() as second:
            shared = first is second
        record(store, "a@example.org", "pause", "weekly", ip="10.0.0.1", now=fixed_now)
        record(store, "a@example.org", "resume", "weekly", ip="10.0.0.1", now=fixed_now)
    postgresql = store.engine.dialect.name == "postgresql"
    assert shared is postgresql
    assert (seen[0] == 1) is postgresql  # one checkout for the whole block on PG
    assert _entries(store) == 2


def test_an_error_inside_rolls_the_whole_block_back_on_postgresql(store, fixed_now):
    with pytest.raises(RuntimeError), store.one_transaction():
        record(store, "a@example.org", "pause", "weekly", ip="10.0.0.1", now=fixed_now)
        raise RuntimeError("the page failed")
    # PostgreSQL: nothing of the block was kept; SQLite: each call had committed its own
    assert _entries(store) == (0 if store.engine.dialect.name == "postgresql" else 1)
