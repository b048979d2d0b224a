"""What a send says happened: edition statuses, exit codes, `publisher editions`, one
uncertain batch resent, bounces and temporary refusals, TLS and address problems, and the
editions feed and archive index leaving out an edition that reached nobody."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from publisher.cli import app
from publisher.deliver import deliver_edition
from publisher.errors import DeliveryError
from publisher.pipeline import send_edition
from publisher.store import ledger
from publisher.store.editions import list_editions
from publisher.store.feeds_queries import sent_editions
from publisher.store.models import SubscriberRow
from publisher.store.subscribers import SubscriberInput, import_subscribers
from tests.servers.data import add_edition, add_subscribers, config_text
from tests.servers.sendgrid import FakeSendGrid
from tests.servers.smtp import SmtpServer

API_KEY = "SG.outcomes-key"


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    with FakeSendGrid(api_key=API_KEY) as fake:
        yield fake


def _sendgrid(make_config, server, extra: str = ""):
    options = f"  sendgrid:\n    host: {server.url}\n    timeout: 2\n{extra}"
    return make_config(config_text("sendgrid", delivery=options))


@pytest.fixture
def cli(project, database_url, monkeypatch):
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(
            app, ["-c", str(project / "schedules.yaml"), *args], standalone_mode=False
        )

    return run


def test_a_send_that_fails_for_everyone_is_failed_exit_5_and_never_published(
    make_config, server, store, fixed_now, cli, project
):
    """Six recipients, a bad key (401 for every batch, fewer batches than
    max_failed_batches): 'failed', not 'sent'; no editions feed entry, no archive link."""
    server.api_key = "SG.another-key"
    config = _sendgrid(make_config, server)
    add_subscribers(store, fixed_now, 6)
    edition = add_edition(store, fixed_now)
    index = project / "archive" / "weekly" / "index.html"
    report = send_edition(config, store, edition, now=fixed_now)
    assert report.status == "failed" and report.exit_code == 5 and report.failed == 6
    assert "failed (reached nobody)" in report.note
    assert sent_editions(store, "weekly") == []
    assert 'href="1.html"' not in index.read_text()
    [summary] = list_editions(store, "weekly")
    assert (summary.status, summary.failed, summary.recipients) == ("failed", 6, 0)
    result = cli("send", "weekly", "--resume")  # still failing: exit 5 again
    assert result.return_value == 5, result.output


def test_an_uncertain_batch_exits_3_is_listed_and_can_be_resent_alone(
    make_config, server, store, fixed_now, cli, monkeypatch
):
    _sendgrid(make_config, server, "    batch_size: 2\n    workers: 1\n")
    emails = add_subscribers(store, fixed_now, 6)
    edition = add_edition(store, fixed_now)
    server.plan = ["drop"]  # the first batch: accepted, no answer
    first = cli("send", "weekly", "--resume")
    assert first.return_value == 3, first.output
    assert "sent with 2 uncertain" in first.output and "--resend-batch N" in first.output
    [summary] = list_editions(store, "weekly")
    assert (summary.sent, summary.uncertain, summary.recipients) == (4, 2, 6)
    assert summary.uncertain_batches == (1,)
    listing = cli("editions").output.splitlines()
    assert listing[0] == "weekly #1: sent with 2 uncertain"
    assert "  sent 4, uncertain 2, failed 0, skipped 0" in listing
    assert "  uncertain batches: 1" in listing
    assert cli("send", "weekly", "--resend-batch", "2").exception is not None  # none uncertain
    again = cli("send", "weekly", "--resend-batch", "1")
    assert again.return_value in (0, None), again.output
    assert sorted(server.recipients) == sorted(emails + emails[:2])  # that batch only, again
    assert ledger.counts(store, edition) == {"sent": 6}


def test_a_temporary_refusal_is_retried_on_resume_a_bounded_number_of_times(
    make_config, store, fixed_now, tmp_path
):
    with SmtpServer(tmp_path) as smtp:
        options = (
            f"  smtp:\n    host: 127.0.0.1\n    port: {smtp.port}\n    security: starttls\n"
            f"    ca_file: {smtp.ca_file}\n    timeout: 5\n"
        )
        config = make_config(config_text("smtp", delivery=options))
        import_subscribers(store, [SubscriberInput("later@example.org", "L")], now=fixed_now)
        add_subscribers(store, fixed_now, 2)
        edition = add_edition(store, fixed_now)
        runs = [deliver_edition(config, store, edition, now=fixed_now) for _ in range(5)]
        assert [r.failed for r in runs] == [1, 1, 1, 0, 0]  # 3 sends in all, then left failed
        assert smtp.handler.refused == ["later@example.org"] * 3
        assert runs[0].failures[0][1].startswith("450")
        assert ledger.counts(store, edition) == {"sent": 2, "failed": 1}


def test_an_unverifiable_certificate_is_permanent_and_names_ca_file(
    make_config, store, fixed_now, tmp_path
):
    with SmtpServer(tmp_path) as smtp:
        options = (
            f"  smtp:\n    host: 127.0.0.1\n    port: {smtp.port}\n    security: starttls\n"
            "    timeout: 5\n"
        )  # no ca_file: the test CA is not trusted
        config = make_config(config_text("smtp", delivery=options))
        add_subscribers(store, fixed_now, 2)
        report = deliver_edition(config, store, add_edition(store, fixed_now), now=fixed_now)
        assert report.requests == 1  # never retried
        assert report.status == "failed" and "ca_file" in report.failures[0][1]
        assert smtp.messages == []


@pytest.mark.parametrize("smtputf8", [False, True])
def test_a_non_ascii_address_needs_smtputf8_else_fails_alone_with_a_reason(
    make_config, store, fixed_now, tmp_path, smtputf8
):
    with SmtpServer(tmp_path, smtputf8=smtputf8) as smtp:
        options = (
            f"  smtp:\n    host: 127.0.0.1\n    port: {smtp.port}\n    security: starttls\n"
            f"    ca_file: {smtp.ca_file}\n    timeout: 5\n"
        )
        config = make_config(config_text("smtp", delivery=options))
        emails = add_subscribers(store, fixed_now, 2)
        edition = add_edition(store, fixed_now)
        with store.session() as session:  # past the import's checks: the last guard
            row = session.get(SubscriberRow, 1)
            row.email = "zoë@example.org"
        report = deliver_edition(config, store, edition, now=fixed_now)
        received = [r for m in smtp.messages for r in m.recipients]
        if smtputf8:  # sent with SMTPUTF8, the To header in UTF-8 (RFC 6532)
            assert report.sent == 2 and received == ["zoë@example.org", *emails[1:]]
            assert "To: Person 0 <zoë@example.org>".encode() in smtp.messages[0].data
        else:
            assert report.failed == 1 and report.sent == 1 and received == emails[1:]
            assert "SMTPUTF8" in report.failures[0][1]


def test_a_subject_with_a_line_break_refuses_the_edition(make_config, store, fixed_now):
    config = make_config(config_text("file"))
    add_subscribers(store, fixed_now, 2)
    edition = add_edition(store, fixed_now, subject="Weekly\r\nBcc: everyone@example.net")
    with pytest.raises(DeliveryError, match="control character"):
        deliver_edition(config, store, edition, now=fixed_now)
    assert not (config.root / "outbox").exists() or not any((config.root / "outbox").rglob("*"))


def test_the_summary_counts_the_whole_edition_beside_this_run(make_config, store, fixed_now):
    config = make_config(config_text("file"))
    add_subscribers(store, fixed_now, 4)
    edition = add_edition(store, fixed_now)
    first = deliver_edition(config, store, edition, now=fixed_now)
    assert first.note.startswith("weekly #1: 4 sent to ") and "whole edition" not in first.note
    add_subscribers(store, fixed_now, 2, start=4)  # joined since: a second run reaches them
    second = deliver_edition(config, store, edition, now=fixed_now)
    assert "2 sent to " in second.note and "4 skipped" in second.note
    assert "(the whole edition: 6 sent)" in second.note
