"""The list of people kept in /admin (issue 20, part F) over HTTP against a real server, on
SQLite and PostgreSQL: add a person with a consent note, duplicates refused, edit, unsubscribe,
resubscribe only by a mailed confirmation, complained and erased people never re-added; CSV
import previewed (nothing written), confirmed once, bad and hostile rows reported with their
line; 10 MB+ cut while streaming; the row cap; export by editors only once an owner allows."""

from __future__ import annotations

import csv
import email
import io
import re
import socket
from contextlib import closing
from email.policy import default

import httpx
import pytest
from lxml import html as lxml_html

from publisher.store import audit
from publisher.store.consent import CLI as CTX
from publisher.store.consent import set_subscriber_status
from publisher.store.imports import pending_import
from publisher.store.staff import find_staff
from publisher.store.subscriber_record import history
from publisher.store.subscribers import count_by_status, find_subscriber, iter_subscribers
from publisher.subscribers.consent import add_by_staff, erase
from tests.admin_support import (
    ADMIN_CONFIG,
    STAFF,
    add_accounts,
    csrf_of,
    log_in,
    xpath_list,
    xpath_strings,
)
from tests.conftest import FIXED_NOW, present
from tests.web_support import serve

NOTE = "sign-up sheet at the 3 Dec town hall"


@pytest.fixture
def served(project, store):
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as s:
        yield s


def staff_client(served, role: str) -> tuple[httpx.Client, str]:
    """A logged-in client and its session's form token."""
    http = httpx.Client(base_url=served.url, follow_redirects=True, timeout=60)
    answer = log_in(http, STAFF[role])
    return http, csrf_of(answer.text)


def everyone(store) -> dict[str, tuple[str | None, tuple[str, ...], str]]:
    return {s.email: (s.name, s.topics, s.status) for s in iter_subscribers(store)}


def notice(page: str) -> str:
    found = xpath_strings(lxml_html.fromstring(page), '//p[@role="status"]/text()')
    return " ".join(found)


def add(http: httpx.Client, csrf: str, **fields: object) -> httpx.Response:
    form = {"csrf": csrf, "email": "ana@example.org", "name": "Ana", "note": NOTE} | fields
    return http.post("/admin/subscribers/new", data=form)


def actions(store) -> list[tuple[str, str]]:
    return [(e.action, e.target) for e in reversed(audit.recent(store))]


def test_add_a_person_keeps_the_consent_note_and_refuses_a_duplicate(served, store):
    http, csrf = staff_client(served, "editor")
    with closing(http):
        assert "Where consent came from" in http.get("/admin/subscribers/new").text
        answer = add(http, csrf, topics=["labor", "not-a-topic"])
        assert answer.status_code == 200
        assert notice(answer.text) == "Added ana@example.org: active from now on."
        ana = present(find_subscriber(store, email="ana@example.org"))
        assert (ana.name, ana.topics, ana.status) == ("Ana", ("labor",), "active")
        records = history(store, ana.id)
        assert {r["consent_text"] for r in records} == {NOTE}
        assert records[-1]["via"] == "staff" and records[-1]["form"] == STAFF["editor"]
        assert NOTE in answer.text  # the person's page shows the consent record

        before = everyone(store)
        again = add(http, csrf, email="ANA@example.org", name="Someone else")
        assert again.status_code == 409
        assert "ana@example.org is already on the list (active): not added again." in again.text
        assert everyone(store) == before

        missing_note = add(http, csrf, email="bo@example.org", note="  ")
        bad_name = add(http, csrf, email="cy@example.org", name="Cy\r\nBcc: x@evil.example")
        bad_address = add(http, csrf, email="not an address")
        assert [r.status_code for r in (missing_note, bad_name, bad_address)] == [400] * 3
        assert "Say where the consent came from" in missing_note.text
        assert "no line breaks or control characters" in bad_name.text
        assert "Enter an email address like name@example.org." in bad_address.text
        assert everyone(store) == before
    assert actions(store)[-1] == ("subscriber added", f"subscriber #{ana.id}")


