"""Writes the hostile corpus in this folder (run it after editing; the files are committed).

.venv/bin/python tests/hostile/make_corpus.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
CONTENT = HERE / "content"
LONG_TITLE = "Very long title " * 9_600  # about 150 KB
EVIL = "https://evil.example"
NESTED = "[" * 5000 + "]" * 5000


def front(meta: str, body: str = "Body text.\n") -> str:
    return f"---\n{meta}---\n\n{body}"


MARKDOWN = {
    "good-post.md": front(
        "title: Good post\ndate: 2026-11-20T10:00:00Z\ntopics: [economic-justice]\n",
        "A perfectly ordinary post.\n",
    ),
    "control-characters.md": front(
        'title: "Wage theft\x0b report\x01 from Word\x1b"\ndate: 2026-11-20T11:00:00Z\n'
        'summary: "Soft\x0bbreak summary"\n',
        "Line one\x0bline two \x1b[31mred\x1b[0m and tab\tstays.\n",
    ),
    "far-future.md": front("title: Far future\ndate: 9999-12-31T23:00:00-05:00\n"),
    "alias-bomb.md": "---\ntitle: Bomb\ndate: 2026-11-20\n"
    + 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
        for i in range(8)
    )
    + "---\nbody\n",
    "deep-front-matter.md": front(f"title: Deep\ndate: 2026-11-20\nx: {NESTED}\n"),
    "placeholders.md": front(
        'title: "Win %%UNSUBSCRIBE_URL%% for %%NAME%%"\ndate: 2026-11-21T09:00:00Z\n'
        f'url: "{EVIL}/track?u=%%UNSUBSCRIBE_URL%%&n=%%NAME%%"\n'
        f'image: "{EVIL}/pixel.png?%%UNSUBSCRIBE_URL%%"\nkind: resource\n'
        'author: "%%NAME%%"\nsummary: "Read %%PREFERENCES_URL%% now"\n',
        f"[click]({EVIL}/?t=%%UNSUBSCRIBE_URL%%) %%NAME%%\n",
    ),
    "script-everywhere.md": front(
        'title: "Scripted <script>alert(1)</script>title"\ndate: 2026-11-21T10:00:00Z\n'
        'summary: "<script>alert(2)</script>Safe <b onmouseover=alert(3)>summary</b>"\n'
        'author: "<img src=x onerror=alert(4)>Eve"\nimage_alt: "<svg onload=alert(5)>"\n',
        "<script>alert(6)</script>\n\n<img src=x onerror=alert(7)>\n\n"
        '<a href="javascript:alert(8)">js link</a> <a href="JaVaScRiPt:alert(9)">js 2</a>\n\n'
        '<p onclick="alert(10)">para</p><iframe src="https://evil.example/"></iframe>\n',
    ),
    "world-topics.md": front(
        "title: Topics of the world\ndate: 2026-11-21T11:00:00Z\ntopics: [经济, Экономика]\n"
    ),
    "to-delete.md": front("title: Deleted later\ndate: 2026-11-21T12:00:00Z\n"),
}

EXPORT = [
    {"title": "Good export", "slug": "good-export", "date": "2026-11-22T09:00:00Z"},
    {"title": "Broken \ud800 surrogate", "slug": "surrogate", "date": "2026-11-22T10:00:00Z"},
    {"title": {"not": "text"}, "slug": "wrong-type", "date": "2026-11-22T10:00:00Z"},
    {"title": LONG_TITLE, "slug": "long-title", "date": "2026-11-22T11:00:00Z"},
]

RSS_ITEMS = [
    # (title xml, link, guid, date, extra)
    ("std::vector&lt;int&gt; explained", "https://partner.example/posts/vector",
     "urn:p:1", "Mon, 23 Nov 2026 10:00:00 GMT",
     "<category>经济</category><category>Экономика</category>"
     "<description>&lt;p&gt;See &lt;a href=\"#comments\"&gt;the comments&lt;/a&gt; and "
     "&lt;a href=\"javascript:alert(1)\"&gt;this&lt;/a&gt;&lt;img src=\"/i.png\" "
     "onerror=\"alert(2)\"&gt;&lt;/p&gt;&lt;script&gt;alert(3)&lt;/script&gt;</description>"),
    ("Compare a&lt;b and b&gt;c", "https://partner.example/posts/compare",
     "urn:p:2", "Mon, 23 Nov 2026 11:00:00 GMT", ""),
    ("Status with a URL guid", None, "https://partner.example/status/3",
     "Mon, 23 Nov 2026 12:00:00 GMT", ""),
    ("Status with an opaque guid", None, "status-4-opaque",
     "Mon, 23 Nov 2026 12:30:00 GMT", ""),
    ("First of a duplicate", "https://partner.example/posts/dup-a", "urn:p:dup",
     "Mon, 23 Nov 2026 13:00:00 GMT", ""),
    ("Second of a duplicate", "https://partner.example/posts/dup-b", "urn:p:dup",
     "Mon, 23 Nov 2026 13:30:00 GMT", ""),
    (LONG_TITLE, "https://partner.example/posts/long", "urn:p:long",
     "Mon, 23 Nov 2026 14:00:00 GMT", ""),
    ("Year 9999", "https://partner.example/posts/9999", "urn:p:9999",
     "Fri, 31 Dec 9999 23:00:00 -0500", ""),
]  # fmt: skip


def rss() -> str:
    parts = []
    for title, link, guid, date, extra in RSS_ITEMS:
        link_xml = f"<link>{link}</link>" if link else ""
        parts.append(
            f"<item><title>{title}</title>{link_xml}<guid>{guid}</guid>"
            f"<pubDate>{date}</pubDate>{extra}</item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        "<title>Partner</title><link>https://partner.example/</link><description>d</description>"
        + "\n".join(parts)
        + "</channel></rss>\n"
    )


JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Partner JSON",
    "items": [
        {
            "id": "j-good",
            "url": "https://partner.example/j/good",
            "title": "Json <em>good</em> item",
            "summary": "<script>alert('summary')</script>Plain summary",
            "content_html": '<p onclick="x()">Hi <a href="#top">top</a></p>',
            "date_published": "2026-11-24T09:00:00Z",
            "authors": [{"name": "<script>alert(1)</script>Ann"}],
            "tags": ["Labor"],
        },
        {"id": "j-authors", "url": "https://partner.example/j/a", "title": "Authors wrong",
         "date_published": "2026-11-24T09:00:00Z", "authors": ["Bob"]},
        {"id": "j-name", "url": "https://partner.example/j/n", "title": "Name wrong",
         "date_published": "2026-11-24T09:00:00Z", "authors": [{"name": {}}]},
        {"id": "j-date", "url": "https://partner.example/j/d", "title": "Date wrong",
         "date_published": "9999-12-31T23:00:00-05:00"},
    ],
}  # fmt: skip


def main() -> None:
    CONTENT.mkdir(exist_ok=True)
    for name, text in MARKDOWN.items():
        (CONTENT / name).write_text(text, encoding="utf-8")
    (HERE / "export.json").write_text(json.dumps(EXPORT), encoding="utf-8")
    (HERE / "export-deep.json").write_text(NESTED, encoding="utf-8")
    (HERE / "partner.rss").write_text(rss(), encoding="utf-8")
    (HERE / "partner.json").write_text(json.dumps(JSON_FEED, ensure_ascii=False), "utf-8")
    five = {"version": "https://jsonfeed.org/version/1.1", "title": "Five", "items": 5}
    (HERE / "items-five.json").write_text(json.dumps(five), encoding="utf-8")
    deep = '{"version": "https://jsonfeed.org/version/1.1", "items": ' + NESTED + "}"
    (HERE / "deep-feed.json").write_text(deep, encoding="utf-8")


if __name__ == "__main__":
    main()
