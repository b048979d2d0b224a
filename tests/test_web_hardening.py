"""The small findings of issue 19, each closed: log lines escape control characters, HSTS
over HTTPS, X-Frame-Options beside frame-ancestors, the staff cookie scoped to the mount,
relative slash redirects, no dotfiles, archive pages keep their inline styles, and a secret
key needs 32 characters and real entropy."""

from __future__ import annotations

import logging
import secrets
import time
from urllib.parse import urljoin

import httpx
import pytest

from publisher.errors import PublisherError
from publisher.store.staff import add_staff
from tests.conftest import FIXED_NOW
from tests.web_support import serve


@pytest.fixture
def served(project, store):
    with serve(project, store) as s:
        yield s


def _access_lines(caplog: pytest.LogCaptureFixture, count: int) -> list[str]:
    # each line is written once its answer has gone out: wait for them
    for _ in range(250):
        lines = [r.getMessage() for r in caplog.records if r.name == "publisher.web.access"]
        if len(lines) >= count:
            return lines
        time.sleep(0.02)
    return lines


def test_a_newline_in_the_path_cannot_forge_an_access_log_line(served, caplog):
    with caplog.at_level(logging.INFO, logger="publisher.web.access"):
        forged = '/x%0A1.2.3.4%20"GET%20/admin/"%20200%0D%00'
        assert httpx.get(served.url + forged).status_code == 404
        lines = _access_lines(caplog, 1)
    assert len(lines) == 1 and "\n" not in lines[0] and "\r" not in lines[0]
    assert "\x00" not in lines[0]
    assert '"GET /x\\x0a1.2.3.4 \\x22GET /admin/\\x22 200\\x0d\\x00" 404' in lines[0]


def test_hsts_only_over_https(served):
    plain = httpx.get(served.url + "/subscribe")
    assert "strict-transport-security" not in plain.headers
    # behind the proxy (127.0.0.1 is trusted): its X-Forwarded-Proto says https
    proxied = httpx.get(served.url + "/subscribe", headers={"X-Forwarded-Proto": "https"})
    assert proxied.headers["strict-transport-security"] == "max-age=31536000"


def test_x_frame_options_says_what_frame_ancestors_says(served):
    for path in ("/unsubscribe?token=x", "/admin/login", "/healthz"):
        answer = httpx.get(served.url + path)
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY", path
    # the sign-up form may be framed by the organisation's site: X-Frame-Options cannot say
    # so, and CSP's frame-ancestors does
    signup = httpx.get(served.url + "/subscribe")
    assert (
        "frame-ancestors 'self' https://www.example.org"
        in signup.headers["content-security-policy"]
    )
    assert "x-frame-options" not in signup.headers


def test_the_staff_cookie_is_scoped_to_the_admin_folder_not_the_host(served, store):
    add_staff(store, "olga@example.org", "owner", "correct horse battery staple", now=FIXED_NOW)
    with httpx.Client(base_url=served.url) as client:
        page = client.get("/admin/login").text
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        form = {"email": "olga@example.org", "password": "correct horse battery staple"}
        answer = client.post("/admin/login", data=form | {"csrf": csrf})
        assert answer.status_code == 303
        header = answer.headers["set-cookie"]
        assert header.startswith("publisher_staff=") and "path=/admin;" in header.lower()
        # the dashboard's folder, not the whole host (under --root-path /news: /news/admin)
        cookies = {c.name: c for c in client.cookies.jar}
        assert cookies["publisher_staff"].path == "/admin"
        overview = client.get("/admin/")
        assert overview.status_code == 200  # and it is sent there
        token = overview.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        out = client.post("/admin/logout", data={"csrf": token})
        assert "publisher_staff=" in out.headers["set-cookie"]
        assert "path=/admin;" in out.headers["set-cookie"].lower()


def test_slash_redirects_are_relative_and_ignore_the_host_header(served):
    evil = {"Host": "evil.example"}
    to_admin = httpx.get(served.url + "/admin?x=1", headers=evil)
    assert to_admin.status_code == 307 and to_admin.headers["location"] == "./admin/?x=1"
    to_subscribe = httpx.get(served.url + "/subscribe/", headers=evil)
    assert to_subscribe.headers["location"] == "../subscribe"
    # under a proxy's prefix they stay under it
    assert urljoin("https://www.example.org/news/admin", "./admin/") == (
        "https://www.example.org/news/admin/"
    )
    assert urljoin("https://www.example.org/news/subscribe/", "../subscribe") == (
        "https://www.example.org/news/subscribe"
    )
    followed = httpx.get(served.url + "/admin", follow_redirects=True)
    assert followed.url.path == "/admin/login" and followed.status_code == 200
    assert httpx.get(served.url + "/nothing-here/").status_code == 404


def test_dotfiles_are_never_served_from_the_archive_or_feeds(project, store):
    for folder in ("archive", "feeds"):
        (project / folder / ".git").mkdir(parents=True)
        (project / folder / ".git" / "config").write_text("[remote]\n")
        (project / folder / ".htpasswd").write_text("staff:$apr1$secret\n")
        (project / folder / "index.html").write_text("<!doctype html><p>Public</p>")
    with serve(project, store) as served:
        for folder in ("archive", "feeds"):
            assert httpx.get(f"{served.url}/{folder}/index.html").status_code == 200
            for hidden in (".htpasswd", ".git/config", "%2Ehtpasswd", "sub/../.htpasswd"):
                answer = httpx.get(f"{served.url}/{folder}/{hidden}")
                assert answer.status_code == 404, (folder, hidden)
                assert "secret" not in answer.text and "remote" not in answer.text


def test_archive_pages_may_use_their_inline_styles_and_nothing_else(project, store):
    (project / "archive").mkdir()
    (project / "archive" / "index.html").write_text(
        '<!doctype html><style>p{color:red}</style><p style="margin:0">Styled</p>'
    )
    with serve(project, store) as served:
        policy = httpx.get(served.url + "/archive/index.html").headers["content-security-policy"]
        other = httpx.get(served.url + "/subscribe").headers["content-security-policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "'unsafe-inline'" not in other  # only the published pages


@pytest.mark.parametrize(
    "secret",
    ["a" * 16, "a" * 32, "ab" * 20, "abcd" * 10, "password" * 4],
)
def test_a_weak_secret_key_is_refused(monkeypatch, secret):
    from publisher.cli.web import _signing_key

    monkeypatch.setenv("PUBLISHER_SECRET_KEY", secret)
    with pytest.raises(PublisherError) as refused:
        _signing_key(dev=False)
    assert "PUBLISHER_SECRET_KEY" in str(refused.value) and secret not in str(refused.value)


@pytest.mark.parametrize("make", [lambda: secrets.token_urlsafe(32), lambda: secrets.token_hex(16)])
def test_a_random_secret_key_is_accepted(monkeypatch, make):
    from publisher.cli.web import _signing_key

    for _ in range(200):
        secret = make()
        monkeypatch.setenv("PUBLISHER_SECRET_KEY", secret)
        assert _signing_key(dev=False) == secret
