"""The welcome email (issue 21) against a real server, on SQLite and PostgreSQL: one per
confirmation, whatever is clicked twice or runs twice; none when not configured or for a
person already active; through the file outbox and SMTP; its admin page and preview; a
hostile configured subject stays literal."""

from __future__ import annotations

import email
import re
import threading
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import httpx
import pytest
from lxml import html as lxml_html

from publisher.config import load_config
from publisher.deliver.welcome import prepare_welcome, resume_welcomes, send_welcome
from publisher.errors import ConfigError
from publisher.pipeline import refresh_inputs
from publisher.render.checks import check_templates
from publisher.store import ledger
from publisher.store.subscribers import find_subscriber
from publisher.store.welcome import claim_welcome, welcome_counts
from publisher.web.security import Tokens
from tests.admin_support import STAFF, add_accounts, log_in
from tests.conftest import present, write_config
from tests.servers.data import add_edition, add_subscribers
from tests.servers.smtp import SmtpServer
from tests.web_support import SECRET, WEB_CONFIG, free_port, serve, write_web_config

WELCOME = """\
welcome:
  subject: Welcome to Test Org
  preheader: What to expect from us
"""
HOSTILE = '<b>{{ 7*7 }}</b> & "quoted" %%NAME%%'
SMTP_DELIVERY = """\
delivery:
  backend: smtp
  backoff_base: 0.01
  backoff_max: 0.05
  smtp:
    host: 127.0.0.1
    port: {port}
    security: starttls
    ca_file: {ca_file}
    timeout: 5
"""


def welcome_config(welcome: str = WELCOME, delivery: str | None = None) -> str:
    base = WEB_CONFIG
    if delivery is not None:
        base = base[: base.index("delivery:")] + delivery
    return base + welcome.replace("{", "{{").replace("}", "}}") if welcome else base


def _csrf(page: str) -> str:
    return present(re.search(r'name="csrf" value="([^"]+)"', page)).group(1)


def sign_up(served, address: str) -> None:
    page = httpx.get(f"{served.url}/subscribe").text
    form = {"csrf": _csrf(page), "email": address, "name": "Ana", "consent": "yes"}
    before = len(served.jobs)
    assert httpx.post(f"{served.url}/subscribe", data=form).status_code == 200
    served.wait_for_jobs(before + 1)


def confirm_form(served, store, address: str) -> dict[str, str]:
    """The confirm form's fields for this person, as the link in their email opens it."""
    person = present(find_subscriber(store, email=address))
    token = Tokens(SECRET, served.clock).link_token(
        "confirm", person.ref or "", person.email, person.token
    )
    page = httpx.get(f"{served.url}/confirm", params={"token": token})
    assert page.status_code == 200
    if "already confirmed" in page.text:
        return {"token": token, "csrf": Tokens(SECRET, served.clock).form_token("confirm", token)}
    return {"csrf": _csrf(page.text), "token": token}


def confirm(served, form: dict[str, str], *, job: bool = True) -> httpx.Response:
    before = len(served.jobs)
    answer = httpx.post(f"{served.url}/confirm", data=form)
    assert answer.status_code == 200 and "You are subscribed" in answer.text
    if job:
        served.wait_for_jobs(before + 1)  # the welcome goes after the answer
    return answer


