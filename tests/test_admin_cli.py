"""`publisher staff add|list|remove` as a process, and the source health the overview shows."""

from __future__ import annotations

import shutil
from datetime import timedelta

import httpx
import pytest
from lxml import html as lxml_html

from publisher.sources.collect import collect_all
from publisher.store import audit, open_store
from publisher.store.sink import StoreSink
from publisher.store.staff import check_login, list_staff
from tests.admin_support import (
    ADMIN_CONFIG,
    STAFF,
    add_accounts,
    log_in,
    write_posts,
    xpath_list,
    xpath_strings,
)
from tests.test_web_cli import _cli
from tests.web_support import serve, write_web_config

SECRET = "a long enough staff password"


@pytest.mark.slow  # starts the real `publisher` command
def test_staff_add_list_remove(project, database_url, fixed_now):
    write_web_config(project, 1)
    added = _cli(
        project, database_url, "staff", "add", "Olga@Example.org", "--role", "owner",
        PUBLISHER_STAFF_PASSWORD=SECRET,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "added olga@example.org as owner" in added.stdout and SECRET not in added.stdout
    piped = subprocess_input(project, database_url, "edu@example.org", "editor", SECRET + "\n")
    assert piped.returncode == 0, piped.stderr
    short = _cli(project, database_url, "staff", "add", "x@example.org",
                 PUBLISHER_STAFF_PASSWORD="short")  # fmt: skip
    assert short.returncode == 1 and "too short" in short.stderr
    role = _cli(project, database_url, "staff", "add", "y@example.org", "--role", "admin",
                PUBLISHER_STAFF_PASSWORD=SECRET)  # fmt: skip
    assert role.returncode == 1 and "unknown role 'admin'" in role.stderr
    listed = _cli(project, database_url, "staff", "list")
    assert [line.split()[:2] for line in listed.stdout.splitlines()] == [
        ["edu@example.org", "editor"], ["olga@example.org", "owner"],
    ]  # fmt: skip
    last = _cli(project, database_url, "staff", "remove", "olga@example.org")
    assert last.returncode == 1 and "last owner" in last.stderr
    assert _cli(project, database_url, "staff", "remove", "edu@example.org").returncode == 0
    store = open_store(database_url)
    try:
        assert [s.email for s in list_staff(store)] == ["olga@example.org"]
        assert check_login(store, "olga@example.org", SECRET, "127.0.0.1", now=fixed_now)
        hashed = list_staff(store)[0].password_hash
        assert hashed.startswith("$argon2id$") and SECRET not in hashed
        assert [e.action for e in audit.recent(store)][:2] == ["staff removed", "staff added"]
    finally:
        store.close()


def subprocess_input(project, database_url, email, role, password):
    import subprocess

    from tests.test_web_cli import PUBLISHER, _env

    return subprocess.run(
        [*PUBLISHER, "--config", str(project / "schedules.yaml"), "staff", "add", email,
         "--role", role],
        env=_env(database_url), input=password, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_source_failing_for_a_day_is_an_alert(project, store):
    add_accounts(store)
    write_posts(project)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        collect_all(served.config, StoreSink(store), now=served.clock.now)
        shutil.rmtree(project / "content")  # the source cannot be read any more
        collect_all(served.config, StoreSink(store), now=served.clock.now)
        with httpx.Client(base_url=served.url, follow_redirects=True) as http:
            log_in(http, STAFF["viewer"])
            page = lxml_html.fromstring(http.get("/admin/").text)
            status = xpath_strings(page, '//tr[@data-source="posts"]/td[@class="status"]/text()')
            assert status[0].startswith("failing since") and not page.xpath("//ul[@class]")
            served.clock.advance(days=1)
            collect_all(served.config, StoreSink(store), now=served.clock.now)
            assert http.get("/admin/").url.path == "/admin/login"  # sessions last 12 hours
            log_in(http, STAFF["viewer"])
            page = lxml_html.fromstring(http.get("/admin/").text)
            alerts = [a.text_content() for a in xpath_list(page, '//ul[@class="alerts"]/li/a')]
            assert alerts == ["source posts failing since Wed 25 Nov 2026, 07:00 EST"]
            assert page.xpath('//ul[@class="alerts"]//time/@title') == ["2026-11-25 12:00 UTC"]
            (project / "content").mkdir()
            write_posts(project)
            collect_all(served.config, StoreSink(store), now=served.clock.now + timedelta(hours=1))
            page = lxml_html.fromstring(http.get("/admin/").text)
            assert page.xpath('//tr[@data-source="posts"]/td[@class="status"]/text()') == ["ok"]


@pytest.mark.slow  # starts the real `publisher` command
def test_the_cli_keeps_a_password_exactly_as_typed(project, database_url, fixed_now):
    """One rule for the CLI and the web (issue 19): surrounding spaces are part of the
    password; control characters in an address are refused, without a traceback."""
    write_web_config(project, 1)
    spaced = "  spaced staff password  "
    added = _cli(project, database_url, "staff", "add", "sam@example.org", "--role", "owner",
                 PUBLISHER_STAFF_PASSWORD=spaced)  # fmt: skip
    assert added.returncode == 0, added.stderr
    piped = subprocess_input(project, database_url, "pia@example.org", "viewer", spaced + "\n")
    assert piped.returncode == 0, piped.stderr
    bell = _cli(project, database_url, "staff", "add", "e\x07ve@example.org",
                PUBLISHER_STAFF_PASSWORD=SECRET)  # fmt: skip
    assert bell.returncode == 1 and "control characters" in bell.stderr
    assert "Traceback" not in bell.stderr
    store = open_store(database_url)
    try:
        for address in ("sam@example.org", "pia@example.org"):
            assert check_login(store, address, spaced, "192.0.2.1", now=fixed_now)
            assert check_login(store, address, spaced.strip(), "192.0.2.2", now=fixed_now) is None
    finally:
        store.close()
