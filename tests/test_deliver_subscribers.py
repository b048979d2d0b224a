"""Subscribers: import files with bad rows, upsert without re-subscribing, streaming."""

from __future__ import annotations

import json
import re

from publisher.store.audience_counts import count_audience
from publisher.store.subscribers import (
    SubscriberInput,
    follows,
    import_subscribers,
    iter_audience,
    iter_subscribers,
)
from publisher.subscribers.files import read_subscriber_file
from tests.conftest import ROOT


def test_csv_with_bad_rows_reports_them_and_keeps_the_rest(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(
        "email,name,topics,status\n"
        "Ann@Example.org,Ann,wages;housing,\n"
        "not-an-address,Bad,,\n"
        "bob@example.net,Bob,,gone\n"
        "ann@example.org,Ann again,,\n"
        "cy@example.org,,labor,unsubscribed\n",
        encoding="utf-8",
    )
    rows, problems = read_subscriber_file(path)
    assert [r.email for r in rows] == ["ann@example.org", "cy@example.org"]
    assert rows[0].topics == ("housing", "wages")
    assert rows[1].status == "unsubscribed"
    assert len(problems) == 3
    assert f"{path}:3: invalid email address" in problems[0]
    assert f"{path}:4: unknown status 'gone'" in problems[1]
    assert "duplicate address ann@example.org" in problems[2]


def test_json_file(tmp_path):
    path = tmp_path / "people.json"
    path.write_text(
        json.dumps(
            {
                "subscribers": [
                    {"email": "a@example.org", "name": "A", "topics": ["x", "y"]},
                    {"name": "no email"},
                ]
            }
        ),
        encoding="utf-8",
    )
    rows, problems = read_subscriber_file(path)
    assert rows == [SubscriberInput("a@example.org", "A", ("x", "y"), None)]
    assert "entry 2" in problems[0]


def test_import_upserts_and_never_resubscribes(store, fixed_now):
    first = import_subscribers(
        store,
        [
            SubscriberInput("a@example.org", "A", ("x",)),
            SubscriberInput("b@example.org", "B", (), "unsubscribed"),
        ],
        now=fixed_now,
    )
    assert (first.inserted, first.updated) == (2, 0)
    again = import_subscribers(
        store,
        [
            SubscriberInput("a@example.org", "A. Person", ("x", "y")),
            SubscriberInput("b@example.org", "B", (), "active"),
        ],
        now=fixed_now,
    )
    assert (again.inserted, again.updated, again.kept_inactive) == (0, 1, 1)
    people = {s.email: s for s in iter_subscribers(store)}
    assert people["a@example.org"].name == "A. Person"
    assert people["a@example.org"].topics == ("x", "y")
    assert people["b@example.org"].status == "unsubscribed"
    tokens = [s.token for s in people.values()]
    assert len(set(tokens)) == 2
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", t) for t in tokens)


def test_streaming_in_chunks_and_audience(store, fixed_now):
    rows = [
        SubscriberInput(f"p{i}@example.org", None, ("wages",) if i % 2 else ()) for i in range(25)
    ]
    import_subscribers(store, rows, now=fixed_now)
    assert len(list(iter_subscribers(store, chunk=4))) == 25
    assert len(list(iter_audience(store, ["wages"], chunk=7))) == 25  # no topics: everything
    import_subscribers(store, [SubscriberInput("h@example.org", None, ("housing",))], now=fixed_now)
    assert count_audience(store, ["wages"]) == 25
    assert count_audience(store, []) == 26


def test_follows():
    assert follows((), ["wages"])
    assert follows(("wages",), [])
    assert follows(("wages", "rent"), ["rent"])
    assert not follows(("housing",), ["wages"])


def test_sample_subscribers_file_is_valid():
    rows, problems = read_subscriber_file(ROOT / "subscribers.csv")
    assert problems == [] and len(rows) >= 8
