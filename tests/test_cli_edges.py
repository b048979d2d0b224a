"""The command line never shows a traceback, and its own options work before and after the
subcommand."""

from __future__ import annotations

import json

import pytest
import typer

from publisher.cli import app
from publisher.cli.base import hoist_global_options
from tests.hostile_project import make_project, run_cli, written


@pytest.fixture
def project_dir(tmp_path):
    make_project(tmp_path)
    return tmp_path


def assert_clean_failure(result, code: int, says: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert says in output, output
    assert "Traceback" not in output and "internal error" not in output


@pytest.mark.slow  # starts the real `publisher` command
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("preview", "weekly", "--at", "9999-12-31T23:59"), "out of range (1970 to 2999)"),
        (("preview", "weekly", "--at", "9999-12-31T23:59:59-12:00"), "out of range"),
        (("preview", "weekly", "--at", "0001-01-01T00:00"), "out of range"),
        (("preview", "weekly", "--at", "next tuesday"), "is not an ISO 8601 date/time"),
        (("send", "weekly", "--send-at", "9999-12-31T23:59"), "out of range"),
        (("subscribers", "list", "--limit", "-1"), "--limit"),
    ],
)
def test_bad_option_values_are_usage_errors(project_dir, args, says):
    assert_clean_failure(run_cli(*args, cwd=project_dir), 2, says)


@pytest.mark.slow  # starts the real `publisher` command
@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://user:s3cret@db.example:notaport/news", "cannot open store"),
        ("postgresql://user:s3cret@[::1/news", "cannot open store"),
        ("not a url", "cannot open store"),
        ("sqlite:///schedules.yaml", "file is not a database"),
    ],
)
def test_a_malformed_database_url_is_one_line_without_the_password(project_dir, url, says):
    result = run_cli("editions", cwd=project_dir, env={"PUBLISHER_DATABASE_URL": url})
    assert_clean_failure(result, 1, says)
    assert "s3cret" not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.slow  # starts the real `publisher` command
@pytest.mark.parametrize("content", ["5", "null", '{"subscribers": 5}', "[" * 50_000])
def test_subscriber_json_of_the_wrong_shape_is_one_error(project_dir, content):
    (project_dir / "people.json").write_text(content, encoding="utf-8")
    result = run_cli("subscribers", "import", "people.json", cwd=project_dir)
    assert_clean_failure(result, 1, "people.json")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.slow  # starts the real `publisher` command
def test_subscriber_rows_of_the_wrong_shape_are_skipped_by_the_command(project_dir):
    rows = [5, None, {"email": "ann@example.org", "name": "A\r\nBcc: x@example.net"}]
    rows.append({"email": "bo@example.org", "name": "Bo"})
    (project_dir / "people.json").write_text(json.dumps(rows), encoding="utf-8")
    result = run_cli("subscribers", "import", "people.json", cwd=project_dir)
    assert result.returncode == 0, result.stderr
    assert "1 new" in result.stdout and "3 skipped" in result.stdout
    assert "entry 3: name contains control characters" in result.stderr


@pytest.mark.slow  # starts the real `publisher` command
def test_options_work_after_the_subcommand(project_dir):
    other = project_dir / "elsewhere"
    other.mkdir()
    make_project(other)
    (project_dir / "schedules.yaml").write_text("not: [valid", encoding="utf-8")
    for args in (
        ("check", "--config", "elsewhere/schedules.yaml"),
        ("check", "-c", "elsewhere/schedules.yaml", "-v"),
        ("-v", "check", "--config=elsewhere/schedules.yaml"),
        ("--config", "elsewhere/schedules.yaml", "check", "-vv"),
    ):
        result = run_cli(*args, cwd=project_dir)
        assert result.returncode == 0, (args, result.stderr)
        assert "elsewhere/schedules.yaml: OK" in result.stdout
    # the broken file in the current folder is what a plain `check` reads
    assert run_cli("check", cwd=project_dir).returncode == 2


@pytest.mark.slow  # starts the real `publisher` command
def test_verbose_after_the_subcommand_logs(project_dir):
    quiet = run_cli("feeds", "build", cwd=project_dir)
    loud = run_cli("feeds", "build", "-v", cwd=project_dir)
    assert quiet.returncode == loud.returncode == 0, loud.stderr
    assert len(loud.stderr) > len(quiet.stderr)
    assert "feeds" in written(project_dir)


def test_hoisting_leaves_option_values_and_arguments_alone():
    command = typer.main.get_command(app)
    assert hoist_global_options(["send", "weekly", "--to", "-v", "-c", "x.yaml"], command) == [
        "-c",
        "x.yaml",
        "send",
        "weekly",
        "--to",
        "-v",
    ]
    assert hoist_global_options(["items", "--topic", "-c", "-vv"], command) == [
        "-vv",
        "items",
        "--topic",
        "-c",
    ]
    assert hoist_global_options(["subscribers", "import", "--", "-v"], command) == [
        "subscribers",
        "import",
        "--",
        "-v",
    ]
    assert hoist_global_options(["check", "--config=a.yaml", "--verbose"], command) == [
        "--config=a.yaml",
        "--verbose",
        "check",
    ]


@pytest.mark.slow  # starts the real `publisher` command
def test_an_option_value_that_looks_like_a_global_option_stays_with_its_option(project_dir):
    result = run_cli("send", "weekly", "--to", "-v", cwd=project_dir)
    assert_clean_failure(result, 2, "'-v' is not an email address")
