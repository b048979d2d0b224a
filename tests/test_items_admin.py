"""The items page (issue 20) on SQLite and PostgreSQL: the store's search (text, source,
topic, kind, dates, status, editions) and its keyset pages (nobody skipped or repeated while
items arrive between pages); un-retiring (the next collect updates the item again); staff's
topics kept across collects of a changed feed entry, and followed by the next edition's
sections and the topic feeds; the pages over HTTP against a real server: filters in the
URL, hostile titles escaped, ids holding `/` and `:`, every change audited, a viewer's
POSTs refused; `publisher items unretire`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote, urljoin

import httpx
import pytest
from lxml import html as lxml_html

from publisher.config import load_config
from publisher.pipeline import next_selection
from publisher.store import audit
from publisher.store.editions import NewEdition, save_edition
from publisher.store.feeds_queries import content_signature
from publisher.store.item_search import Cursor, ItemQuery, item_entry, search_items
from publisher.store.items import (
    ItemNotFound,
    list_items,
    retire_item,
    set_topics_override,
    unretire_item,
    upsert_items,
)
from tests.admin_support import STAFF, add_accounts, csrf_of, log_in, xpath_strings
from tests.conftest import FIXED_NOW
from tests.items_support import PartnerFeed, collect, items_config, sample, write_post
from tests.web_support import serve

DAY = timedelta(days=1)


@pytest.fixture
def partner() -> Iterator[PartnerFeed]:
    feed = PartnerFeed()
    yield feed
    feed.close()


def ids(store, **query: object) -> list[str]:
    return [e.item.id for e in search_items(store, ItemQuery(**query)).entries]  # type: ignore[arg-type]


def edition(store, number: int, item_ids: list[str]) -> int:
    stored, _ = save_edition(
        store,
        NewEdition(
            "weekly", number, None, FIXED_NOW, f"Weekly #{number}", "", "<p>x</p>", "x",
            [("news", i, item_id) for i, item_id in enumerate(item_ids)],
        ),
    )  # fmt: skip
    return stored.id


# --- the store ---------------------------------------------------------------------------


def test_search_by_text_source_topic_kind_date_status_and_edition(store):
    upsert_items(
        store,
        [
            sample(1, title="Nurses WIN their strike", topics=("labor",)),
            sample(2, summary="A 100% rent_increase", topics=("housing",), kind="event"),
            sample(3, url="https://partner.example.org/Tenants", source="partner"),
            sample(4, title="Économie solidaire", topics=("labor", "housing")),
            sample(5, title="Old", published=FIXED_NOW - 40 * DAY),
        ],
        now=FIXED_NOW,
    )
    assert ids(store) == ["bulk:0001", "bulk:0002", "bulk:0003", "bulk:0004", "bulk:0005"]
    assert ids(store, text="nurses win") == ["bulk:0001"]  # any case
    assert ids(store, text="100%") == ["bulk:0002"]  # LIKE's wildcards are plain text
    assert ids(store, text="rent_inc") == ["bulk:0002"]
    assert ids(store, text="e_s") == [] and ids(store, text="t%i") == []  # not wildcards
    assert ids(store, text="tenants") == ["bulk:0003"]  # the URL too
    assert ids(store, text="  ") == ids(store)
    assert ids(store, source="partner") == ["bulk:0003"]
    assert ids(store, topic="Labor") == ["bulk:0001", "bulk:0004"]  # through the slug
    assert ids(store, topic="lab") == []  # a whole topic, not a piece of one
    assert ids(store, kind="event") == ["bulk:0002"]
    window = {"published_from": FIXED_NOW - 3 * 3600 * timedelta(seconds=1)}
    assert ids(store, **window, published_to=FIXED_NOW - timedelta(hours=1)) == [
        "bulk:0002",
        "bulk:0003",
    ]
    assert ids(store, published_to=FIXED_NOW - 30 * DAY) == ["bulk:0005"]
    retire_item(store, "bulk:0003", now=FIXED_NOW)
    assert ids(store, status="retired") == ["bulk:0003"]
    assert "bulk:0003" not in ids(store, status="live") and len(ids(store, status="live")) == 4
    first = edition(store, 1, ["bulk:0001", "bulk:0002"])
    second = edition(store, 2, ["bulk:0002"])
    assert ids(store, edition=first) == ["bulk:0001", "bulk:0002"]
    assert ids(store, edition=second) == ["bulk:0002"]
    assert ids(store, edition="any") == ["bulk:0001", "bulk:0002"]
    assert ids(store, edition="none") == ["bulk:0003", "bulk:0004", "bulk:0005"]
    entries = search_items(store, ItemQuery(edition="any")).entries
    assert [[(e.campaign, e.number) for e in x.editions] for x in entries] == [
        [("weekly", 1)],
        [("weekly", 1), ("weekly", 2)],
    ]
    # the filters combine; the topic filter reads staff's topics once they are set
    assert ids(store, topic="housing", kind="news") == ["bulk:0004"]
    set_topics_override(store, "bulk:0004", ["Culture"], by="edu@example.org", now=FIXED_NOW)
    assert ids(store, topic="housing") == ["bulk:0002"]
    assert ids(store, topic="culture") == ["bulk:0004"]


def test_pages_of_250_items_with_arrivals_between_pages_skip_and_repeat_nobody(store):
    # pairs share a date, so the order also rests on the id
    upsert_items(
        store,
        [sample(n, published=FIXED_NOW - timedelta(hours=n // 2)) for n in range(250)],
        now=FIXED_NOW,
    )
    seen: list[str] = []
    after: Cursor | None = None
    pages = 0
    while True:
        page = search_items(store, ItemQuery(after=after, limit=40))
        seen += [e.item.id for e in page.entries]
        pages += 1
        # newer, older and same-date items arrive while staff read
        arrivals = [
            sample(1000 + pages, published=FIXED_NOW + DAY),
            sample(2000 + pages, published=FIXED_NOW - 400 * DAY),
        ]
        if page.entries:
            last = page.entries[-1].item
            arrivals.append(sample(3000 + pages, published=last.published))
        upsert_items(store, arrivals, now=FIXED_NOW)
        if page.next is None:
            break
        after = page.next
    original = [f"bulk:{n:04d}" for n in range(250)]
    assert len(seen) == len(set(seen)), "an item was repeated"
    assert set(original) <= set(seen), "an item was skipped"
    # the older arrivals come after the cursor: each is seen, but the one after the end
    assert {f"bulk:{2000 + p}" for p in range(1, pages)} <= set(seen)
    assert not {f"bulk:{1000 + p}" for p in range(1, pages + 1)} & set(seen)  # newer: before
    ordered = [
        (e.item.published, e.item.id) for e in search_items(store, ItemQuery(limit=10_000)).entries
    ]
    assert ordered == sorted(ordered, reverse=True)  # newest first, then by id
    assert [i for i in seen if i in original] == [i for _, i in ordered if i in original]


def test_unretire_then_collect_updates_the_item(project, make_config, store):
    config = make_config("sources:\n  - {name: posts, type: markdown, path: content}\n")
    write_post(project, "strike", "Nurses strike")
    collect(config, store)
    (item_id,) = [i.id for i in list_items(store)]
    retire_item(store, item_id, now=FIXED_NOW)
    write_post(project, "strike", "Nurses win their strike")
    collect(config, store, FIXED_NOW + timedelta(hours=1))
    assert list_items(store) == []  # retired: the collect left it as it was
    assert item_entry(store, item_id).item.title == "Nurses strike"  # type: ignore[union-attr]
    back = unretire_item(store, item_id, now=FIXED_NOW + timedelta(hours=2))
    assert back.title == "Nurses strike"
    collect(config, store, FIXED_NOW + timedelta(hours=3))
    assert [i.title for i in list_items(store)] == ["Nurses win their strike"]
    with pytest.raises(ItemNotFound):
        unretire_item(store, "posts:nothing", now=FIXED_NOW)


def test_a_topic_override_survives_a_changed_feed_entry_and_moves_the_item(project, store, partner):
    config = load_config_for(project, partner)
    partner.entries = [("a/1", "Rent strike grows", FIXED_NOW - DAY, ["Labor"])]
    collect(config, store)
    item_id = "partner:https://partner.example.org/a/1"
    assert sections(config, store) == {"labor": ["Rent strike grows"], "housing": []}
    feeds_before = content_signature(store, set())
    set_topics_override(store, item_id, ["Housing"], by="edu@example.org", now=FIXED_NOW)
    assert content_signature(store, set()) != feeds_before  # topic feeds are rebuilt
    # the partner edits the entry: a new title and another category
    partner.entries = [("a/1", "Rent strike grows to 40 buildings", FIXED_NOW - DAY, ["Strikes"])]
    collect(config, store, FIXED_NOW + timedelta(hours=1))
    entry = item_entry(store, item_id)
    assert entry is not None and entry.overridden and entry.override_by == "edu@example.org"
    assert entry.item.title == "Rent strike grows to 40 buildings"  # the rest is updated
    assert entry.item.topics == ("housing",) and entry.source_topics == ("strikes",)
    assert sections(config, store) == {
        "labor": [],
        "housing": ["Rent strike grows to 40 buildings"],
    }
    assert [i.id for i in list_items(store, topic="housing")] == [item_id]  # feeds' reading
    assert list_items(store, topic="strikes") == []
    # back to the feed's own topics
    set_topics_override(store, item_id, None, by="edu@example.org", now=FIXED_NOW)
    assert item_entry(store, item_id).item.topics == ("strikes",)  # type: ignore[union-attr]
    assert sections(config, store) == {"labor": [], "housing": []}


def load_config_for(project, partner):
    (project / "schedules.yaml").write_text(
        items_config(partner).format(public_url="https://www.example.org/news"), encoding="utf-8"
    )
    return load_config(project / "schedules.yaml")


def sections(config, store) -> dict[str, list[str]]:
    selection = next_selection(config, store, "weekly", now=FIXED_NOW + timedelta(hours=2))
    return {s.name: [i.title for i in s.items] for s in selection.sections}


# --- the pages over HTTP -----------------------------------------------------------------


@pytest.fixture
def served(project, store, partner):
    add_accounts(store)
    with serve(project, store, config_text=items_config(partner)) as running:
        yield running


def client(served) -> httpx.Client:
    return httpx.Client(base_url=served.url, follow_redirects=True, timeout=30)


def titles(page: str) -> list[str]:
    return xpath_strings(lxml_html.fromstring(page), '//td[@class="title"]/a/text()')


def test_the_filters_live_in_the_url_and_pages_follow_next(served, store):
    upsert_items(store, [sample(n, topics=("labor",) if n % 2 else ()) for n in range(120)],
                 now=FIXED_NOW)  # fmt: skip
    with client(served) as http:
        log_in(http, STAFF["viewer"])
        seen, url = [], "/admin/items?topic=labor&source=bulk"
        while url:
            page = http.get(url)
            assert page.status_code == 200
            seen += titles(page.text)
            tree = lxml_html.fromstring(page.text)
            nexts = xpath_strings(tree, '//a[@class="next"]/@href')
            url = urljoin(str(page.url), nexts[0]) if nexts else ""
            if url:
                assert "topic=labor" in url and "source=bulk" in url  # the filter is kept
        assert seen == [f"Item {n}" for n in range(1, 120, 2)]
        page = http.get("/admin/items?q=item+7&kind=news&from=2026-11-24&to=2026-11-25")
        assert titles(page.text) == ["Item 7"]  # the days are New York's
        assert 'value="item 7"' in page.text and 'value="2026-11-24"' in page.text
        assert titles(http.get("/admin/items?status=retired").text) == []
        for bad in ("kind=poem", "from=yesterday", "status=gone", "edition=x", "colour=red",
                    "after=garbage"):  # fmt: skip
            refused = http.get(f"/admin/items?{bad}")
            assert refused.status_code == 400, bad
            assert "not understood" in refused.text


def test_hostile_titles_are_escaped(served, store):
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    upsert_items(
        store,
        [sample(1, title=hostile, id="bulk:<b>", summary=hostile,
                body_html='<p>ok</p><script>alert(3)</script><img src=x onerror="alert(4)">')],
        now=FIXED_NOW,
    )  # fmt: skip
    with client(served) as http:
        log_in(http, STAFF["editor"])
        listing = http.get(f"/admin/items?q={quote('<script>')}").text
        assert titles(listing) == [hostile]
        page = http.get("/admin/items/" + quote("bulk:<b>", safe=""))
    for html in (listing, page.text):
        assert "<script>alert" not in html and "onerror" not in html.replace(
            "onerror=alert(2)&gt;", ""
        )
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert page.status_code == 200 and "<p>ok</p>" in page.text


def test_an_editor_retires_brings_back_and_corrects_topics_of_an_id_with_slashes(
    served, store, partner, project
):
    partner.entries = [("a/1", "Rent strike grows", FIXED_NOW - DAY, ["Labor"])]
    collect(served.config, store)
    item_id = "partner:https://partner.example.org/a/1"
    with client(served) as http:
        log_in(http, STAFF["editor"])
        listing = http.get("/admin/items?source=partner")
        (href,) = xpath_strings(lxml_html.fromstring(listing.text), '//td[@class="title"]/a/@href')
        page = http.get(urljoin(str(listing.url), href))
        assert page.status_code == 200 and "Rent strike grows" in page.text
        # the page's own links resolve from where the browser is
        tree = lxml_html.fromstring(page.text)
        (back,) = xpath_strings(tree, '//a[text()="Back to the items"]/@href')
        assert http.get(urljoin(str(page.url), back)).url.path == "/admin/items"
        (css,) = xpath_strings(tree, '//link[contains(@href, "admin.css")]/@href')
        assert http.get(urljoin(str(page.url), css)).status_code == 200
        typed = http.get(f"/admin/items/{item_id}")  # the id typed in, slashes and all
        (back,) = xpath_strings(
            lxml_html.fromstring(typed.text), '//a[text()="Back to the items"]/@href'
        )
        assert urljoin(str(typed.url), back) == f"{served.url}/admin/items"
        csrf = csrf_of(page.text)
        done = http.post("/admin/items/retire", data={"csrf": csrf, "item": item_id})
        assert "Retired" in done.text and done.url.path == page.url.path
        assert item_entry(store, item_id).retired_at is not None  # type: ignore[union-attr]
        assert "left out: retired" in done.text
        done = http.post("/admin/items/unretire", data={"csrf": csrf, "item": item_id})
        assert "Brought back" in done.text
        assert item_entry(store, item_id).retired_at is None  # type: ignore[union-attr]
        assert "in the next edition, section labor" in done.text
        form = {"csrf": csrf, "item": item_id, "topics": "housing", "other": "Rent, Tenants",
                "do": "save"}  # fmt: skip
        done = http.post("/admin/items/topics", data=form)
        assert "Topics saved: housing, rent, tenants." in done.text
        assert "in the next edition, section housing" in done.text
        assert "From the feed" in done.text and "Use the feed's topics" in done.text
        done = http.post(
            "/admin/items/topics", data={"csrf": csrf, "item": item_id, "do": "source"}
        )
        assert item_entry(store, item_id).item.topics == ("labor",)  # type: ignore[union-attr]
        missing = http.post("/admin/items/retire", data={"csrf": csrf, "item": "posts:none"})
        assert missing.status_code == 404
    logged = [(e.actor, e.action, e.target) for e in audit.recent(store)][:4]
    target = f"Rent strike grows ({item_id})"
    assert logged == [
        ("edu@example.org", "item topics from the source", f"{target}: labor"),
        ("edu@example.org", "item topics set", f"{target}: housing, rent, tenants"),
        ("edu@example.org", "item brought back", target),
        ("edu@example.org", "item retired", target),
    ]


def test_a_viewer_sees_everything_and_changes_nothing(served, store):
    upsert_items(store, [sample(1)], now=FIXED_NOW)
    with client(served) as http:
        log_in(http, STAFF["viewer"])
        page = http.get("/admin/items/bulk%3A0001")
        assert page.status_code == 200 and "Item 1" in page.text
        assert "Retire" not in page.text and "Save topics" not in page.text
        csrf = csrf_of(page.text)  # the log-out form's token: a valid one
        for path, extra in (("retire", {}), ("unretire", {}), ("topics", {"topics": "x"})):
            refused = http.post(
                f"/admin/items/{path}", data={"csrf": csrf, "item": "bulk:0001", **extra}
            )
            assert refused.status_code == 403, path
        assert http.get("/admin/items/bulk%3Anothing").status_code == 404
    entry = item_entry(store, "bulk:0001")
    assert entry is not None and entry.retired_at is None and not entry.overridden
    assert not [e for e in audit.recent(store) if e.action.startswith("item")]


def test_the_cli_brings_an_item_back(project, make_config, store, database_url):
    from typer.testing import CliRunner

    from publisher.cli import app

    make_config()
    upsert_items(store, [sample(1)], now=FIXED_NOW)
    retire_item(store, "bulk:0001", now=FIXED_NOW)
    args = ["--config", str(project / "schedules.yaml"), "items", "unretire"]
    env = {"PUBLISHER_DATABASE_URL": database_url}
    result = CliRunner().invoke(app, [*args, "bulk:0001"], env=env)
    assert result.exit_code == 0, result.output
    assert "brought back bulk:0001 ('Item 1')" in result.output
    assert [i.id for i in list_items(store)] == ["bulk:0001"]
    missing = CliRunner().invoke(app, [*args, "bulk:nothing"], env=env)
    assert isinstance(missing.exception, ItemNotFound)


def test_csrf_is_checked(served, store):
    upsert_items(store, [sample(1)], now=FIXED_NOW)
    with client(served) as http:
        log_in(http, STAFF["editor"])
        refused = http.post("/admin/items/retire", data={"item": "bulk:0001"})
        assert refused.status_code == 403
        assert re.search("too old or did not come from this dashboard", refused.text)
    assert item_entry(store, "bulk:0001").retired_at is None  # type: ignore[union-attr]
