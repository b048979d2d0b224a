"""File outbox: .eml files that parse, with both parts and the list headers unchanged."""

from __future__ import annotations

import email
import re
from email.policy import default

from publisher.deliver import deliver_edition, dry_run
from publisher.store import ledger, plan, work
from publisher.store.editions import get_edition
from publisher.store.numbers import link_key
from publisher.store.subscribers import SubscriberInput, import_subscribers, iter_subscribers
from publisher.support.marks import edition_mark
from tests.conftest import present
from tests.servers.data import add_edition, add_subscribers, config_text


def _outbox(project, number=1):
    return project / "outbox" / "weekly" / str(number)


def test_eml_files_parse_with_parts_and_exact_headers(store, make_config, project, fixed_now):
    config = make_config(config_text("file"))
    import_subscribers(
        store, [SubscriberInput("maria@example.org", "María González")], now=fixed_now
    )
    add_subscribers(store, fixed_now, 2)
    edition = add_edition(store, fixed_now, subject="Weekly — for %%NAME%%")
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert report.sent == 3 and report.destination == "outbox/weekly/1"
    maria = next(iter_subscribers(store))
    raw = (_outbox(project) / f"{maria.id}.eml").read_bytes()
    message = email.message_from_bytes(raw, policy=default)
    mark = edition_mark(link_key(store, now=fixed_now), edition, maria.id)  # which edition
    unsubscribe = f"https://www.example.org/news/unsubscribe?token={maria.token}&e={mark}"
    expected = f"<{unsubscribe}>, <mailto:news@example.org?subject=unsubscribe%20{maria.token}>"
    assert message["List-Unsubscribe"] == expected
    assert f"List-Unsubscribe: {expected}\r\n".encode() in raw  # one line, not folded
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == '"Economic Justice Weekly" <weekly.www.example.org>'
    assert re.fullmatch(
        rf"<{edition}\.[0-9a-f]{{16}}\.[0-9a-f]{{16}}@www\.example\.org>", message["Message-ID"]
    )
    assert message["Date"] == "Wed, 25 Nov 2026 12:00:00 +0000"
    assert message["To"] == "María González <maria@example.org>"
    assert message["Subject"] == "Weekly — for María González"
    assert message["From"] == "news@example.org"
    text = present(message.get_body(("plain",))).get_content()
    html = present(message.get_body(("html",))).get_content()
    assert "Hello, María González!" in text and unsubscribe in text
    assert "Hello, María González!" in html
    assert f'href="{unsubscribe.replace("&", "&amp;")}"' in html
    assert "café" in html and "%%" not in html + text
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_message_ids_are_unique_and_html_escaped_names(store, make_config, project, fixed_now):
    config = make_config(config_text("file"))
    import_subscribers(store, [SubscriberInput("ann@example.org", "Ann & <Bob>")], now=fixed_now)
    add_subscribers(store, fixed_now, 20)
    deliver_edition(config, store, add_edition(store, fixed_now), now=fixed_now)
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=default)
        for p in sorted(_outbox(project).glob("*.eml"))
    ]
    assert len({m["Message-ID"] for m in messages}) == 21
    ann = next(m for m in messages if "ann@" in m["To"])
    assert "Hello, Ann &amp; &lt;Bob&gt;!" in present(ann.get_body(("html",))).get_content()
    assert "Hello, Ann & <Bob>!" in present(ann.get_body(("plain",))).get_content()


def test_second_send_writes_nothing_new(store, make_config, project, fixed_now):
    config = make_config(config_text("file"))
    add_subscribers(store, fixed_now, 5)
    edition = add_edition(store, fixed_now)
    deliver_edition(config, store, edition, now=fixed_now)
    again = deliver_edition(config, store, edition, now=fixed_now)
    assert again.sent == 0 and again.skipped == 5
    assert len(list(_outbox(project).glob("*.eml"))) == 5
    assert ledger.counts(store, edition) == {"sent": 5}


def test_dry_run_sends_nothing_and_shows_a_sample(store, make_config, project, fixed_now):
    config = make_config(config_text("file", delivery="  file:\n    batch_size: 2\n"))
    add_subscribers(store, fixed_now, 5)
    edition = add_edition(store, fixed_now)
    plan = dry_run(config, store, present(get_edition(store, edition)), now=fixed_now)
    assert (plan.recipients, plan.batches, plan.already_done) == (5, 3, 0)
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in plan.sample
    assert not list(_outbox(project).glob("*.eml"))
    assert ledger.counts(store, edition) == {}


def test_backend_chosen_by_environment(store, make_config, monkeypatch, fixed_now):
    from publisher.deliver import make_backend
    from publisher.errors import DeliveryError

    config = make_config(config_text("file"))
    monkeypatch.setenv("PUBLISHER_DELIVERY", "nonsense")
    try:
        make_backend(config)
    except DeliveryError as exc:
        assert "file, sendgrid, smtp" in str(exc)
    else:
        raise AssertionError("an unknown backend name must be an error")


def test_resume_rewrites_batches_left_in_flight(store, make_config, project, fixed_now):
    """The outbox is idempotent, so a batch in flight at a crash is simply written again."""
    config = make_config(config_text("file"))
    add_subscribers(store, fixed_now, 6)
    edition = add_edition(store, fixed_now)
    gone = work.Lease("elsewhere:1:gone", 60.0, lambda: 0.0)  # its lease lapsed long ago
    plan.start_round(store, edition, now=fixed_now)
    claimed = plan.claim_next(
        store, gone, edition, [], batch_size=4, now=fixed_now, requested_to=None
    )
    assert claimed is not None and len(claimed.rows) == 4  # ... and then the crash
    report = deliver_edition(config, store, edition, now=fixed_now)
    assert report.sent == 6 and report.recovered_uncertain == 0
    assert len(list(_outbox(project).glob("*.eml"))) == 6
    assert ledger.counts(store, edition) == {"sent": 6}


def test_test_send_is_kept_apart(store, make_config, project, fixed_now):
    from publisher.deliver import send_test_message

    config = make_config(config_text("file"))
    edition = add_edition(store, fixed_now)
    stored = present(get_edition(store, edition))
    assert send_test_message(config, store, stored, "Editor@example.net", now=fixed_now) is None
    assert [p.name for p in _outbox(project).iterdir()] == ["test-Editor@example.net.eml"]
    assert ledger.counts(store, edition) == {}
