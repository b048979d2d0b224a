"""Store.one_transaction: on PostgreSQL every store call inside shares one session and one
transaction (one checkout, one BEGIN and COMMIT for a staff page), committed at the end or
rolled back on an error; on SQLite each call keeps its own."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import event, select

from publisher.sources.collect import collect_all
from publisher.store.audit import record
from publisher.store.models import AuditRow
from publisher.store.sink import StoreSink


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


@pytest.fixture
def counted_pages(project, store, monkeypatch):
    """A served /admin whose `one_transaction()` blocks count the connections checked out
    inside them (per block, in the thread running it), and a logged-in client."""
    from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts, log_in, write_posts
    from tests.web_support import serve

    add_accounts(store)
    write_posts(project)
    blocks: list[list[int]] = []
    local = threading.local()
    original = store.one_transaction

    @contextlib.contextmanager
    def counting() -> Iterator[None]:
        local.count = [0]
        try:
            with original():
                yield
        finally:
            blocks.append(local.count)
            local.count = None

    def checkout(*_args: object) -> None:
        if getattr(local, "count", None) is not None:
            local.count[0] += 1

    monkeypatch.setattr(store, "one_transaction", counting)
    event.listen(store.engine, "checkout", checkout)
    config = ADMIN_CONFIG + "approval:\n  editions: true\n"
    with serve(project, store, config_text=config) as served:
        collect_all(served.config, StoreSink(store), now=served.clock.now)
        with httpx.Client(base_url=served.url, follow_redirects=True, timeout=30) as http:
            log_in(http, STAFF["owner"])
            yield http, blocks
    event.remove(store.engine, "checkout", checkout)


def test_the_overview_campaign_and_edition_pages_use_one_connection(counted_pages, store):
    """Every store call of these pages, the audit log's plain INSERT and the Core reads
    among them, joins the page's one_transaction() (Store.begin(), Store.session()): on
    PostgreSQL one connection each; SQLite keeps one per call (none is shared)."""
    from tests.admin_support import seed_edition

    http, blocks = counted_pages
    edition = seed_edition(store)
    for path in ("/admin/", "/admin/campaigns/weekly", f"/admin/editions/{edition}"):
        blocks.clear()
        page = http.get(path)
        assert page.status_code == 200, path
        assert len(blocks) == 1, path  # the page ran in one block
        if store.engine.dialect.name == "postgresql":
            assert blocks[0] == [1], path


def test_the_webhook_queue_reads_join_an_enclosing_block(store):
    """The Core reads /admin's webhook pages make (deliveries, attempts, state counts) run in
    an enclosing one_transaction() (Store.begin()): on PostgreSQL one checkout for all."""
    from publisher.store import webhook_queue

    seen = _checkouts(store)
    with store.one_transaction():
        assert webhook_queue.deliveries(store, 1) == []
        assert webhook_queue.attempts(store, 1) == []
        assert webhook_queue.state_counts(store) == {}
    assert (seen[0] == 1) is (store.engine.dialect.name == "postgresql")
