"""The hostile corpus (tests/hostile/, written by make_corpus.py) through the whole pipeline:
collect -> compose -> render -> file delivery -> feeds, with the remote feeds served over
local HTTP. The run completes, the good items reach the edition and the feeds, every problem
is reported with where it is, no placeholder from content is expanded, every .eml has
exactly the headers we wrote, and no output carries a script, an event handler or a
javascript: URL. Then a deleted file and `publisher items retire` retire items for good."""

from __future__ import annotations

import binascii
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select
from typer.testing import CliRunner
from werkzeug import Response

from publisher.config import load_config
from publisher.pipeline import run_once
from publisher.store.items import list_items
from publisher.store.models import SubscriberRow
from tests.conftest import BASE_CONFIG, FIXED_NOW, present

CORPUS = Path(__file__).parent / "hostile"
PUBLIC = "https://www.example.org/news"
EXPECTED_HEADERS = {
    "From", "MIME-Version", "Content-Type", "To", "Subject", "Message-ID",
    "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Date",
}  # fmt: skip

CONFIG = """
database_url: "{database_url}"
sources:
  - {{name: posts, type: markdown, path: content, base_url: "https://www.example.org/"}}
  - {{name: export, type: export, path: export.json, base_url: "https://www.example.org/"}}
  - {{name: deep-export, type: export, path: export-deep.json}}
  - {{name: partner, type: feed, url: "{rss}"}}
  - {{name: partner-json, type: feed, url: "{json}"}}
  - {{name: five, type: feed, url: "{five}"}}
  - {{name: deep-feed, type: feed, url: "{deep}"}}
  - {{name: too-big, type: feed, url: "{rss}", max_bytes: 50000}}
  - {{name: too-slow, type: feed, url: "{slow}", deadline: 1.5}}
subscribers:
  file: subscribers.csv
feeds:
  feeds:
    - {{name: everything, title: All, description: All, path: everything, everything: true}}
    - {{name: jingji, title: 经济, description: 经济, path: topics/jingji, topics: [经济]}}
    - name: ekonomika
      title: Экономика
      description: Экономика
      path: topics/ekonomika
      topics: [экономика]
campaigns:
  - name: hostile
    title: Hostile Weekly
    subject: "Hostile Weekly #{{{{ edition.number }}}}"
    lookback_days: 30
    sections:
      - {{name: featured, type: featured, kinds: [resource], max: 1}}
      - {{name: all, kinds: [article, news, resource, action, event], max: 50, title: All}}
"""

SUBSCRIBERS = """email,name,topics,status
ana@example.org,Ana,,
eve@example.org,Eve %%UNSUBSCRIBE_URL%% %%NAME%%,,
"""

GOOD_TITLES = [
    "Good post",
    "Wage theft report from Word",  # \x0b, \x01 and \x1b removed at collection
    "Win %%UNSUBSCRIBE_URL%% for %%NAME%%",
    "Scripted title",  # markup in a front-matter title is removed
    "Topics of the world",
    "Deleted later",
    "Good export",
    "Broken surrogate",  # a lone surrogate from JSON removed
    "std::vector<int> explained",  # text/plain stays text
    "Compare a<b and b>c",
    "Status with a URL guid",  # no link: its http(s) guid is the link
    "First of a duplicate",
    "Json good item",
]


@pytest.fixture
def hostile(tmp_path, httpserver, database_url):
    """A project holding the corpus, with the remote feeds served on 127.0.0.1."""
    shutil.copytree(CORPUS / "content", tmp_path / "content")
    for name in ("export.json", "export-deep.json"):
        shutil.copy(CORPUS / name, tmp_path / name)
    (tmp_path / "subscribers.csv").write_text(SUBSCRIBERS, encoding="utf-8")
    urls = {}
    for key, name, ctype in (
        ("rss", "partner.rss", "application/rss+xml"),
        ("json", "partner.json", "application/feed+json"),
        ("five", "items-five.json", "application/feed+json"),
        ("deep", "deep-feed.json", "application/feed+json"),
    ):
        body = (CORPUS / name).read_bytes()
        httpserver.expect_request(f"/{name}").respond_with_data(body, content_type=ctype)
        urls[key] = httpserver.url_for(f"/{name}")

    slow_calls: list[int] = []

    def slow(request):  # a byte a second, for five seconds: cut at the 1.5 s deadline
        slow_calls.append(1)
        if len(slow_calls) > 1:  # later runs are not about this: keep them quick
            return Response(status=304)

        def trickle():
            for _ in range(5):
                yield b" "
                time.sleep(1.0)

        return Response(trickle(), content_type="application/rss+xml")

    httpserver.expect_request("/slow.rss").respond_with_handler(slow)
    urls["slow"] = httpserver.url_for("/slow.rss")
    text = BASE_CONFIG + CONFIG.format(database_url=database_url, **urls)
    (tmp_path / "schedules.yaml").write_text(text, encoding="utf-8")
    return tmp_path, urls


