"""The one slug function across scripts (issue 18): combining marks stay with their letter,
distinct words stay distinct topics, and topics stored by the old function still reach their
subscribers after migration 0008."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, text

from publisher.config import load_config
from publisher.store import MIGRATIONS, open_store
from publisher.store.items import list_items
from publisher.store.subscribers import follows, iter_subscribers
from publisher.support.slug import MAX_SLUG, legacy_slug, slugify
from tests.conftest import write_config

# (words, their slug): a word with a vowel sign or virama keeps it.
WHOLE = [
    ("आर्थिक न्याय", "आर्थिक-न्याय"),  # Devanagari (Hindi): virama and vowel signs
    ("অর্থনৈতিক ন্যায়", "অর্থনৈতিক-ন্যায়"),  # Bengali
    ("பொருளாதார நீதி", "பொருளாதார-நீதி"),  # Tamil
    ("ความยุติธรรม ทางเศรษฐกิจ", "ความยุติธรรม-ทางเศรษฐกิจ"),  # Thai
    ("យុត្តិធម៌ សេដ្ឋកិច្ច", "យុត្តិធម៌-សេដ្ឋកិច្ច"),  # Khmer: coeng and signs
    ("စီးပွားရေး တရားမျှတမှု", "စီးပွားရေး-တရားမျှတမှု"),  # Myanmar: asat, medials
    ("العدالة الاقتصادية", "العدالة-الاقتصادية"),  # Arabic
    ("צדק כלכלי", "צדק-כלכלי"),  # Hebrew
    ("经济正义", "经济正义"),  # CJK: one word, no separator
    ("Workers’ Rights", "workers-rights"),
    ("Économie solidaire", "economie-solidaire"),  # accents dropped from Latin only
    ("Справедливость", "справедливость"),
]

# Pairs of different words the old function made into one slug.
DISTINCT = [
    ("दिन", "दान"),  # day, donation (Devanagari)
    ("দিন", "দান"),  # Bengali
    ("படி", "பாடு"),  # Tamil
    ("กิน", "กัน"),  # eat, each other (Thai)
    ("កុំ", "កាំ"),  # Khmer
    ("မိုး", "မား"),  # Myanmar
    ("كَتَبَ", "كُتُب"),  # Arabic with harakat: wrote, books
    ("סֵפֶר", "סַפָּר"),  # Hebrew with niqqud: book, barber
    ("中国", "中國"),  # simplified and traditional are different strings
]


@pytest.mark.parametrize(("words", "slug"), WHOLE, ids=[w for w, _ in WHOLE])
def test_words_of_every_script_stay_whole(words, slug):
    assert slugify(words) == slug
    assert slugify(slug) == slug  # a slug is its own slug: config and stored topics agree
    assert slugify(words.upper()) == slug


@pytest.mark.parametrize(("one", "other"), DISTINCT, ids=[f"{a}-{b}" for a, b in DISTINCT])
def test_different_words_are_different_topics(one, other):
    assert slugify(one) and slugify(other)
    assert slugify(one) != slugify(other)


def test_the_issue_example_and_what_the_old_function_made_of_it():
    assert slugify("आर्थिक न्याय") == "आर्थिक-न्याय"
    assert legacy_slug(slugify("आर्थिक न्याय")) == "आरथ-क-नय-य"  # the issue's words
    assert legacy_slug(slugify("दिन")) == legacy_slug(slugify("दान"))  # the merge it did


def test_format_characters_join_and_punctuation_separates():
    assert slugify("ad\u00advocacy") == "advocacy"  # a soft hyphen is not a word break
    assert slugify("می\u200cخواهم") == "میخواهم"  # ZWNJ (Persian) joins
    assert slugify("a_b/c.d  e") == "a-b-c-d-e"
    assert slugify("—!?") == ""


def test_a_long_slug_is_never_cut_between_a_letter_and_its_mark():
    slug = slugify("कि" * 60)  # letter + vowel sign, 120 characters
    assert len(slug) <= MAX_SLUG and slug.endswith("कि")


def test_configuration_slugs_the_same_way(tmp_path):
    config = load_config(
        write_config(
            tmp_path,
            """\
            campaigns:
              - name: hindi
                title: Hindi
                subject: S
                audience: ["आर्थिक न्याय", "दिन"]
                sections: [{name: news, topics: ["กิน"]}]
            """,
        )
    )
    campaign = config.campaigns[0]
    assert campaign.audience == ["आर्थिक-न्याय", "दिन"]
    assert campaign.sections[0].topics == ["กิน"]


def test_old_slugs_still_follow_their_audience_and_nothing_more():
    assert follows(("आरथ-क-नय-य",), ["आर्थिक-न्याय"])  # stored by the old function
    assert follows(("द-न",), ["दान"]) and follows(("द-न",), ["दिन"])  # merged: both kept
    assert follows(("आर्थिक-न्याय",), ["आर्थिक-न्याय"])
    assert not follows(("दिन",), ["दान"])  # new slugs are exact
    assert not follows(("ก-น",), ["ข่าว"])


def _store_at(url: str, revision: str) -> None:
    """The schema at `revision` (PostgreSQL test databases start migrated: down, then)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(url)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
        command.downgrade(cfg, revision)
    engine.dispose()


def test_migration_reslugs_stored_topics_without_losing_a_choice(database_url):
    _store_at(database_url, "0006")
    now = datetime(2026, 11, 25, tzinfo=UTC)
    engine = create_engine(database_url)
    with engine.begin() as connection:
        rows = [
            (1, "ann@example.org", '["आर्थिक न्याय", "Workers Rights"]', "a" * 64),  # as written
            (2, "bo@example.org", '["आरथ-क-नय-य"]', "b" * 64),  # slugged the old way
            (3, "cy@example.org", '["!!!"]', "c" * 64),  # no letter: kept, never "all"
            (4, "di@example.org", '["labor", "LABOR"]', "d" * 64),
        ]
        for row_id, email, chosen, token in rows:
            connection.execute(
                text(
                    "INSERT INTO subscribers (id, email, topics, status, token, created_at,"
                    " updated_at) VALUES (:id, :email, :topics, 'active', :token, :now, :now)"
                ),
                {"id": row_id, "email": email, "topics": chosen, "token": token, "now": now},
            )
        connection.execute(
            text(
                "INSERT INTO items (id, source, title, url, summary, body_html, published, kind,"
                " topics, content_hash, first_seen, last_changed) VALUES ('p:1', 'p', 'T',"
                " 'https://e.org/1', '', '', :now, 'article', :topics, 'h', :now, :now)"
            ),
            {"now": now, "topics": '["Économie Solidaire", "กิน", "กิน"]'},
        )
    engine.dispose()
    store = open_store(database_url)  # migrates to the newest revision
    try:
        topics = {s.email: s.topics for s in iter_subscribers(store)}
        [item] = list_items(store)
    finally:
        store.close()
    assert item.topics == ("economie-solidaire", "กิน") and item.day is None
    assert topics["ann@example.org"] == ("आर्थिक-न्याय", "workers-rights")
    assert topics["bo@example.org"] == ("आरथ-क-नय-य",)
    assert topics["cy@example.org"] == ("!!!",)
    assert topics["di@example.org"] == ("labor",)
    audience = ["आर्थिक-न्याय"]
    assert follows(topics["ann@example.org"], audience)
    assert follows(topics["bo@example.org"], audience)  # nobody lost the choice
    assert not follows(topics["cy@example.org"], audience)
