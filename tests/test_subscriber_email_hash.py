"""subscribers.email_hash (migration 0031), on SQLite and PostgreSQL: every writer of an
address leaves the hash the suppression list keeps for it (the API's creates with an
import key and a sign-up key, sign-up and confirmation, /admin's and the CLI's adds, the
subscriber file and staged imports, erasure); a row without it is refused; the migration
fills it for the rows already there and keeps the triggers of 0022, 0023 and 0030; and
suppressed people are held back and left out of counts through it. And a topic longer
than the API allows is refused where it enters: a subscriber file's row, the CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner, Result

from publisher.cli import app
from publisher.store import MIGRATIONS, Store
from publisher.store.audience_counts import _suppressed_ids, count_reachable
from publisher.store.consent import Context
from publisher.store.models import SubscriberRow, SuppressionRow
from publisher.store.subscribers import (
    SubscriberInput,
    import_subscribers,
    new_token,
    normalise_email,
    stored_email_hash,
    subscriber_at,
)
from publisher.store.suppression import suppress
from publisher.subscribers.consent import activate, add_by_staff, add_person, erase, sign_up
from publisher.subscribers.files import MAX_TOPIC, read_subscriber_file
from tests.api_support import api_server, make_key
from tests.conftest import FIXED_NOW, present, write_config
from tests.test_subscriber_search import statements
from tests.test_subscriber_tallies import OLD_SUBSCRIBERS

CONSENT = {"text": "Ticked the box", "form": "petition", "ip": "192.0.2.7"}
WEB = Context(via="web", ip="192.0.2.8", form="signup")


def hashes(store: Store) -> dict[str, str | None]:
    with store.session() as session:
        rows = session.execute(select(SubscriberRow.email, SubscriberRow.email_hash)).all()
    return {email: digest for email, digest in rows}


def assert_every_hash_right(store: Store) -> dict[str, str | None]:
    stored = hashes(store)
    wrong = {e: h for e, h in stored.items() if h != stored_email_hash(e)}
    assert not wrong, f"email_hash not stored_email_hash(email) for {sorted(wrong)}"
    return stored


def test_every_writer_leaves_the_hash_of_the_address(tmp_path, store):
    with api_server(tmp_path, store) as (served, api):
        importer = make_key(store, served, "subscribers:write", "subscribers:import")
        person = {"email": "Ana@Example.org", "topics": ["labor"], "consent": CONSENT}
        assert api.call("POST", "/subscribers", importer, json=person).status_code == 201
        signup = make_key(store, served, kind="signup")
        body = {"email": "bo@example.org", "topics": ["housing"], "consent": True}
        assert api.call("POST", "/signup", signup, json=body).status_code == 202
    cy, mailed = sign_up(store, "CY@example.org", name="Cy", topics=[], ctx=WEB, now=FIXED_NOW)
    assert mailed and cy is not None
    activate(store, cy, action="confirm", ctx=WEB, now=FIXED_NOW)
    staff = Context(via="staff", form="editor@example.org", consent_text="town hall sheet")
    add_person(store, "di@example.org", name=None, topics=[], ctx=staff, now=FIXED_NOW)
    add_by_staff(store, "ed@example.org", name=None, topics=[], now=FIXED_NOW)
    rows = [
        SubscriberInput(normalise_email(e), topics=("arts",))
        for e in ("fay@example.org", "ana@example.org")  # one new, one updated
    ]
    report = import_subscribers(store, rows, now=FIXED_NOW)
    assert (report.inserted, report.updated) == (1, 1)
    gone = present(subscriber_at(store, "bo@example.org"))
    erase(store, gone, now=FIXED_NOW)

    stored = assert_every_hash_right(store)
    assert {e for e in stored if not e.endswith("@erased.invalid")} == {
        "ana@example.org", "cy@example.org", "di@example.org", "ed@example.org",
        "fay@example.org",
    }  # fmt: skip
    [placeholder] = [e for e in stored if e.endswith("@erased.invalid")]
    assert stored[placeholder] != stored_email_hash("bo@example.org")  # its own hash


def test_a_row_without_its_hash_is_refused(store):
    row: dict[str, object] = dict(email="gil@example.org", status="active", topics=[])
    row |= dict(token=new_token(), created_at=FIXED_NOW, updated_at=FIXED_NOW)
    with pytest.raises(IntegrityError), store.session() as session:
        session.execute(insert(OLD_SUBSCRIBERS), [row])  # no email_hash, no model default
    add_by_staff(store, "gil@example.org", name=None, topics=[], now=FIXED_NOW)
    with pytest.raises(IntegrityError), store.session() as session:
        session.execute(update(SubscriberRow).values(email_hash=None))
    assert_every_hash_right(store)


def at_revision(store: Store, revision: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
        command.downgrade(cfg, revision)  # PostgreSQL test databases start migrated
    return cfg


def triggers(store: Store) -> set[str]:
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'subscribers'"
        if store.engine.dialect.name == "sqlite"
        else "SELECT tgname FROM pg_trigger WHERE tgrelid = 'subscribers'::regclass "
        "AND NOT tgisinternal"
    )
    with store.engine.connect() as connection:
        return set(connection.execute(text(query)).scalars())


def test_the_migration_fills_the_hash_and_keeps_the_triggers(database_url):
    store = Store(database_url)
    cfg = at_revision(store, "0030")
    before = triggers(store)
    assert {"subscriber_tallies_update", "subscriber_lists_update"} <= before
    addresses = ["ann@example.org", "Mixed.Case@Example.ORG", " spaced@example.org", "not one"]
    with store.session() as session:
        session.execute(
            insert(OLD_SUBSCRIBERS),
            [
                dict(email=e, status="active", token=new_token(), topics=["labor"])
                | dict(created_at=FIXED_NOW, updated_at=FIXED_NOW)
                for e in addresses
            ],
        )
    store.migrate()
    assert assert_every_hash_right(store)["Mixed.Case@Example.ORG"] == stored_email_hash(
        "mixed.case@example.org"
    )  # an address stored before normalisation still matches its suppression
    after = triggers(store)
    assert before <= after  # 0022's, 0023's (SQLite) and 0030's triggers survive
    with store.engine.begin() as connection:  # and still count
        connection.execute(text("UPDATE subscribers SET status = 'bounced'"))
        active = connection.execute(
            text("SELECT n FROM subscriber_tallies WHERE status = 'active' AND kind = 'all'")
        ).scalar()
    assert not active
    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0030")
    assert triggers(store) == before
    with store.engine.connect() as connection:
        columns = connection.execute(text("SELECT * FROM subscribers")).keys()
    assert "email_hash" not in columns
    store.close()


def test_suppressed_people_are_left_out_through_the_hash(store):
    for address in ("hal@example.org", "ivy@example.org", "jo@example.org"):
        add_by_staff(store, address, name=None, topics=["labor"], now=FIXED_NOW)

    def reach() -> int:
        return count_reachable(store, lambda topics: True, now=FIXED_NOW)

    assert reach() == 3
    suppress(store, "IVY@example.org", reason="bounced", source="test", now=FIXED_NOW)
    suppress(store, "nobody@example.org", reason="bounced", source="test", now=FIXED_NOW)
    assert reach() == 2
    with store.session() as session:  # suppressed but no longer active: counted once only
        session.execute(update(SubscriberRow).where(SubscriberRow.email == "ivy@example.org")
                        .values(status="unsubscribed"))  # fmt: skip
    assert reach() == 2
    later = FIXED_NOW + timedelta(days=1)
    assert count_reachable(store, lambda topics: "arts" in topics, now=later) == 0


def test_the_suppressed_are_found_in_one_statement_along_the_hash_index(store):
    """However long the suppression list (here 2,501 hashes, one of them a subscriber's),
    one statement finds the suppressed subscribers, and it can look each hash up by the
    index on subscribers.email_hash: SQLite, without statistics, walks the suppressions'
    key into that index (not every active subscriber along the status index); PostgreSQL,
    its sequential scans ruled out (on tables this small it reads them whole), merges
    along it."""
    for address in ("pat@example.org", "quin@example.org"):
        add_by_staff(store, address, name=None, topics=["labor"], now=FIXED_NOW)
    suppress(store, "quin@example.org", reason="bounced", source="test", now=FIXED_NOW)
    row = dict(reason="bounced", source="test", created_at=FIXED_NOW)
    others = [dict(row, email_hash=stored_email_hash(f"gone{n}@example.net")) for n in range(2500)]
    with store.session() as session:
        session.execute(insert(SuppressionRow), others)
    with statements(store) as seen, store.session() as session:
        found = _suppressed_ids(session)
    assert found == {present(subscriber_at(store, "quin@example.org")).id}
    [(statement, parameters)] = seen
    sqlite = store.engine.dialect.name == "sqlite"
    with store.engine.connect() as connection:
        if not sqlite:
            connection.exec_driver_sql("SET enable_seqscan = off")
        explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        rows = connection.exec_driver_sql(explain + statement, parameters)
        plan = "\n".join(str(r[-1] if sqlite else r[0]) for r in rows)
    assert "ix_subscribers_email_hash" in plan and "ix_subscribers_status" not in plan, plan


# --- topics bounded where they enter (PostgreSQL's tallies key each topic in a btree) -----


def test_a_file_row_with_a_topic_over_the_bound_is_reported_and_the_rest_imported(tmp_path, store):
    longest, over = "t" * MAX_TOPIC, "abcdefghij" * 300  # 3,000 characters
    path = tmp_path / "people.csv"
    path.write_text(
        "email,name,topics\n"
        f"kim@example.org,Kim,{longest}\n"
        f'lee@example.org,Lee,"labor;{over}"\n'
        "max@example.org,Max,housing\n",
        encoding="utf-8",
    )
    rows, problems = read_subscriber_file(path)
    assert problems == [f"{path}:3: topic longer than {MAX_TOPIC} characters: {over[:40]!r}..."]
    assert [r.email for r in rows] == ["kim@example.org", "max@example.org"]
    assert import_subscribers(store, rows, now=FIXED_NOW).inserted == 2
    assert present(subscriber_at(store, "kim@example.org")).topics == (longest,)
    assert subscriber_at(store, "lee@example.org") is None


def test_the_cli_refuses_a_topic_over_the_bound(project, database_url, monkeypatch, store):
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", database_url)
    config = str(write_config(project))

    def add(address: str, topic: str) -> Result:
        return CliRunner().invoke(
            app, ["-c", config, "subscribers", "add", address, "--topic", topic]
        )

    refused = add("nat@example.org", "abcdefghij" * 300)
    assert refused.exit_code == 2
    assert f"a topic is at most {MAX_TOPIC} characters" in refused.output
    assert subscriber_at(store, "nat@example.org") is None
    kept = add("oz@example.org", "t" * MAX_TOPIC)
    assert kept.exit_code == 0, kept.output
    assert present(subscriber_at(store, "oz@example.org")).topics == ("t" * MAX_TOPIC,)