def test_hostile_corpus_runs_through_the_whole_pipeline(hostile, store):
    root, urls = hostile
    config = load_config(root / "schedules.yaml")
    started = time.monotonic()
    report = run_once(config, store, now=FIXED_NOW)
    assert time.monotonic() - started < 60  # bombs and deep nesting are refused, not expanded
    assert "hostile: edition 1 composed" in " ".join(report.notes), report.notes

    problems = [str(p) for p in present(report.collect).problems]
    for where, why in [
        ("far-future.md", "out of range"),
        ("alias-bomb.md:", "aliases"),
        ("deep-front-matter.md:", "nested more than"),
        ("export-deep.json", "nested more than"),
        ("export.json:item 3", "title must be text"),
        (f"{urls['rss']} entry 4", "is not an http(s) URL"),
        (f"{urls['rss']} entry 6", "duplicate id 'partner:urn:p:dup' (entry 5"),
        (f"{urls['rss']} entry 8", "date"),
        (f"{urls['json']} item 2", "authors.0"),
        (f"{urls['json']} item 3", "authors.0.name"),
        (f"{urls['json']} item 4", "out of range"),
        (urls["five"], "items"),
        (urls["deep"], "nested more than"),
        ("too-big: " + urls["rss"], "above max_bytes 50000"),
        ("too-slow: " + urls["slow"], "1.5 s deadline"),
    ]:
        assert [p for p in problems if where in p and why in p], (where, why, problems)
    assert len(problems) == 15, problems

    stored = {item.title: item for item in list_items(store)}
    for title in GOOD_TITLES:
        assert title in stored, (title, sorted(stored))
    long_titles = [i.title for i in list_items(store) if i.title.startswith("Very long title")]
    assert len(long_titles) == 2 and all(len(t) <= 300 for t in long_titles)
    assert stored["Status with a URL guid"].url == "https://partner.example/status/3"
    assert set(stored["Topics of the world"].topics) == {"经济", "экономика"}
    assert set(stored["std::vector<int> explained"].topics) == {"经济", "экономика"}
    vector = stored["std::vector<int> explained"].body_html
    assert 'href="https://partner.example/posts/vector#comments"' in vector  # the item's URL
    assert 'src="https://partner.example/i.png"' in vector

    messages = sorted((root / "outbox" / "hostile" / "1").glob("*.eml"))
    assert len(messages) == 2
    tokens = _tokens(store)
    for path in messages:
        html_part = _check_message(path.read_bytes(), tokens)
        shown = unescape(html_part)  # as read: a placeholder in content is broken by &#37;
        for title in GOOD_TITLES:  # every good item is in the edition, exactly as written
            assert title in shown, title
        assert all(title in shown for title in long_titles)

    everything = json.loads((root / "feeds/everything.json").read_bytes())
    titles = {entry["title"] for entry in everything["items"]}
    assert set(GOOD_TITLES) <= titles
    jingji = {
        e["title"] for e in json.loads((root / "feeds/topics/jingji.json").read_bytes())["items"]
    }
    assert jingji == {"std::vector<int> explained", "Topics of the world"}
    ekonomika = json.loads((root / "feeds/topics/ekonomika.json").read_bytes())
    assert len(ekonomika["items"]) == 2
    good_json = [e for e in everything["items"] if e["title"] == "Json good item"][0]
    assert 'href="https://partner.example/j/good#top"' in good_json["content_html"]
    assert good_json["summary"] == "Plain summary" and good_json["authors"] == [{"name": "Ann"}]

    outputs = [root / "archive/hostile/1.html", root / "archive/hostile/index.html"]
    outputs += sorted((root / "feeds").rglob("*.rss")) + sorted((root / "feeds").rglob("*.atom"))
    outputs += sorted((root / "feeds").rglob("*.json"))
    for path in outputs:
        _check_document(path)
    assert not (root / "feeds" / ".publisher-feeds-state.json").exists()