def welcomes(outbox: Path) -> list[Path]:
    return sorted((outbox / "welcome").glob("*/*.eml"))


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def test_confirming_once_sends_one_welcome_whose_unsubscribe_link_works(project, store):
    with serve(project, store, config_text=welcome_config()) as served:
        sign_up(served, "ana@example.org")
        confirm(served, confirm_form(served, store, "ana@example.org"))
        (path,) = welcomes(served.outbox)
        message = parse(path.read_bytes())
        assert message["Subject"] == "Welcome to Test Org"
        assert message["From"] == "news@example.org" and message["To"] == "Ana <ana@example.org>"
        text = present(message.get_body(("plain",))).get_content()
        assert "Hello Ana," in text and "What to expect from us" in text
        ana = present(find_subscriber(store, email="ana@example.org"))
        link = present(re.search(r"(http://\S+/unsubscribe\?token=\S+)", text)).group(1)
        assert link.endswith(ana.token)  # the token the confirmation gave them
        html = present(message.get_body(("html",))).get_content()
        assert f"unsubscribe?token={ana.token}" in html and "%%" not in html
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        preferences = present(re.search(r"(http://\S+/preferences\?token=\S+)", text)).group(1)
        assert "Your email preferences" in httpx.get(preferences).text
        answer = httpx.post(link, data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 200 and "You are unsubscribed" in answer.text
        assert present(find_subscriber(store, id=ana.id)).status == "unsubscribed"
    counts = welcome_counts(store)
    assert (counts.sent, counts.failed, counts.sending, counts.versions) == (1, 0, 0, 1)


def test_not_configured_sends_none(project, store):
    add_accounts(store)
    with serve(project, store) as served:
        sign_up(served, "ana@example.org")
        confirm(served, confirm_form(served, store, "ana@example.org"), job=False)
        assert present(find_subscriber(store, email="ana@example.org")).status == "active"
        served.wait_for_mail(1)  # the confirmation alone
        with httpx.Client(base_url=served.url) as client:
            log_in(client, STAFF["viewer"])
            page = client.get("/admin/welcome").text
    assert "No welcome email is configured" in page and 'data-count="sent">0<' in page
    assert welcomes(served.outbox) == [] and welcome_counts(store).versions == 0


def test_a_person_already_active_gets_none_when_confirming_again(project, store, fixed_now):
    add_subscribers(store, fixed_now, 1)  # person0@example.org, active (imported)
    with serve(project, store, config_text=welcome_config()) as served:
        form = confirm_form(served, store, "person0@example.org")
        answer = httpx.post(f"{served.url}/confirm", data=form)
        assert "already confirmed" in answer.text
        sign_up(served, "ana@example.org")
        form = confirm_form(served, store, "ana@example.org")
        confirm(served, form)
        again = confirm_form(served, store, "ana@example.org")  # her old link, re-used
        assert "already confirmed" in httpx.post(f"{served.url}/confirm", data=again).text
        assert "already confirmed" in httpx.post(f"{served.url}/confirm", data=form).text
    assert [p.name for p in welcomes(served.outbox)] == [
        f"{present(find_subscriber(store, email='ana@example.org')).id}.eml"
    ]
    assert welcome_counts(store).sent == 1


@pytest.fixture
def smtp_server(tmp_path):
    with SmtpServer(tmp_path) as server:
        yield server


def smtp_config(server: SmtpServer, welcome: str = WELCOME) -> str:
    delivery = SMTP_DELIVERY.format(port=server.port, ca_file=server.ca_file)
    return welcome_config(welcome, delivery)


def welcomes_received(server: SmtpServer) -> list[EmailMessage]:
    messages = [parse(m.data) for m in server.messages]
    return [m for m in messages if str(m["Subject"]).startswith("Welcome")]


def test_confirm_clicked_twice_and_at_once_sends_one_each_over_smtp(project, store, smtp_server):
    with serve(project, store, config_text=smtp_config(smtp_server)) as served:
        for address in ("ana@example.org", "bo@example.org"):
            sign_up(served, address)
        twice = confirm_form(served, store, "ana@example.org")
        confirm(served, twice)
        confirm(served, twice, job=False)  # the second press: already confirmed
        at_once = confirm_form(served, store, "bo@example.org")
        before, start = len(served.jobs), threading.Barrier(2)
        answers: list[httpx.Response] = []

        def press() -> None:
            start.wait()
            answers.append(httpx.post(f"{served.url}/confirm", data=at_once))

        threads = [threading.Thread(target=press) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [200, 200]
        served.wait_for_jobs(before + 1)
    received = welcomes_received(smtp_server)
    assert sorted(str(m["To"]) for m in received) == [
        "Ana <ana@example.org>",
        "Ana <bo@example.org>",
    ]
    assert all(m["Subject"] == "Welcome to Test Org" for m in received)
    assert welcome_counts(store).sent == 2


def test_two_processes_and_a_changed_configuration_still_send_once(
    project, store, smtp_server, fixed_now
):
    add_subscribers(store, fixed_now, 1)
    person = present(find_subscriber(store, email="person0@example.org"))
    delivery = SMTP_DELIVERY.format(port=smtp_server.port, ca_file=smtp_server.ca_file)
    config = load_config(write_config(project, delivery + WELCOME))
    outcomes: list[str] = []
    start = threading.Barrier(3)

    def process() -> None:
        start.wait()
        outcomes.append(send_welcome(config, store, person.id, now=fixed_now))

    threads = [threading.Thread(target=process) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["already", "already", "sent"]
    changed = WELCOME.replace("Welcome to Test Org", "Welcome, new wording")
    new_config = load_config(write_config(project, delivery + changed))
    assert send_welcome(new_config, store, person.id, now=fixed_now) == "already"
    (received,) = welcomes_received(smtp_server)
    assert received["To"] == "Person 0 <person0@example.org>"
    assert welcome_counts(store).versions == 2  # the new wording was stored, never sent


def test_a_hostile_configured_subject_stays_literal(project, store):
    hostile = WELCOME.replace("Welcome to Test Org", f"'{HOSTILE}'")
    literal = HOSTILE
    with serve(project, store, config_text=welcome_config(hostile)) as served:
        sign_up(served, "ana@example.org")
        confirm(served, confirm_form(served, store, "ana@example.org"))
        (path,) = welcomes(served.outbox)
        add_accounts(store)
        with httpx.Client(base_url=served.url) as client:
            log_in(client, STAFF["viewer"])
            page = client.get("/admin/welcome").text
    message = parse(path.read_bytes())
    # read as written: no template evaluated, no placeholder filled (an invisible joiner
    # keeps %%NAME%% from being one)
    assert str(message["Subject"]).replace("\u200c", "") == literal
    assert "49" not in str(message["Subject"]) and "Ana" not in str(message["Subject"])
    html = present(message.get_body(("html",))).get_content()
    assert "&lt;b&gt;{{ 7*7 }}&lt;/b&gt;" in html  # shown as text
    assert lxml_html.fromstring(html.encode()).xpath("//b") == []  # never an element
    assert "&lt;b&gt;{{ 7*7 }}&lt;/b&gt; &amp; &#34;quoted&#34;" in page or (
        "&lt;b&gt;{{ 7*7 }}&lt;/b&gt; &amp; &quot;quoted&quot;" in page
    )
    assert lxml_html.fromstring(page.encode()).xpath("//b") == []


def test_the_admin_page_and_preview_need_a_login_and_show_the_welcome(project, store, fixed_now):
    add_accounts(store)
    weekly = add_edition(store, fixed_now)  # weekly #1, sent: the welcome links to it
    ledger.set_edition_status(store, weekly, "sent", sent_at=fixed_now)
    linked = WELCOME + "  latest_edition: weekly\n"
    with serve(project, store, config_text=welcome_config(linked)) as served:
        with httpx.Client(base_url=served.url) as nobody:
            for path in ("/admin/welcome", "/admin/welcome/preview"):
                answer = nobody.get(path)
                assert answer.status_code in (302, 303) and "login" in answer.headers["location"]
        with httpx.Client(base_url=served.url) as client:
            log_in(client, STAFF["viewer"])
            page = client.get("/admin/welcome")
            preview = client.get("/admin/welcome/preview")
    assert page.status_code == 200 and "Welcome to Test Org" in page.text
    assert 'data-count="sent">0<' in page.text and "/archive/weekly/1.html" in page.text
    assert preview.status_code == 200 and "sandbox" in preview.headers["content-security-policy"]
    assert "Hello friend," in preview.text and "unsubscribe?token=preview" in preview.text
    assert "/archive/weekly/1.html" in preview.text  # the latest edition, linked
    assert welcome_counts(store).versions == 0  # looking stores nothing


def test_configuration_refuses_unknown_keys_and_campaigns(project):
    with pytest.raises(ConfigError, match="unknown key 'sender'"):
        load_config(write_config(project, WELCOME + "  sender: someone@example.org\n"))
    with pytest.raises(ConfigError, match="unknown campaign 'weekyl'"):
        load_config(write_config(project, WELCOME + "  latest_edition: weekyl\n"))


def test_what_a_stopped_sender_left_is_finished_once_and_never_twice(
    project, store, smtp_server, fixed_now
):
    add_subscribers(store, fixed_now, 3)
    delivery = SMTP_DELIVERY.format(port=smtp_server.port, ca_file=smtp_server.ca_file)
    config = load_config(write_config(project, delivery + WELCOME))
    welcome = present(prepare_welcome(config, store, now=fixed_now))
    people = [present(find_subscriber(store, email=f"person{i}@example.org")) for i in range(3)]
    claimed, written, busy = (p.id for p in people)
    # killed after claiming (nothing written), killed after writing, still sending
    assert claim_welcome(store, welcome.edition_id, claimed, now=fixed_now)
    assert claim_welcome(store, welcome.edition_id, written, now=fixed_now)
    ledger.mark_range(
        store, welcome.edition_id, written, written, written, ledger.REQUESTED, now=fixed_now
    )
    later = fixed_now + timedelta(minutes=10)
    assert claim_welcome(store, welcome.edition_id, busy, now=later)
    outcomes: list[dict[str, int]] = []
    start = threading.Barrier(2)

    def resume() -> None:  # two processes confirming someone at once
        start.wait()
        outcomes.append(resume_welcomes(config, store, now=fixed_now + timedelta(minutes=20)))

    threads = [threading.Thread(target=resume) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(str(m["To"]) for m in welcomes_received(smtp_server)) == [
        "Person 0 <person0@example.org>"
    ]
    assert sum(o.get("sent", 0) for o in outcomes) == 1
    counts = welcome_counts(store)
    assert (counts.sent, counts.uncertain, counts.sending) == (1, 1, 1)
    assert send_welcome(config, store, claimed, now=fixed_now) == "already"
    assert resume_welcomes(config, store, now=later + timedelta(minutes=16)) == {"sent": 1}
    assert len(welcomes_received(smtp_server)) == 2  # the busy one, once its sender was gone
    assert resume_welcomes(config, store, now=later + timedelta(hours=1)) == {}


def test_the_next_confirmation_finishes_a_welcome_a_stopped_server_left(project, store, fixed_now):
    add_subscribers(store, fixed_now, 1)
    person = present(find_subscriber(store, email="person0@example.org"))
    with serve(project, store, config_text=welcome_config()) as served:
        welcome = present(prepare_welcome(served.config, store, now=served.clock()))
        assert claim_welcome(store, welcome.edition_id, person.id, now=served.clock())
        served.clock.advance(minutes=16)  # the server stopped right after claiming
        sign_up(served, "ana@example.org")
        confirm(served, confirm_form(served, store, "ana@example.org"))
        ana = present(find_subscriber(store, email="ana@example.org"))
        assert [p.name for p in welcomes(served.outbox)] == sorted(
            [f"{person.id}.eml", f"{ana.id}.eml"]
        )
    assert welcome_counts(store).sent == 2


def test_the_daemons_collect_finishes_a_welcome_a_stopped_server_left(project, store, fixed_now):
    """No further confirmation needed: every collect (refresh_inputs: the daemon's collect
    job, `run --once`) finishes what a stopped sender left, once."""
    add_subscribers(store, fixed_now, 1)
    person = present(find_subscriber(store, email="person0@example.org"))
    config = write_web_config(project, free_port(), welcome_config())
    welcome = present(prepare_welcome(config, store, now=fixed_now))
    assert claim_welcome(store, welcome.edition_id, person.id, now=fixed_now)
    refresh_inputs(config, store, now=fixed_now + timedelta(minutes=1))  # not stale yet
    assert welcome_counts(store).sent == 0
    for _ in range(2):
        refresh_inputs(config, store, now=fixed_now + timedelta(minutes=16))
    assert [p.name for p in welcomes(project / "outbox")] == [f"{person.id}.eml"]
    assert welcome_counts(store).sent == 1


def test_publisher_check_renders_the_welcome(project):
    linked = WELCOME + "  latest_edition: weekly\n"
    campaign = "campaigns:\n  - name: weekly\n    title: Weekly\n    subject: This week\n"
    assert check_templates(load_config(write_config(project, campaign + linked))) == []
    missing = load_config(write_config(project, WELCOME + "  template: farewell\n"))
    (problem,) = check_templates(missing)
    assert problem.startswith("welcome: ") and "farewell.mjml" in problem
