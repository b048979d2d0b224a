"""The campaign page at scale (issue 20 benchmark): a big store leaves out hundreds of
items, so the page lists the newest few and every item an editor excluded, counts the
rest, and lists every one on request."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from lxml import html as lxml_html

from publisher.config import load_config
from publisher.items import Item
from publisher.pipeline import compose_campaign
from publisher.web.admin import campaigns
from tests.admin_support import STAFF, add_accounts, log_in, xpath_list
from tests.conftest import FIXED_NOW
from tests.test_late_items import HOUR, LEFT_OUT_CONFIG, REASONS, T0, stock_every_reason
from tests.web_support import serve

EXCLUDED = "excluded by an editor"


def _left(n: int, excluded_at: int) -> list[tuple[Item, str]]:
    return [
        (
            Item(id=f"t:{k}", title=f"Item {k}", url="", published=FIXED_NOW - timedelta(hours=k),
                 source="t"),
            EXCLUDED if k == excluded_at else "older than the lookback",
        )
        for k in range(n)
    ]  # fmt: skip


def test_the_newest_are_listed_with_every_editor_exclusion_and_the_rest_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(campaigns, "LEFT_OUT_SHOWN", 3)
    left = _left(10, excluded_at=8)
    shown, more = campaigns._shown_left_out(left, everything=False)
    assert [i.id for i, _ in shown] == ["t:0", "t:1", "t:2", "t:8"]
    assert more == 6
    assert campaigns._shown_left_out(left, everything=True) == (left, 0)
    assert campaigns._shown_left_out(left[:3], everything=False) == (left[:3], 0)


def _listed(page: str) -> list[str]:
    tree = lxml_html.fromstring(page)
    found = xpath_list(tree, '//li[@class="left-out"]')
    return [
        " ".join(e.text_content().split()) for e in found if isinstance(e, lxml_html.HtmlElement)
    ]


def test_the_campaign_page_lists_a_few_left_out_items_and_all_on_request(
    project, store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaigns, "LEFT_OUT_SHOWN", 2)
    add_accounts(store)
    with serve(project, store, config_text=LEFT_OUT_CONFIG) as served:
        stock_every_reason(project, store, served.config.organisation.public_url)
        # as test_late_items: two editions (https archive links) leave nothing new to send
        https = project / "https.yaml"
        https.write_text(LEFT_OUT_CONFIG.format(public_url="https://www.example.org/news"))
        for _ in (1, 2):
            compose_campaign(load_config(https), store, "weekly", now=T0 - HOUR / 2)
        with httpx.Client(base_url=served.url, follow_redirects=True, timeout=30) as http:
            log_in(http, STAFF["editor"])
            page = http.get("/admin/campaigns/weekly").text
            [link] = xpath_list(
                lxml_html.fromstring(page), '//a[text()="List every item left out"]'
            )
            assert isinstance(link, lxml_html.HtmlElement)
            assert link.get("href") == "../../admin/campaigns/weekly?left_out=all"
            everything = http.get("/admin/campaigns/weekly?left_out=all").text
    shown, every = _listed(page), _listed(everything)
    assert len(shown) == 2 and len(every) > 2
    assert every[:2] == shown  # the newest first, the same on both
    assert f"{len(every) - 2} older items left out and not listed." in " ".join(page.split())
    assert all(any(line.startswith(t) for line in every) for t in REASONS if t in page), every