@pytest.mark.slow  # starts the real `publisher` command
def test_deleted_files_and_retired_items_never_come_back(hostile, store):
    from publisher.cli import app

    root, _ = hostile
    config = load_config(root / "schedules.yaml")
    run_once(config, store, now=FIXED_NOW)
    (root / "content" / "to-delete.md").unlink()
    result = CliRunner().invoke(
        app,
        ["--config", str(root / "schedules.yaml"), "items", "retire", "posts:good-post"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "retired posts:good-post" in result.output
    missing = subprocess.run(
        [sys.executable, "-m", "publisher.cli", "--config", str(root / "schedules.yaml")]
        + ["items", "retire", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 1 and "no item 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr
    later = FIXED_NOW + timedelta(days=1)
    report = run_once(config, store, now=later)
    collected = present(report.collect)
    assert collected.retired == 1 and "1 retired" in collected.note
    titles = {item.title for item in list_items(store)}
    assert "Deleted later" not in titles and "Good post" not in titles
    for path in (root / "feeds").rglob("*"):
        if path.is_file() and path.suffix in (".rss", ".atom", ".json"):
            text = path.read_text(encoding="utf-8")
            assert "Deleted later" not in text and "Good post" not in text, path
    # Collected again (the file is back): a retired item stays retired.
    (root / "content" / "to-delete.md").write_text(
        (CORPUS / "content" / "to-delete.md").read_text(encoding="utf-8"), encoding="utf-8"
    )
    again = run_once(config, store, now=later + timedelta(days=1))
    assert "Deleted later" not in {item.title for item in list_items(store)}
    assert sum(s.upsert.retired for s in present(again.collect).sources) == 2


# --- checks ---------------------------------------------------------------------------------


def _tokens(store) -> dict[str, tuple[str, str]]:
    with store.session() as session:
        rows = session.scalars(select(SubscriberRow))
        return {row.email: (row.token, row.name or "") for row in rows}


def _check_message(raw: bytes, tokens: dict[str, tuple[str, str]]) -> str:
    """Headers exactly as we wrote them (parsed by hand: no email.policy), parts decoded;
    returns the HTML part."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert all(b"\r" not in line and b"\n" not in line for line in lines)  # no bare CR/LF
    names = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            continue  # a folded continuation of the previous header
        name, sep, _value = line.partition(b":")
        assert sep and re.fullmatch(rb"[A-Za-z-]+", name), line
        names.append(name.decode())
    assert sorted(names) == sorted(EXPECTED_HEADERS), names
    recipient = re.search(rb"^To: .*<([^>]+)>", head, re.M) or re.search(rb"^To: (\S+)", head, re.M)
    token, shown = tokens[present(recipient).group(1).decode()]
    boundary = present(re.search(rb'boundary="([^"]+)"', head)).group(1)
    text, html = _parts(body, boundary)
    for document in (text, html):
        # A name that spells placeholders is shown as written (html-escaped or not), never
        # expanded; apart from it, no placeholder is left, live or not.
        rest = document.replace(shown, "")
        for placeholder in ("%%UNSUBSCRIBE_URL%%", "%%NAME%%", "%%PREFERENCES_URL%%"):
            assert placeholder not in rest, placeholder
        for found in re.finditer(re.escape(token), document):
            before = document[max(0, found.start() - 80) : found.start()]
            assert re.search(rf"{PUBLIC}/(unsubscribe|preferences)\?token=$", before), before
        assert "javascript:" not in document.lower() and "<script" not in document.lower()
    _assert_inert(html)
    for url in re.findall(r'(?:href|src)="([^"]*)"', html):
        if "evil.example" in url:
            assert token not in url and "%%" not in url, url
    return html


def _parts(body: bytes, boundary: bytes) -> tuple[str, str]:
    decoded = {}
    for chunk in body.split(b"--" + boundary)[1:]:
        header, _, payload = chunk.partition(b"\r\n\r\n")
        kind = re.search(rb"Content-Type: (text/\w+)", header)
        if kind:
            decoded[kind.group(1).decode()] = binascii.a2b_qp(payload).decode("utf-8")
    return decoded["text/plain"], decoded["text/html"]


class _Inert(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed"):
            self.bad.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.bad.append(f"<{tag} {name}>")
            if name in ("href", "src") and (value or "").strip().lower().startswith("javascript:"):
                self.bad.append(f"<{tag} {name}={value}>")


def _assert_inert(html: str) -> None:
    parser = _Inert()
    parser.feed(html)
    assert parser.bad == []


def _check_document(path: Path) -> None:
    """The raw bytes hold no script tag or javascript: URL, and every HTML fragment inside
    (archive page, RSS description/content:encoded, Atom content, JSON content_html) is
    inert once decoded."""
    raw = path.read_bytes()
    assert b"<script" not in raw.lower() and b"javascript:" not in raw.lower(), path
    if path.suffix == ".html":
        _assert_inert(raw.decode("utf-8"))
    elif path.suffix == ".json":
        stack: list[object] = [json.loads(raw)]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
            elif isinstance(value, str):
                _assert_inert(value)
    else:
        for element in etree.fromstring(raw).iter():
            for text in (element.text, *element.attrib.values()):
                if text:
                    assert "javascript:" not in text.lower(), path
                    _assert_inert(text)
