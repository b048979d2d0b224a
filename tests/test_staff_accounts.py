"""Staff accounts worth trusting (issue 19), over plain HTTP against a real server with a
fixed clock: server-side sessions (a copied cookie dies at log-out, sessions listed and
ended, ended by a password change), throttling that cannot be aimed at the owner, one audit
row for a flood, the log-in form bound to its browser, a password typed as the address,
surrounding spaces, invitations and resets (single-use, expiring), TOTP and recovery codes,
the second factor's limit shared by two apps on one store."""

from __future__ import annotations

import email
import logging
import re
import statistics
import threading
import time
from datetime import timedelta
from email.policy import default

import httpx
import pyotp
import pytest
from sqlalchemy import func, select

from publisher.store import audit
from publisher.store.models import (
    AuditRow,
    LoginFailureRow,
    RecoveryCodeRow,
    StaffLinkRow,
    StaffSessionRow,
)
from publisher.store.staff import (
    StaffError,
    add_staff,
    check_login,
    find_staff,
    set_second_factor_policy,
)
from publisher.store.staff_access import (
    accept_invitation,
    create_link,
    new_recovery_codes,
    open_session,
    peek_link,
    prune_access,
    session_of,
    use_recovery_code,
)
from tests.admin_support import ADMIN_CONFIG, PASSWORD, STAFF, add_accounts, csrf_of, log_in
from tests.conftest import FIXED_NOW, present
from tests.web_support import serve

NEW_PASSWORD = "a brand new staff password"


@pytest.fixture
def served(project, store):
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as running:
        yield running


def client(served, ip: str = "192.0.2.10", agent: str = "test-browser") -> httpx.Client:
    """A browser at `ip` (uvicorn trusts X-Forwarded-For from 127.0.0.1, like a proxy)."""
    headers = {"x-forwarded-for": ip, "user-agent": agent}
    return httpx.Client(base_url=served.url, follow_redirects=True, timeout=60, headers=headers)


def signed_in(http: httpx.Client) -> bool:
    return http.get("/admin/").url.path == "/admin/"


def post_form(http: httpx.Client, path: str, page: str, **data: str) -> httpx.Response:
    return http.post(path, data={"csrf": csrf_of(page), **data})


def staff_mail(served, to: str) -> tuple[str, str]:
    """The subject and the link of the newest staff email to `to` in the file outbox."""
    path = served.outbox / "staff" / "0" / f"test-{to}.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=default)
    text = present(message.get_body(("plain",))).get_content()
    link = present(re.search(r"https?://\S+\?token=\S+", text)).group(0)
    return str(message["Subject"]), link.replace(served.config.organisation.public_url, "")


def test_a_copied_cookie_is_dead_after_log_out(served):
    with client(served) as http, client(served, "203.0.113.5") as thief:
        log_in(http, STAFF["editor"])
        thief.cookies.set("publisher_staff", present(http.cookies.get("publisher_staff")))
        assert signed_in(thief)  # the copy works while the session lives
        page = http.get("/admin/").text
        assert post_form(http, "/admin/logout", page).url.path == "/admin/login"
        assert not signed_in(thief) and not signed_in(http)


def test_sessions_are_listed_ended_and_end_with_a_password_change(served, store):
    with client(served) as a, client(served, "198.51.100.20", "other-browser") as b:
        log_in(a, STAFF["editor"])
        log_in(b, STAFF["editor"])
        page = a.get("/admin/account").text
        assert "198.51.100.20" in page and "other-browser" in page and "this one" in page
        session_b = present(re.search(r'name="session" value="([0-9a-f]+)"', page)).group(1)
        post_form(a, "/admin/account/sessions/end", page, session=session_b)
        assert not signed_in(b) and signed_in(a)
        # an owner ends anyone's sessions
        with client(served, "192.0.2.99") as owner:
            log_in(owner, STAFF["owner"])
            staff_page = owner.get("/admin/staff").text
            done = post_form(owner, "/admin/staff/sessions/end", staff_page, email=STAFF["editor"])
            assert "Ended 1 session of edu@example.org." in done.text
        assert not signed_in(a)
        log_in(a, STAFF["editor"])
        log_in(b, STAFF["editor"])
        page = a.get("/admin/account").text
        wrong = post_form(a, "/admin/account/password", page, current="not it at all",
                          new=NEW_PASSWORD, confirm=NEW_PASSWORD)  # fmt: skip
        assert wrong.status_code == 400 and signed_in(b)
        changed = post_form(a, "/admin/account/password", page, current=PASSWORD,
                            new=NEW_PASSWORD, confirm=NEW_PASSWORD)  # fmt: skip
        assert "other sessions were ended" in changed.text
        assert signed_in(a) and not signed_in(b)  # the changer stays, every other one ends
    with client(served, "192.0.2.50") as c:
        assert log_in(c, STAFF["editor"]).status_code == 401
        assert log_in(c, STAFF["editor"], NEW_PASSWORD).url.path == "/admin/"


