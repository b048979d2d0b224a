"""`publisher send` and `publisher subscribers` through the real command line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from publisher.cli import app
from publisher.errors import PublisherError
from tests.servers.data import add_edition, add_subscribers, config_text
from tests.servers.sendgrid import FakeSendGrid


@pytest.fixture
def cli(project, make_config, database_url, monkeypatch):
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", database_url)
    make_config(config_text("file"))
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(
            app, ["-c", str(project / "schedules.yaml"), *args], standalone_mode=False
        )

    return run


def test_subscribers_import_and_list(cli, project):
    (project / "people.csv").write_text(
        "email,name,topics\nann@example.org,Ann,wages\nbad,,\n", encoding="utf-8"
    )
    result = cli("subscribers", "import", str(project / "people.csv"))
    assert "1 new" in result.output and "1 skipped" in result.output
    assert "invalid email address" in result.output
    listed = cli("subscribers", "list")
    assert "ann@example.org" in listed.output and "1 active" in listed.output


def test_send_resume_dry_run_and_test_send(cli, store, project, fixed_now):
    add_subscribers(store, fixed_now, 4)
    add_edition(store, fixed_now)
    plan = cli("send", "weekly", "--dry-run")
    assert plan.output.startswith("dry run: weekly #1 via file")  # the summary, no message
    assert "4 recipients in 1 batch," in plan.output
    assert "List-Unsubscribe" not in plan.output and len(plan.output.splitlines()) <= 3
    sample = cli("send", "weekly", "--dry-run", "--sample")
    assert sample.output.startswith("dry run: weekly #1 via file")  # the summary first
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in sample.output
    assert not (project / "outbox").exists() or not any((project / "outbox").rglob("*.eml"))
    test = cli("send", "weekly", "--to", "editor@example.net")
    assert "test message sent to editor@example.net" in test.output
    sent = cli("send", "weekly", "--resume")
    assert sent.exception is None, sent.output
    assert "weekly #1: 4 sent to outbox/weekly/1" in sent.output
    nothing = cli("send", "weekly", "--resume")
    assert isinstance(nothing.exception, PublisherError)
    assert "nothing left to send" in str(nothing.exception)


def test_send_without_new_items_sends_nothing(cli, store, fixed_now):
    add_subscribers(store, fixed_now, 2)
    result = cli("send", "weekly")
    assert "nothing new, nothing sent" in result.output


def test_paused_send_says_how_to_resume(cli, store, project, fixed_now, monkeypatch, make_config):
    with FakeSendGrid(api_key="SG.k", plan=[401] * 10) as server:
        make_config(
            config_text(
                "sendgrid",
                delivery=(
                    f"  max_failed_batches: 1\n  sendgrid:\n    host: {server.url}\n"
                    "    workers: 1\n    batch_size: 2\n"
                ),
            )
        )
        monkeypatch.setenv("SENDGRID_API_KEY", "SG.k")
        add_subscribers(store, fixed_now, 6)
        add_edition(store, fixed_now)
        result = cli("send", "weekly", "--resume")
        assert result.return_value == 1, result.output  # main() exits with it
        assert "PAUSED" in result.output and "publisher send weekly --resume" in result.output
        again = cli("send", "weekly")
        assert isinstance(again.exception, PublisherError)
        assert "--resume" in str(again.exception)


def test_check_reports_a_missing_sendgrid_key(cli, monkeypatch):
    monkeypatch.setenv("PUBLISHER_DELIVERY", "sendgrid")
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    result = cli("check")
    assert result.return_value == 2
    assert "SENDGRID_API_KEY" in result.output


def test_failures_beyond_the_first_five_are_counted(
    cli, store, fixed_now, monkeypatch, make_config
):
    with FakeSendGrid(api_key="SG.k", plan=[400] * 8) as server:
        make_config(
            config_text(
                "sendgrid",
                delivery=(
                    f"  max_failed_batches: 20\n  sendgrid:\n    host: {server.url}\n"
                    "    workers: 1\n    batch_size: 1\n"
                ),
            )
        )
        monkeypatch.setenv("SENDGRID_API_KEY", "SG.k")
        add_subscribers(store, fixed_now, 8)
        add_edition(store, fixed_now)
        result = cli("send", "weekly", "--resume")
    assert result.return_value == 5, result.output  # reached nobody
    listed = [line for line in result.output.splitlines() if line.startswith("failed: person")]
    assert len(listed) == 5
    assert "failed: and 3 more" in result.output
    assert "0 sent" in result.output and "8 failed" in result.output


def test_counts_read_as_words():
    from publisher.pipeline import EditionRecord, describe_edition
    from publisher.publish.feeds import FeedsReport
    from publisher.support.screen import count

    assert [count(n, "batch", "batches") for n in (0, 1, 2)] == [
        "0 batches",
        "1 batch",
        "2 batches",
    ]
    record = EditionRecord(1, "weekly", 3, "Subject", 1, created=True)
    assert describe_edition("weekly", record) == "weekly: edition 3 composed, 1 item"
    assert FeedsReport(written=1).note.startswith("feeds: 1 file written, 0 unchanged")