def test_edit_name_and_topics_then_unsubscribe(served, store):
    person, _ = add_by_staff(store, "ana@example.org", name="Anna", topics=["labor"], now=FIXED_NOW)
    http, csrf = staff_client(served, "editor")
    with closing(http):
        page = http.get(f"/admin/subscribers/{person.id}").text
        assert 'value="Anna"' in page and "Unsubscribe" in page
        form = {"csrf": csrf, "name": "Ana", "topics": ["housing"]}
        saved = http.post(f"/admin/subscribers/{person.id}/edit", data=form)
        assert notice(saved.text) == "Saved the name and topics."
        ana = present(find_subscriber(store, id=person.id))
        assert (ana.name, ana.topics, ana.status) == ("Ana", ("housing",), "active")
        gone = http.post(f"/admin/subscribers/{person.id}/unsubscribe", data={"csrf": csrf})
        assert notice(gone.text) == "Unsubscribed ana@example.org: they get no more email."
        assert present(find_subscriber(store, id=person.id)).status == "unsubscribed"
        assert "Email them a link to resubscribe" in gone.text
    last = history(store, person.id)[-1]
    assert (last["action"], last["via"], last["form"]) == ("unsubscribe", "staff", STAFF["editor"])
    assert actions(store)[-2:] == [
        ("subscriber edited", f"subscriber #{person.id}"),
        ("subscriber unsubscribed", f"subscriber #{person.id}"),
    ]


def confirm_link(served, path) -> str:
    """The mailed link, on the test server (the configured public_url is the website's)."""
    message = email.message_from_bytes(path.read_bytes(), policy=default)
    assert message["Subject"] == "Please confirm your subscription to Test Org"
    assert message["To"] == "ana@example.org"
    text = present(message.get_body(("plain",))).get_content()
    found = present(re.search(r"https://www.example.org/news/confirm\?token=(\S+)", text))
    return f"{served.url}/confirm?token={found.group(1)}"


def test_resubscribing_mails_a_confirmation_and_changes_nothing_until_clicked(served, store):
    person, _ = add_by_staff(store, "ana@example.org", name="Ana", topics=[], now=FIXED_NOW)
    set_subscriber_status(
        store, person.id, "unsubscribed", action="unsubscribe", ctx=CTX, now=FIXED_NOW
    )
    http, csrf = staff_client(served, "editor")
    with closing(http):
        answer = http.post(f"/admin/subscribers/{person.id}/resubscribe", data={"csrf": csrf})
    assert "They stay unsubscribed until they click its link." in notice(answer.text)
    (mailed,) = served.confirmation_emails(1)
    assert present(find_subscriber(store, id=person.id)).status == "unsubscribed"
    link = confirm_link(served, mailed)
    page = httpx.get(link)  # opening the link (a mail scanner) changes nothing either
    assert page.status_code == 200 and "Confirm my subscription" in page.text
    assert present(find_subscriber(store, id=person.id)).status == "unsubscribed"
    form = {"csrf": csrf_of(page.text), "token": link.split("token=")[1]}
    done = httpx.post(f"{served.url}/confirm", data=form)
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert present(find_subscriber(store, id=person.id)).status == "active"
    assert [h["action"] for h in history(store, person.id)][-2:] == ["comeback mailed", "confirm"]
    assert actions(store)[-1] == ("resubscribe mailed", f"subscriber #{person.id}")


def test_a_comeback_link_does_not_work_after_a_new_unsubscribe(served, store):
    """The link is bound to the person's token: unsubscribing again (a new token) kills it."""
    person, _ = add_by_staff(store, "ana@example.org", name=None, topics=[], now=FIXED_NOW)
    set_subscriber_status(store, person.id, "unsubscribed", action="x", ctx=CTX, now=FIXED_NOW)
    http, csrf = staff_client(served, "editor")
    with closing(http):
        http.post(f"/admin/subscribers/{person.id}/resubscribe", data={"csrf": csrf})
    link = confirm_link(served, served.confirmation_emails(1)[0])
    set_subscriber_status(store, person.id, "active", action="x", ctx=CTX, now=FIXED_NOW)
    set_subscriber_status(
        store, person.id, "unsubscribed", action="x", ctx=CTX, now=FIXED_NOW, rotate=True
    )
    assert httpx.get(link).status_code == 404