def test_a_flood_cannot_lock_the_owner_out_nor_bury_the_audit_log(served, store):
    owner = client(served, "192.0.2.1")  # the owner's usual browser
    assert log_in(owner, STAFF["owner"]).url.path == "/admin/"
    owner.post("/admin/logout", data={"csrf": csrf_of(owner.get("/admin/").text)})
    for i in range(150):
        audit.record(store, "edu@example.org", "pause", f"weekly {i}", ip="192.0.2.7",
                     now=FIXED_NOW)  # fmt: skip
    with client(served, "198.51.100.66") as attacker:
        page = attacker.get("/admin/login").text
        codes = [
            attacker.post(
                "/admin/login",
                data={"csrf": csrf_of(page), "email": STAFF["owner"], "password": f"guess {i}"},
            ).status_code
            for i in range(500)
        ]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    with client(served, "192.0.2.200") as elsewhere:  # the owner, from another address
        assert log_in(elsewhere, STAFF["owner"]).url.path == "/admin/"
    # from the attacker's own address (a shared office NAT): the known browser still works
    owner.headers["x-forwarded-for"] = "198.51.100.66"
    assert log_in(owner, STAFF["owner"]).url.path == "/admin/"
    owner.close()
    with client(served, "198.51.100.66") as stranger:  # a new browser there is slowed
        assert log_in(stranger, STAFF["owner"]).status_code == 429
    entries = audit.recent(store)
    flood = {e.action: e.repeats for e in entries if e.ip == "198.51.100.66"}
    assert flood == {"failed login": 5, "login refused (too many failures)": 496, "login": 1}
    assert sum(e.action == "pause" for e in entries) == 150  # nothing pushed off the page
    with client(served, "198.51.100.77") as sprayer:  # many addresses from one place
        for i in range(60):
            assert log_in(sprayer, f"guess{i}@example.org", "guess").status_code in (401, 429)
    sprayed = [e for e in audit.recent(store) if e.ip == "198.51.100.77"]
    assert [(e.actor, e.action, e.repeats) for e in sprayed] == [
        ("(several addresses)", "login refused (too many failures)", 30),
        ("(several addresses)", "failed login", 30),
    ]
    served.clock.advance(minutes=16)
    with client(served, "192.0.2.1") as later:
        log_in(later, STAFF["viewer"])  # every log-in prunes what no longer counts
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(LoginFailureRow)) == 0


def test_the_login_form_is_bound_to_its_browser(served):
    with client(served) as a, client(served) as b:
        token_a = csrf_of(a.get("/admin/login").text)
        b.get("/admin/login")  # b has its own binding cookie
        data = {"csrf": token_a, "email": STAFF["owner"], "password": PASSWORD}
        assert b.post("/admin/login", data=data).status_code == 403
        assert not signed_in(b)
        assert a.post("/admin/login", data=data).url.path == "/admin/"


def test_a_password_typed_as_the_address_is_not_an_error_nor_kept(served, store, caplog):
    secret = "Tr0ub4dor&3 horse"
    with caplog.at_level(logging.DEBUG), client(served) as http:
        answer = log_in(http, secret, secret)
    assert answer.status_code == 401
    assert "The address or the password is wrong." in answer.text
    assert secret not in caplog.text
    assert secret not in " ".join(f"{e.actor} {e.target}" for e in audit.recent(store))
    with store.session() as session:
        keys = " ".join(session.scalars(select(LoginFailureRow.key)))
    assert "Tr0ub4dor" not in keys


