"""Sends that finish: an edition composed and stored by a send that stopped before sending
(a missing secret, a crash) is found and sent by the next plain `send`, `run --once` and
daemon slot; every error that stops a send says how to continue (issue 18)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from publisher.cli import app
from publisher.pipeline import compose_campaign, run_campaign_slot
from publisher.store.editions import list_editions
from tests.servers.data import add_posts, add_subscribers
from tests.servers.sendgrid import FakeSendGrid


def config_text(backend: str, delivery: str = "") -> str:
    """One campaign whose edition holds the articles of add_posts."""
    return (
        "campaigns:\n  - name: weekly\n    title: The Weekly\n    subject: This week\n"
        "    sections:\n      - {name: posts, kinds: [article], max: 5, title: Posts}\n"
        f"delivery:\n  backend: {backend}\n  backoff_base: 0.01\n  backoff_max: 0.05\n" + delivery
    )


@pytest.fixture
def cli(project, database_url, monkeypatch, fixed_now):
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", database_url)
    monkeypatch.delenv("PUBLISHER_DELIVERY", raising=False)
    for module in ("delivery", "schedule"):  # the command's clock: fixed
        monkeypatch.setattr(f"publisher.cli.{module}.utc_now", lambda: fixed_now)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(
            app, ["-c", str(project / "schedules.yaml"), *args], standalone_mode=False
        )

    return run


def sendgrid_config(make_config, url: str) -> None:
    make_config(config_text("sendgrid", delivery=f"  sendgrid:\n    host: {url}\n    workers: 1\n"))


def stopped_send(cli, store, fixed_now, monkeypatch, make_config, server) -> None:
    """`publisher send` without SENDGRID_API_KEY: the edition is composed and stored, the
    send stops, and the error says which command sends it once the key is set."""
    sendgrid_config(make_config, server.url)
    add_subscribers(store, fixed_now, 3)
    add_posts(store, fixed_now)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    failed = cli("send", "weekly")
    assert failed.exception is not None, failed.output
    message = str(failed.exception)
    assert "SENDGRID_API_KEY" in message
    assert "edition 1 is stored and not fully sent" in message
    assert "`publisher send weekly` sends it" in message and "--resume" not in message
    assert [(e.number, e.status) for e in list_editions(store, "weekly")] == [(1, "composed")]
    assert server.recipients == []
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.k")


def test_the_next_plain_send_sends_an_edition_a_failed_send_stored(
    cli, store, fixed_now, monkeypatch, make_config
):
    with FakeSendGrid(api_key="SG.k") as server:
        stopped_send(cli, store, fixed_now, monkeypatch, make_config, server)
        sent = cli("send", "weekly")
        assert sent.exception is None, sent.output
        assert "edition 1 was composed earlier and never sent; sending it now" in sent.output
        assert "nothing new" not in sent.output
        assert "weekly #1: 3 sent" in sent.output
        assert sorted(server.recipients) == [f"person{i}@example.org" for i in range(3)]
        assert [(e.number, e.status) for e in list_editions(store, "weekly")] == [(1, "sent")]
        again = cli("send", "weekly")  # now there is nothing new: and it says so
        assert "nothing new, nothing sent" in again.output
        assert len(sorted(server.recipients)) == 3


def test_run_once_sends_an_edition_a_failed_send_stored(
    cli, store, fixed_now, monkeypatch, make_config
):
    with FakeSendGrid(api_key="SG.k") as server:
        stopped_send(cli, store, fixed_now, monkeypatch, make_config, server)
        run = cli("run", "--once")
        assert run.exception is None, run.output
        assert "weekly: edition 1 was composed earlier and never sent" in run.output
        assert "weekly #1: 3 sent" in run.output
        assert "nothing new" not in run.output
        assert sorted(server.recipients) == [f"person{i}@example.org" for i in range(3)]
        assert [(e.number, e.status) for e in list_editions(store, "weekly")] == [(1, "sent")]


def test_run_once_reports_an_edition_whose_send_did_not_finish(
    cli, store, fixed_now, monkeypatch, make_config
):
    with FakeSendGrid(api_key="SG.k", plan=[401] * 10) as server:
        delivery = f"  max_failed_batches: 1\n  sendgrid:\n    host: {server.url}\n"
        make_config(config_text("sendgrid", delivery + "    workers: 1\n    batch_size: 1\n"))
        monkeypatch.setenv("SENDGRID_API_KEY", "SG.k")
        add_subscribers(store, fixed_now, 2)
        add_posts(store, fixed_now)
        paused = cli("send", "weekly")
        assert "PAUSED" in paused.output
        add_posts(store, fixed_now + timedelta(hours=3), 1)  # something new arrives
        run = cli("run", "--once")
        assert run.exception is None, run.output
        assert "weekly: edition 1 was not fully sent (paused)" in run.output
        assert "`publisher send weekly --resume` finishes it" in run.output
        assert "nothing new" not in run.output
        assert [e.number for e in list_editions(store, "weekly")] == [1]  # none behind it
        monkeypatch.delenv("SENDGRID_API_KEY")
        stopped = cli("send", "weekly", "--resume")
        assert "SENDGRID_API_KEY" in str(stopped.exception)
        assert "once this is fixed, `publisher send weekly --resume` sends it" in str(
            stopped.exception
        )


def test_a_daemon_slot_sends_an_edition_composed_earlier(store, fixed_now, make_config):
    config = make_config(config_text("file"))
    add_subscribers(store, fixed_now, 2)
    add_posts(store, fixed_now)
    earlier = compose_campaign(config, store, "weekly", now=fixed_now)  # then the send died
    assert earlier is not None
    slot = fixed_now + timedelta(hours=1)
    outcome = run_campaign_slot(config, store, "weekly", slot, now=slot)
    assert outcome.status == "sent", outcome.detail
    assert outcome.edition_id == earlier.id
    assert "edition 1, composed earlier and never sent: weekly #1: 2 sent" in outcome.detail
    assert [(e.number, e.status) for e in list_editions(store, "weekly")] == [(1, "sent")]
    again = run_campaign_slot(config, store, "weekly", slot + timedelta(days=1), now=slot)
    assert (again.status, again.detail) == ("skipped", "nothing new")
