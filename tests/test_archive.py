"""The web archive pages: edition page without personal links, index newest first."""

from __future__ import annotations

from datetime import timedelta

from publisher.publish.archive import ArchiveEntry, web_copy, write_edition_page, write_index_page
from tests.test_render_fixtures import sample_campaign, sample_config


def test_edition_page_replaces_every_placeholder(tmp_path):
    org = sample_config().organisation
    html = (
        "<!doctype html><p>Hello %%NAME%%,</p><a href='%%UNSUBSCRIBE_URL%%'>u</a>"
        "<a href='%%PREFERENCES_URL%%'>p</a>"
    )
    path = write_edition_page(tmp_path, org, "weekly", 7, html)
    assert path == tmp_path / "archive" / "weekly" / "7.html"
    page = path.read_text()
    assert page == web_copy(html, org)
    assert "%%" not in page and "Hello friend," in page
    assert "https://www.example.org/news/unsubscribe'" in page
    assert not list(path.parent.glob(".*.tmp"))  # written atomically, nothing left behind


def test_index_lists_editions_newest_first_and_escapes_subjects(tmp_path, fixed_now):
    config = sample_config()
    entries = [
        ArchiveEntry(1, "First <edition>", fixed_now - timedelta(days=7), 5),
        ArchiveEntry(2, "Second & last", fixed_now, 1),
    ]
    path = write_index_page(tmp_path, config.organisation, sample_campaign(config), entries)
    page = path.read_text()
    assert path.name == "index.html"
    assert page.index('href="2.html"') < page.index('href="1.html"')
    assert "First &lt;edition&gt;" in page and "Second &amp; last" in page
    assert "1 item<" in page and "5 items" in page
    assert 'lang="en"' in page and "18 November 2026" in page


def test_empty_index(tmp_path):
    config = sample_config()
    page = write_index_page(tmp_path, config.organisation, sample_campaign(config), []).read_text()
    assert "No editions yet." in page