def test_surrounding_spaces_are_part_of_the_password_in_the_cli_and_the_web(served, store):
    spaced = "  spaces around my password  "
    add_staff(store, "sam@example.org", "viewer", spaced, now=FIXED_NOW)  # what the CLI calls
    with client(served) as http:
        assert log_in(http, "sam@example.org", spaced.strip()).status_code == 401
        assert log_in(http, "sam@example.org", spaced).url.path == "/admin/"


def test_control_characters_are_refused_in_staff_addresses(store):
    for name in ("eve@example.org\r\nX-Injected: 1", "eve\x00@example.org", "eve@exa\tmple.org"):
        with pytest.raises(StaffError, match="control characters"):
            add_staff(store, name, "viewer", PASSWORD, now=FIXED_NOW)


def test_invitation_links_work_once_and_expire(served, store):
    with client(served) as owner:
        log_in(owner, STAFF["owner"])
        page = owner.get("/admin/staff").text
        assert 'name="password"' not in page  # owners no longer choose passwords
        done = post_form(owner, "/admin/staff/invite", page, email="ina@example.org", role="editor")
        assert "Invited ina@example.org as editor" in done.text
        subject, link = staff_mail(served, "ina@example.org")
        assert subject == "You are invited to the Test Org staff dashboard"
        post_form(owner, "/admin/staff/invite", page, email="late@example.org", role="viewer")
        _, late_link = staff_mail(served, "late@example.org")
    with client(served, "192.0.2.77") as invitee:
        form = invitee.get(link)
        assert "ina@example.org" in form.text
        token = link.split("token=")[1]
        differ = post_form(invitee, "/admin/invitation", form.text,
                           token=token, password=NEW_PASSWORD, confirm="x")  # fmt: skip
        assert differ.status_code == 400
        accepted = post_form(invitee, "/admin/invitation", form.text,
                             token=token, password=NEW_PASSWORD, confirm=NEW_PASSWORD)  # fmt: skip
        assert "Your account is ready" in accepted.text
        again = post_form(invitee, "/admin/invitation", form.text,
                          token=token, password=PASSWORD, confirm=PASSWORD)  # fmt: skip
        assert again.status_code == 404 and invitee.get(link).status_code == 404
        assert log_in(invitee, "ina@example.org", NEW_PASSWORD).url.path == "/admin/"
        assert log_in(invitee, "ina@example.org", PASSWORD).status_code == 401
    served.clock.advance(days=3, minutes=1)
    with client(served) as late:
        assert late.get(late_link).status_code == 404
    assert "invitation accepted" in [e.action for e in audit.recent(store)]


def test_reset_links_work_once_expire_and_end_sessions(served, store):
    with client(served) as old, client(served, "192.0.2.33") as http:
        log_in(old, STAFF["viewer"])
        page = http.get("/admin/reset").text
        asked = post_form(http, "/admin/reset", page, email=STAFF["viewer"])
        unknown = post_form(http, "/admin/reset", page, email="nobody@example.org")
        assert asked.text.replace("nobody", "") == unknown.text.replace("nobody", "")
        assert served.sent == [STAFF["viewer"]]  # only the real account got an email
        for _ in range(3):
            post_form(http, "/admin/reset", page, email=STAFF["viewer"])
        assert served.sent == [STAFF["viewer"]] * 3  # at most 3 per address per hour
        subject, link = staff_mail(served, STAFF["viewer"])
        assert subject == "Reset your Test Org staff password"
        token = link.split("token=")[1]
        form = http.get(link).text
        done = post_form(http, "/admin/reset/new", form, token=token, password=NEW_PASSWORD,
                         confirm=NEW_PASSWORD)  # fmt: skip
        assert "Your password was changed" in done.text
        assert not signed_in(old)  # the sessions of the old password ended
        reused = post_form(http, "/admin/reset/new", form, token=token, password=PASSWORD,
                           confirm=PASSWORD)  # fmt: skip
        assert reused.status_code == 404
        assert log_in(http, STAFF["viewer"], NEW_PASSWORD).url.path == "/admin/"
        post_form(http, "/admin/reset", page, email=STAFF["editor"])
        _, expiring = staff_mail(served, STAFF["editor"])
        served.clock.advance(minutes=61)
        assert http.get(expiring).status_code == 404