def test_complained_and_erased_people_cannot_be_re_added(served, store):
    cross, _ = add_by_staff(store, "cross@example.org", name=None, topics=[], now=FIXED_NOW)
    set_subscriber_status(store, cross.id, "complained", action="x", ctx=CTX, now=FIXED_NOW)
    gone, _ = add_by_staff(store, "gone@example.org", name=None, topics=[], now=FIXED_NOW)
    erase(store, gone, now=FIXED_NOW)
    http, csrf = staff_client(served, "editor")
    with closing(http):
        page = http.get(f"/admin/subscribers/{cross.id}").text
        assert "marked our email as spam: staff cannot re-add them" in page
        assert "Email them a link to resubscribe" not in page
        answer = http.post(f"/admin/subscribers/{cross.id}/resubscribe", data={"csrf": csrf})
        assert "marked our email as spam" in notice(answer.text)
        again = add(http, csrf, email="cross@example.org")
        assert again.status_code == 409 and "already on the list (complained)" in again.text
        erased = add(http, csrf, email="gone@example.org")
        assert erased.status_code == 409
        assert "gone@example.org was erased at the person&#39;s request" in erased.text
        assert http.get(f"/admin/subscribers/{gone.id}").status_code == 404
    assert served.confirmation_emails() == []
    assert present(find_subscriber(store, id=cross.id)).status == "complained"
    assert find_subscriber(store, email="gone@example.org") is None


# --- import -------------------------------------------------------------------------------

CSV_TEXT = (
    "email,name,topics\r\n"
    "ana@example.org,Ana,labor\r\n"  # line 2: new
    "not-an-address,Bob,\r\n"  # 3: bad address
    "ANA@example.org,Ana again,\r\n"  # 4: duplicate in the file
    'cleo@example.org,"Cleo\r\nBcc: x@evil.example",labor\r\n'  # 5-6: header injection
    "left@example.org,Left,\r\n"  # 7: unsubscribed before
    "angry@example.org,Angry,\r\n"  # 8: complained before
    "dan@example.org,=cmd|' /C calc'!A0,housing\r\n"  # 9: formula: kept, inert
    "eve@example.org,%%EMAIL%%,\r\n"  # 10: a placeholder-like name: kept, inert
    "kim@example.org,Kim,labor\r\n"  # 11: on the list already, the same
    "lee@example.org,Lee Changed,labor;housing\r\n"  # 12: on the list, name and topics change
    "=cmd|' /C calc'!A0,x,\r\n"  # 13: formula as the address
)


def seed_list(store) -> None:
    for address, name, topics in (
        ("left@example.org", "Left", []),
        ("angry@example.org", "Angry", []),
        ("kim@example.org", "Kim", ["labor"]),
        ("lee@example.org", "Lee", ["labor"]),
    ):
        person, _ = add_by_staff(store, address, name=name, topics=topics, now=FIXED_NOW)
        if address.startswith(("left", "angry")):
            status = "unsubscribed" if address.startswith("left") else "complained"
            set_subscriber_status(store, person.id, status, action="x", ctx=CTX, now=FIXED_NOW)


def upload(
    http: httpx.Client, csrf: str, data: bytes, note: str = NOTE, name: str = "town-hall.csv"
) -> httpx.Response:
    return http.post(
        "/admin/subscribers/import",
        data={"csrf": csrf, "note": note},
        files={"file": (name, data, "text/csv")},
    )


def cell_texts(row: lxml_html.HtmlElement) -> list[str]:
    return [" ".join(td.text_content().split()) for td in xpath_list(row, "td")]


def preview_rows(page: str) -> dict[int, tuple[str, str]]:
    """line -> (the address as shown, the outcome and its reason)"""
    rows = {}
    for tr in xpath_list(lxml_html.fromstring(page), '//table[@id="import-rows"]/tbody/tr'):
        cells = cell_texts(tr)
        rows[int(tr.get("data-line"))] = (cells[1], cells[4])
    return rows


def totals(page: str) -> dict[str, int]:
    found = xpath_list(
        lxml_html.fromstring(page), '//table[@id="import-totals"]//tr[@data-outcome]'
    )
    return {tr.get("data-outcome"): int(cell_texts(tr)[0]) for tr in found}


