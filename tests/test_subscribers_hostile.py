"""Hostile subscriber files: each bad row is reported (where, why) and skipped, a file of the
wrong shape is one error line, and nothing from a file can reach a header."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from publisher.store.subscribers import (
    follows,
    import_subscribers,
    iter_subscribers,
    normalise_email,
)
from publisher.subscribers.files import SubscriberFileError, read_subscriber_file
from tests.hostile_project import make_project, run_cli


def write(path: Path, content: object) -> Path:
    text = content if isinstance(content, str) else json.dumps(content)
    path.write_text(text, encoding="utf-8")
    return path


def test_json_names_with_control_characters_are_reported_and_skipped(tmp_path):
    path = write(
        tmp_path / "people.json",
        [
            {"email": "ann@example.org", "name": "Ann"},
            {"email": "eve@example.org", "name": "Eve\r\nBcc: victim@example.net"},
            {"email": "mal@example.org", "name": "Mal\x0bSoft break"},
            {"email": "sep@example.org", "name": "Line\u2028Separator"},
            {"email": "bo@example.org", "name": "Bo", "topics": ["Housing"]},
        ],
    )
    rows, problems = read_subscriber_file(path)
    assert [r.email for r in rows] == ["ann@example.org", "bo@example.org"]
    assert problems == [
        f"{path}: entry 2: name contains control characters (\\r, \\n)",
        f"{path}: entry 3: name contains control characters (\\x0b)",
        f"{path}: entry 4: name contains control characters (\\u2028)",
    ]


def test_csv_name_with_an_embedded_newline_is_reported_not_glued(tmp_path):
    path = write(
        tmp_path / "people.csv",
        "email,name,topics\n"
        "ann@example.org,Ann,wages\n"
        'eve@example.org,"Eve\nBcc: victim@example.net",wages\n'
        "bo@example.org,Bo,rent\n",
    )
    rows, problems = read_subscriber_file(path)
    assert [(r.email, r.name) for r in rows] == [
        ("ann@example.org", "Ann"),
        ("bo@example.org", "Bo"),
    ]
    assert problems == [f"{path}:3: name contains control characters (\\n)"]


def test_csv_rows_keep_their_own_line_numbers(tmp_path):
    path = write(
        tmp_path / "people.csv",
        'email,name\n"x@example.org","two\nlines"\nnot-an-address,Z\nok@example.org,A,extra\n',
    )
    _rows, problems = read_subscriber_file(path)
    assert problems[0].startswith(f"{path}:2: name contains")
    assert problems[1].startswith(f"{path}:4: invalid email address 'not-an-address'")
    assert problems[2] == f"{path}:5: more cells than the header has columns"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (5, "got int"),
        (None, "got null"),
        ({"subscribers": 5}, "got int"),
        ({"people": []}, "got null"),
        ("a string", "got str"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("{not json", "invalid JSON"),
    ],
)
def test_json_files_of_the_wrong_shape_are_one_error(tmp_path, content, says):
    path = write(
        tmp_path / "people.json",
        content
        if isinstance(content, str) and content.startswith(("[", "{"))
        else json.dumps(content),
    )
    with pytest.raises(SubscriberFileError, match=re.escape(says)) as info:
        read_subscriber_file(path)
    assert str(path) in str(info.value)


def test_json_rows_of_the_wrong_type_are_reported_per_row(tmp_path):
    path = write(
        tmp_path / "people.json",
        {
            "subscribers": [
                5,
                None,
                "ann@example.org",
                {"email": ["ann@example.org"]},
                {"email": "ann@example.org", "name": {"first": "Ann"}},
                {"email": "ann@example.org", "topics": [{"x": 1}]},
                {"email": "ann@example.org", "name": "Ann", "topics": "Workers Rights; wages"},
            ]
        },
    )
    rows, problems = read_subscriber_file(path)
    assert [(r.email, r.topics) for r in rows] == [("ann@example.org", ("wages", "workers-rights"))]
    assert [p.split(": ", 2)[1] for p in problems] == [f"entry {i}" for i in range(1, 7)]
    assert "'email' must be text, got list" in problems[3]
    assert "'name' must be text, got dict" in problems[4]


def test_addresses_are_validated_and_normalised_without_dns():
    assert normalise_email("  Ann@Example.ORG ") == "ann@example.org"
    assert normalise_email("ann@bücher.example") == "ann@xn--bcher-kva.example"
    for bad in ("jöhn@example.org", "ann@example", "ann@@example.org", "a b@example.org", ""):
        with pytest.raises(ValueError, match="invalid email address"):
            normalise_email(bad)


def test_subscriber_topics_are_slugs_and_follow_audiences(store, tmp_path, fixed_now):
    path = write(
        tmp_path / "people.csv", "email,name,topics\nann@example.org,Ann,Workers’ Rights;LABOR\n"
    )
    rows, _ = read_subscriber_file(path)
    import_subscribers(store, rows, now=fixed_now)
    (ann,) = iter_subscribers(store)
    assert ann.topics == ("labor", "workers-rights")
    assert follows(ann.topics, ["workers-rights"])
    assert follows(("Workers Rights",), ["workers-rights"])  # stored before topics were slugs
    assert not follows(("housing",), ["workers-rights"])


def _raw_headers(eml: bytes) -> list[tuple[bytes, bytes]]:
    """The header block as the bytes say, parsed by hand: every line up to the first empty
    one is a header of its own unless it starts with white space (a folded line)."""
    head = eml.split(b"\r\n\r\n", 1)[0]
    headers: list[tuple[bytes, bytes]] = []
    for line in re.split(rb"\r\n|\r|\n", head):
        if line[:1] in (b" ", b"\t"):
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip())
            continue
        name, sep, value = line.partition(b":")
        assert sep, f"not a header line: {line!r}"
        headers.append((name, value.strip()))
    return headers


@pytest.mark.slow  # starts the real `publisher` command
def test_topic_slugging_end_to_end_and_hostile_names_never_reach_a_header(tmp_path):
    """`run --once` imports the file: 'Workers Rights' follows audience workers-rights and
    gets the edition; the hostile rows are reported and skipped; the raw .eml bytes carry
    exactly the headers we write."""
    people = [
        {"email": "ann@example.org", "name": "Ann", "topics": ["Workers Rights"]},
        {"email": "bo@example.org", "name": "Bo", "topics": ["Housing"]},
        {"email": "eve@example.org", "name": "Eve\r\nBcc: victim@example.net", "topics": []},
        {"email": "mal@example.org", "name": "Mal\nX-Injected: yes"},
    ]
    make_project(tmp_path, subscribers="")
    (tmp_path / "subscribers.csv").unlink()
    write(tmp_path / "people.json", people)
    config = (tmp_path / "schedules.yaml").read_text(encoding="utf-8")
    (tmp_path / "schedules.yaml").write_text(
        config.replace("subscribers.csv", "people.json"), encoding="utf-8"
    )
    result = run_cli("run", "--once", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "people.json: entry 3: name contains control characters (\\r, \\n)" in output
    assert "people.json: entry 4: name contains control characters (\\n)" in output
    messages = sorted((tmp_path / "outbox" / "weekly" / "1").glob("*.eml"))
    assert len(messages) == 1  # Ann only: Bo follows housing, Eve and Mal were skipped
    raw = messages[0].read_bytes()
    names = [name.decode("ascii") for name, _ in _raw_headers(raw)]
    assert sorted(names) == sorted(
        [
            "From",
            "To",
            "Reply-To",
            "Subject",
            "Date",
            "Message-ID",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "MIME-Version",
            "Content-Type",
        ]
    ), names
    headers = dict(_raw_headers(raw))
    assert headers[b"To"] == b"Ann <ann@example.org>"
    assert b"Bcc" not in raw and b"X-Injected" not in raw
    assert b"Wage theft enforcement wins" in raw