def enrol_totp(http: httpx.Client) -> tuple[str, list[str]]:
    page = http.get("/admin/account").text
    setup = post_form(http, "/admin/account/totp", page).text
    assert 'src="data:image/svg+xml;base64,' in setup  # the QR code, no script
    secret = present(re.search(r'<code id="totp-key">([A-Z2-7]+)</code>', setup)).group(1)
    signed = present(re.search(r'name="signed" value="([^"]+)"', setup)).group(1)
    return secret, [setup, signed]


def second_step(http: httpx.Client, email_: str, code: str) -> httpx.Response:
    page = log_in(http, email_).text
    assert "Code from your authenticator app" in page
    pending = present(re.search(r'name="pending" value="([^"]+)"', page)).group(1)
    return post_form(http, "/admin/login/second-factor", page, pending=pending, code=code)


def test_totp_with_a_fixed_clock_and_single_use_recovery_codes(served, store):
    with client(served) as http:
        log_in(http, STAFF["editor"])
        secret, (setup, signed) = enrol_totp(http)
        totp = pyotp.TOTP(secret)
        wrong = post_form(http, "/admin/account/totp/confirm", setup, signed=signed, code="000000")
        assert wrong.status_code == 400
        codes_page = post_form(http, "/admin/account/totp/confirm", setup, signed=signed,
                               code=totp.at(served.clock.now)).text  # fmt: skip
        codes = re.findall(r"<li><code>([0-9a-f]{8}-[0-9a-f]{8})</code></li>", codes_page)
        assert len(codes) == 10
        post_form(http, "/admin/logout", http.get("/admin/account").text)
    with client(served) as http:
        # the code just used to turn it on cannot be replayed; the next step's can
        assert second_step(http, STAFF["editor"], totp.at(served.clock.now)).status_code == 401
        served.clock.advance(seconds=30)
        assert second_step(http, STAFF["editor"], totp.at(served.clock.now)).url.path == "/admin/"
    with client(served) as http:
        assert second_step(http, STAFF["editor"], codes[0]).url.path == "/admin/"
    with client(served) as http:
        assert second_step(http, STAFF["editor"], codes[0]).status_code == 401  # used up
        assert second_step(http, STAFF["editor"], codes[1].upper()).url.path == "/admin/"
    with client(served) as http:  # the password alone never opens a session
        log_in(http, STAFF["editor"])
        assert not signed_in(http)


def _codes(http: httpx.Client, page: str, url: str, codes: list[str]) -> list[int]:
    """Each code posted in turn to the second step at `url`, from the page before it."""
    statuses = []
    for code in codes:
        pending = present(re.search(r'name="pending" value="([^"]+)"', page)).group(1)
        answer = post_form(http, url, page, pending=pending, code=code)
        statuses.append(answer.status_code)
        page = answer.text
    return statuses


def test_the_code_limit_is_shared_by_two_apps_on_one_store(served, store, project):
    """Two `publisher serve` processes (here two apps, each its own server, on the same
    store): 5 wrong codes through the first, then the right one through the second is
    refused; once the 5 minutes are over, it opens the session."""
    with client(served) as http:
        log_in(http, STAFF["editor"])
        secret, (setup, signed) = enrol_totp(http)
        post_form(http, "/admin/account/totp/confirm", setup, signed=signed,
                  code=pyotp.TOTP(secret).at(served.clock.now))  # fmt: skip
    with serve(project, store, config_text=ADMIN_CONFIG) as other, client(served) as http:
        for clock in (served.clock, other.clock):
            clock.advance(seconds=30)  # past the step of the code used to turn it on
        page = log_in(http, STAFF["editor"]).text
        assert _codes(http, page, "/admin/login/second-factor", ["000000"] * 5) == [401] * 5
        right = pyotp.TOTP(secret).at(other.clock.now)
        step = f"{other.url}/admin/login/second-factor"  # the same browser, the other app
        refused = _codes(http, page, step, [right])
        assert refused == [401] and not signed_in(http)
        for clock in (served.clock, other.clock):
            clock.advance(minutes=5)
        page = log_in(http, STAFF["editor"]).text
        assert _codes(http, page, step, [pyotp.TOTP(secret).at(other.clock.now)]) == [200]
        assert signed_in(http)
    repeats = {entry.action: entry.repeats for entry in audit.recent(store)}
    assert repeats["failed second factor"] == 6