def test_import_previews_every_row_writes_nothing_then_confirms_once(served, store):
    seed_list(store)
    before = everyone(store)
    http, csrf = staff_client(served, "editor")
    with closing(http):
        preview = upload(http, csrf, CSV_TEXT.encode())
        assert preview.status_code == 200 and "/admin/subscribers/import/" in str(preview.url)
        assert everyone(store) == before  # the preview wrote nothing
        rows = preview_rows(preview.text)
        assert {line: outcome.split(":")[0] for line, (_, outcome) in rows.items()} == {
            2: "add", 3: "skip", 4: "skip", 5: "skip", 7: "skip", 8: "skip", 9: "add",
            10: "add", 11: "unchanged", 12: "update", 13: "skip",
        }  # fmt: skip
        assert "invalid email address 'not-an-address'" in rows[3][1]
        assert "duplicate address ana@example.org (first one kept)" in rows[4][1]
        assert "name contains control characters" in rows[5][1]
        assert rows[7][1] == "skip: unsubscribed: only they can subscribe again"
        assert rows[8][1] == "skip: complained: never re-added"
        assert rows[12][1] == "update: changes name, topics"
        assert rows[13][0] == "=cmd|' /C calc'!A0" and "invalid email address" in rows[13][1]
        assert totals(preview.text) == {"add": 3, "update": 1, "unchanged": 1, "skip": 6}

        confirm_url = f"{preview.url.path}/confirm"
        done = http.post(confirm_url, data={"csrf": csrf})
        assert "Imported: 3 added, 1 updated." in notice(done.text)
        twice = http.post(confirm_url, data={"csrf": csrf})
        assert twice.status_code == 409 and "nothing was written this time" in twice.text

    after = everyone(store)
    added = {e: after[e] for e in set(after) - set(before)}
    assert added == {
        "ana@example.org": ("Ana", ("labor",), "active"),
        "dan@example.org": ("=cmd|' /C calc'!A0", ("housing",), "active"),
        "eve@example.org": ("%%EMAIL%%", (), "active"),
    }
    assert after["lee@example.org"] == ("Lee Changed", ("housing", "labor"), "active")
    for address in ("left@example.org", "angry@example.org", "kim@example.org"):
        assert after[address] == before[address]  # skipped and unchanged rows: untouched
    ana = present(find_subscriber(store, email="ana@example.org"))
    (record,) = history(store, ana.id)
    assert record["consent_text"] == NOTE and record["detail"].endswith(": added")
    assert record["form"] == STAFF["editor"]
    confirmed = [t for a, t in actions(store) if a == "import confirmed"]
    assert len(confirmed) == 1 and confirmed[0].endswith("3 added, 1 updated")


def test_an_import_is_its_owners_and_needs_a_consent_note(served, store):
    http, csrf = staff_client(served, "editor")
    with closing(http):
        no_note = upload(http, csrf, CSV_TEXT.encode(), note="")
        assert no_note.status_code == 400 and "Say where the consent came from" in no_note.text
        bad_header = upload(http, csrf, b"mail,name\r\nana@example.org,Ana\r\n")
        assert (
            bad_header.status_code == 400
            and "line 1: the CSV header needs an &#39;email&#39; column" in bad_header.text
        )
        huge_cell = upload(
            http, csrf, b'email,name\r\nana@example.org,"' + b"x" * 200_000 + b'"\r\n'
        )
        assert huge_cell.status_code == 400 and "invalid CSV: field larger than" in huge_cell.text
        latin = upload(http, csrf, "email,name\r\nana@example.org,Zo\xeb\r\n".encode("latin-1"))
        assert latin.status_code == 400 and "not UTF-8 text" in latin.text
        # a file's own name is kept bounded (the store's column holds 200 characters): a
        # 300-character name is a preview, not a server error
        long_name = upload(http, csrf, CSV_TEXT.encode(), name="b" * 300 + ".csv")
        assert long_name.status_code == 200
        editor = present(find_staff(store, STAFF["editor"]))
        kept = pending_import(store, int(long_name.url.path.rsplit("/", 1)[1]), staff_id=editor.id)
        assert present(kept).filename == "b" * 200
        preview = upload(http, csrf, CSV_TEXT.encode())
    owner, owner_csrf = staff_client(served, "owner")
    with closing(owner):  # another staff member sees nothing of it and cannot confirm it
        assert owner.get(preview.url.path).status_code == 404
        taken = owner.post(f"{preview.url.path}/confirm", data={"csrf": owner_csrf})
        assert taken.status_code == 409
    assert find_subscriber(store, email="ana@example.org") is None


def test_a_preview_expires(served, store):
    http, csrf = staff_client(served, "editor")
    with closing(http):
        preview = upload(http, csrf, CSV_TEXT.encode())
        served.clock.advance(hours=2, seconds=1)
        page = http.get(preview.url.path).text
        assert "This preview has expired" in page and "Confirm import" not in page
        late = http.post(f"{preview.url.path}/confirm", data={"csrf": csrf_of(page)})
    assert late.status_code == 409 and find_subscriber(store, email="ana@example.org") is None


def test_more_than_100000_rows_are_refused_with_a_message(served, store):
    body = "email\r\n" + "".join(f"p{i}@example.org\r\n" for i in range(100_001))
    http, csrf = staff_client(served, "editor")
    with closing(http):
        answer = upload(http, csrf, body.encode())
    assert answer.status_code == 400 and "more than 100,000 rows" in answer.text
    assert count_by_status(store) == {}


def test_an_upload_over_10_mb_is_cut_while_it_streams(served, store):
    """Chunked, no declared length: the server answers 413 once 10 MiB + 64 KiB arrived."""
    http, csrf = staff_client(served, "editor")
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    http.close()
    port = int(served.url.rsplit(":", 1)[1])
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\nemail\r\n"
    ).encode()
    line = b"someone@example.org\r\n" * 50_000  # ~1 MiB
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(
            f"POST /admin/subscribers/import HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Cookie: {cookie}\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
        )
        sent, answer = 0, b""
        try:
            for chunk in [head] + [line] * 30:  # 30 MiB offered; the cut comes near 10
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:  # the server closed the connection after answering
            pass
        while b"\r\n\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert count_by_status(store) == {}


def test_export_by_editors_is_refused_until_an_owner_allows_it(served, store):
    seed_list(store)
    editor, editor_csrf = staff_client(served, "editor")
    owner, owner_csrf = staff_client(served, "owner")
    with closing(editor), closing(owner):
        assert "Download subscribers.csv" not in editor.get("/admin/subscribers").text
        refused = editor.post("/admin/subscribers/export", data={"csrf": editor_csrf})
        assert refused.status_code == 403
        staff_page = owner.get("/admin/staff").text
        assert "Editors may export subscribers" in staff_page
        allowed = owner.post(
            "/admin/staff/export-policy", data={"csrf": owner_csrf, "editors_export": "yes"}
        )
        assert notice(allowed.text) == "Editors may now export subscribers."
        assert "Download subscribers.csv" in editor.get("/admin/subscribers").text
        exported = editor.post("/admin/subscribers/export", data={"csrf": editor_csrf})
        assert exported.status_code == 200
        rows = list(csv.reader(io.StringIO(exported.text)))
        assert {r[0] for r in rows[1:]} >= {"kim@example.org", "lee@example.org"}
        owner.post("/admin/staff/export-policy", data={"csrf": owner_csrf})  # unticked: off
        again = editor.post("/admin/subscribers/export", data={"csrf": editor_csrf})
        assert again.status_code == 403
    assert [a for a, _ in actions(store) if a in ("export policy", "export")] == [
        "export policy", "export", "export policy",
    ]  # fmt: skip


def test_formula_cells_are_inert_in_the_export(served, store):
    add_by_staff(store, "dan@example.org", name="=cmd|' /C calc'!A0", topics=[], now=FIXED_NOW)
    owner, csrf = staff_client(served, "owner")
    with closing(owner):
        exported = owner.post("/admin/subscribers/export", data={"csrf": csrf}).text
    (row,) = [r for r in csv.reader(io.StringIO(exported)) if r[0] == "dan@example.org"]
    assert row[1] == "'=cmd|' /C calc'!A0"  # a spreadsheet shows it as text, runs nothing


def test_a_viewer_is_refused_every_write(served, store):
    person, _ = add_by_staff(store, "kim@example.org", name="Kim", topics=[], now=FIXED_NOW)
    editor, editor_csrf = staff_client(served, "editor")
    with closing(editor):
        staged = upload(editor, editor_csrf, CSV_TEXT.encode()).url.path
    before = everyone(store)
    viewer, csrf = staff_client(served, "viewer")
    with closing(viewer):
        page = viewer.get(f"/admin/subscribers/{person.id}").text
        assert "Unsubscribe" not in page and "Save name and topics" not in page
        assert "Add a person" not in viewer.get("/admin/subscribers").text
        answers = [
            add(viewer, csrf),
            viewer.post(f"/admin/subscribers/{person.id}/edit", data={"csrf": csrf, "name": "X"}),
            viewer.post(f"/admin/subscribers/{person.id}/unsubscribe", data={"csrf": csrf}),
            viewer.post(f"/admin/subscribers/{person.id}/resubscribe", data={"csrf": csrf}),
            upload(viewer, csrf, CSV_TEXT.encode()),
            viewer.post(f"{staged}/confirm", data={"csrf": csrf}),
            viewer.post("/admin/subscribers/export", data={"csrf": csrf}),
            viewer.post("/admin/staff/export-policy", data={"csrf": csrf, "editors_export": "yes"}),
        ]
        assert viewer.get("/admin/subscribers/new").status_code == 403
        assert viewer.get("/admin/subscribers/import").status_code == 403
    assert [a.status_code for a in answers] == [403] * len(answers)
    assert everyone(store) == before