def test_the_owners_can_require_a_second_factor_of_senders(served, store):
    set_second_factor_policy(store, "senders")
    with client(served) as editor, client(served) as viewer:
        log_in(editor, STAFF["editor"])
        landed = editor.get("/admin/campaigns/weekly")
        assert landed.url.path == "/admin/account" and "The owners require" in landed.text
        log_in(viewer, STAFF["viewer"])
        assert viewer.get("/admin/campaigns/weekly").url.path == "/admin/campaigns/weekly"
        secret, (setup, signed) = enrol_totp(editor)
        post_form(editor, "/admin/account/totp/confirm", setup, signed=signed,
                  code=pyotp.TOTP(secret).at(served.clock.now))  # fmt: skip
        assert editor.get("/admin/campaigns/weekly").url.path == "/admin/campaigns/weekly"
    with client(served) as owner:
        log_in(owner, STAFF["owner"])
        page = owner.get("/admin/staff")
        assert page.url.path == "/admin/account"  # owners can send too


def test_password_checks_do_not_stall_the_event_loop(served):
    """4 clients posting wrong passwords at once: argon2 runs in worker threads, so /healthz
    answers in a small part of the time one log-in takes (it waited for them all before)."""
    stop, logins = threading.Event(), []

    def flood(worker: int) -> None:
        with client(served, f"203.0.113.{worker}") as http:
            token = csrf_of(http.get("/admin/login").text)
            n = 0
            while not stop.is_set():
                n += 1  # a new account each time: no throttling shortcut
                data = {"csrf": token, "email": f"w{worker}n{n}@example.org", "password": "wrong"}
                started = time.perf_counter()
                assert http.post("/admin/login", data=data).status_code == 401
                logins.append(time.perf_counter() - started)

    threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()
    health = []
    with httpx.Client(base_url=served.url, timeout=60) as probe:
        while len(logins) < 8:  # the flood is under way
            time.sleep(0.01)  # polling, not synchronisation: the condition is checked
        for _ in range(30):
            started = time.perf_counter()
            assert probe.get("/healthz").status_code == 200
            health.append(time.perf_counter() - started)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert statistics.median(health) < statistics.median(logins) / 4, (health, logins)


def test_every_staff_table_is_pruned(store):
    add_accounts(store)
    editor = present(find_staff(store, STAFF["editor"]))
    later = FIXED_NOW + timedelta(days=401)
    open_session(store, editor.id, ip="192.0.2.1", user_agent="b", now=FIXED_NOW)
    fresh = open_session(store, editor.id, ip="192.0.2.1", user_agent="b", now=later)
    create_link(store, "invite", "old@example.org", role="viewer", now=FIXED_NOW)
    used = create_link(store, "invite", "used@example.org", role="viewer", now=later)
    accept_invitation(store, used, PASSWORD, now=later)
    waiting = create_link(store, "reset", STAFF["viewer"], now=later)
    codes = new_recovery_codes(store, editor.id)
    assert use_recovery_code(store, editor.id, codes[0], now=later)
    check_login(store, STAFF["owner"], "wrong wrong wrong", "192.0.2.9", now=FIXED_NOW)
    check_login(store, STAFF["owner"], "wrong wrong wrong", "192.0.2.9", now=later)
    with store.session() as session:  # a new failure already dropped the stale ones
        assert session.scalar(select(func.count()).select_from(LoginFailureRow)) == 2
    audit.record(store, "cli", "staff added", ip=None, now=FIXED_NOW)
    audit.record(store, "cli", "staff removed", ip=None, now=later)
    prune_access(store, now=later)
    with store.session() as session:
        count = {
            table.__tablename__: session.scalar(select(func.count()).select_from(table))
            for table in (StaffSessionRow, StaffLinkRow, RecoveryCodeRow, LoginFailureRow, AuditRow)
        }
    assert count == {"staff_sessions": 1, "staff_links": 1, "staff_recovery_codes": 9,
                     "login_failures": 2, "audit_log": 1}  # fmt: skip
    assert session_of(store, fresh, now=later) is not None
    assert peek_link(store, waiting, "reset", now=later) is not None
