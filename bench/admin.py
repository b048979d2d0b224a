"""/admin at scale: every staff page timed through the real application, logged in, on a
store of 1,000,000 subscribers, 10,000 items, 200 editions, 5,000,000 ledger rows and
2,000,000 webhook events, on SQLite and on a throwaway PostgreSQL cluster; p50/p95 per page
against /healthz (the framework's floor, in the same process), the peak RSS, and the
Markdown rendering of a 5,000-word post.

    .venv/bin/python -m bench admin                  # full size, both databases
    BENCH_ADMIN_SCALE=0.001 BENCH_ADMIN_DB=sqlite .venv/bin/python -m bench admin

BENCH_ADMIN_SCALE multiplies every size (the smoke test runs it tiny), BENCH_ADMIN_DB is
`sqlite`, `postgresql` or `both`, BENCH_ADMIN_REPEAT the requests per page (default 20),
BENCH_ADMIN_PAGES a comma-separated list of page names to time (default: every page).
The SQLite file is cached under /tmp by size and schema head, so reruns skip the load.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from alembic.script import ScriptDirectory

from bench._admin_data import NOW, Sizes, load
from bench.common import throwaway_postgresql
from publisher.config import load_config
from publisher.store import Store, open_store
from publisher.store.audit import record
from publisher.store.staff import add_staff, set_second_factor_policy
from publisher.web import create_app

OWNER, PASSWORD = "olga@example.org", "bench password of the owner"
CONFIG = """\
organisation:
  name: Bench Org
  website: https://www.example.org
  public_url: https://www.example.org/news
  postal_address: 1 Main St
  from_email: news@example.org
  timezone: America/New_York
sources:
  - name: posts
    type: markdown
    path: content
campaigns:
  - name: weekly
    title: Weekly
    subject: This week
    audience: [labor, housing]
    lookback_days: 30
    cadence: "weekly: mon 09:00"
    sections:
      - name: news
        type: list
        topics: [labor, housing, climate]
  - name: alerts
    title: Alerts
    subject: Alert
    audience: [transit]
    lookback_days: 7
    cadence: "daily: 08:00"
    sections:
      - name: news
        type: list
        topics: [transit]
delivery:
  backend: file
"""
TARGET_MS = 300.0
MARKDOWN_TARGET_MS = 100.0

# Every /admin page, one row each: (name, path). {edition}, {subscriber} are filled in.
# Pages other parts add (posts, items, media, import) go here as one line each.
PAGES: list[tuple[str, str]] = [
    ("overview", "/admin/"),
    ("campaign", "/admin/campaigns/weekly"),
    ("campaign preview", "/admin/campaigns/weekly/preview"),
    ("edition", "/admin/editions/{edition}"),
    ("subscribers", "/admin/subscribers"),
    ("subscriber", "/admin/subscribers/{subscriber}"),
    ("search", "/admin/subscribers?q=person4242"),
    ("audit", "/admin/audit"),
    ("staff", "/admin/staff"),
    ("account", "/admin/account"),
    ("posts", "/admin/posts"),
    ("new post", "/admin/posts/new"),
    ("post editor", "/admin/posts/1"),
    ("post revisions", "/admin/posts/1/revisions"),
    ("images", "/admin/media"),
    ("items", "/admin/items"),
    ("items search", "/admin/items?q=number+4242"),
    ("item", "/admin/items/item-{item}"),
    ("welcome email", "/admin/welcome"),
    ("welcome preview", "/admin/welcome/preview"),
    ("add a person", "/admin/subscribers/new"),
    ("import people", "/admin/subscribers/import"),
    ("import preview (none pending: 404)", "/admin/subscribers/import/1"),
    ("broadcasts", "/admin/broadcasts"),
    ("new broadcast", "/admin/broadcasts/new"),
    ("broadcast reach", "/admin/broadcasts/count?topics=labor&exclude=housing"),
    ("broadcast (none: 404)", "/admin/broadcasts/1"),
    ("broadcast preview (none)", "/admin/broadcasts/1/preview"),
    ("send now", "/admin/campaigns/weekly/send-now"),
    ("uncertain sends (303 if none)", "/admin/campaigns/weekly/send/uncertain"),
    ("approvals", "/admin/approvals"),
    ("webhooks", "/admin/webhooks"),
    ("webhook (none: 404)", "/admin/webhooks/1"),
    ("API keys", "/admin/api-keys"),
]
POSTS = 50  # posts written in /admin, each saved three times (revisions)


@dataclass(frozen=True)
class Timing:
    name: str
    p50: float  # milliseconds
    p95: float
    status: int


def _sizes() -> Sizes:
    scale = float(os.environ.get("BENCH_ADMIN_SCALE", "1"))
    full = Sizes()
    return Sizes(
        *(
            max(2, int(getattr(full, f) * scale))
            for f in ("subscribers", "items", "editions", "deliveries", "events", "suppressions")
        )
    )


def _head() -> str:
    from publisher.store import migrations

    script = ScriptDirectory(str(Path(migrations.__file__).parent))
    return str(script.get_current_head())


def _seed(store: Store, sizes: Sizes) -> None:
    started = time.perf_counter()
    load(store, sizes)
    add_staff(store, OWNER, "owner", PASSWORD, now=NOW)
    set_second_factor_policy(store, "off")
    for n in range(300):
        record(store, OWNER, "pause" if n % 2 else "resume", "weekly", ip="10.0.0.1", now=NOW)
    _write_posts(store)
    print(f"  loaded {sizes} in {time.perf_counter() - started:.0f} s", flush=True)


def _write_posts(store: Store) -> None:
    from publisher.store.posts import PostFields, create_post, save_post

    body = "The council voted on the budget today, and nurses said it falls short. " * 60
    for n in range(POSTS):
        fields = PostFields(title=f"Post {n}", body=body, topics=("labor",), date=NOW)
        post = create_post(store, fields, status="published", by=OWNER, now=NOW)
        for version in (1, 2):
            fields = PostFields(
                title=f"Post {n} v{version}", body=body, topics=("labor",), date=NOW
            )
            post = save_post(
                store, post.id, fields, version=post.version, status="published", by=OWNER,
                now=NOW,
            )  # fmt: skip


@contextmanager
def _sqlite_store(sizes: Sizes) -> Iterator[Store]:
    cache = Path(tempfile.gettempdir()) / "publisher-bench-admin"
    cache.mkdir(exist_ok=True)
    path = cache / f"admin-{sizes.key}-{_head()}.db"
    older = sorted(cache.glob(f"admin-{sizes.key}-*.db"))
    if not path.exists():
        building = path.with_suffix(".building")
        building.unlink(missing_ok=True)
        if older:  # the same rows under an older schema: copied, then migrated
            print(f"  copying {older[-1].name}; migrating", flush=True)
            shutil.copyfile(older[-1], building)
            started = time.perf_counter()
            open_store(f"sqlite:///{building}").close()
            print(f"  migrated in {time.perf_counter() - started:.0f} s", flush=True)
        else:
            store = open_store(f"sqlite:///{building}")
            _seed(store, sizes)
            store.close()
        building.rename(path)
    else:
        print(f"  cached store {path}", flush=True)
    store = open_store(f"sqlite:///{path}")
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _postgresql_store(sizes: Sizes) -> Iterator[Store]:
    with throwaway_postgresql() as url:
        store = open_store(url)
        _seed(store, sizes)
        try:
            yield store
        finally:
            store.close()


def _client(store: Store, project: Path) -> httpx.AsyncClient:
    config = load_config(project / "schedules.yaml")
    app = create_app(config, store, secret_key="bench-secret-key-0123456789abcdef", now=lambda: NOW)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=600)


async def _log_in(client: httpx.AsyncClient) -> None:
    page = (await client.get("/admin/login")).text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    form = {"email": OWNER, "password": PASSWORD, "csrf": csrf}
    answer = await client.post("/admin/login", data=form)
    if "publisher_staff" not in client.cookies:
        raise SystemExit(f"could not log in: {answer.status_code}")


async def _time(client: httpx.AsyncClient, url: str, repeat: int) -> tuple[float, float, int]:
    status = (await client.get(url)).status_code  # warm-up: templates compiled, caches filled
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        status = (await client.get(url)).status_code
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))], status


async def _time_pages(store: Store, project: Path, repeat: int) -> list[Timing]:
    sizes = _sizes()
    fill = {
        "edition": str(sizes.editions), "subscriber": str(sizes.subscribers // 2),
        "item": str(sizes.items // 2),
    }  # fmt: skip
    async with _client(store, project) as client:
        await _log_in(client)
        out = [Timing("/healthz (floor)", *await _time(client, "/healthz", repeat))]
        for name, path in _chosen(PAGES):
            out.append(Timing(name, *await _time(client, path.format(**fill), repeat)))
    return out


def _chosen(pages: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pages BENCH_ADMIN_PAGES names (comma-separated page names), or every page."""
    wanted = {n.strip() for n in os.environ.get("BENCH_ADMIN_PAGES", "").split(",") if n.strip()}
    return [(name, path) for name, path in pages if not wanted or name in wanted]


def expected_status(name: str) -> tuple[int, ...]:
    """What a page in PAGES may answer: 200, or 404 for a row that says so in its name, or
    also 303 for one that redirects when there is nothing to show (it depends on the size)."""
    if "404" in name:
        return (404,)
    return (200, 303) if "303" in name else (200,)


def time_pages(store: Store, project: Path, repeat: int) -> list[Timing]:
    """p50/p95 of every page in PAGES (and /healthz, the floor), through the application."""
    return asyncio.run(_time_pages(store, project, repeat))


def markdown_ms(words: int = 5000, repeat: int = 9) -> float:
    """The 5,000-word post through the sources' Markdown renderer and the sanitiser."""
    from publisher.sources import markdown
    from publisher.support.sanitize import sanitize_html

    paragraph = (
        "The *council* voted on the [budget](https://example.org/b) today, and **nurses** "
        "said the `plan` falls short of what the city promised. "
    )
    blocks = [f"## Part {n}\n\n{paragraph * 4}\n\n- one\n- two\n\n> quoted" for n in range(60)]
    text = "\n\n".join(blocks)
    text += "\n\n" + paragraph * max(0, (words - len(text.split())) // len(paragraph.split()))
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        sanitize_html(markdown._md.render(text))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _report(database: str, timings: list[Timing], repeat: int) -> None:
    floor = timings[0].p50 or 1e-9
    print(f"{database}: {repeat} requests a page, logged in as an owner")
    print(f"  {'page':<20} {'p50 ms':>8} {'p95 ms':>8} {'x floor':>8}  status")
    for t in timings:
        flag = "" if t.p95 <= TARGET_MS else f"  over {TARGET_MS:.0f} ms"
        print(
            f"  {t.name:<20} {t.p50:>8.1f} {t.p95:>8.1f} {t.p50 / floor:>7.0f}x  {t.status}{flag}"
        )


def _project() -> Path:
    project = Path(tempfile.mkdtemp(prefix="bench-admin-"))
    (project / "content").mkdir()
    (project / "schedules.yaml").write_text(CONFIG, encoding="utf-8")
    return project


def main(argv: list[str] | None = None) -> None:
    sizes, repeat = _sizes(), int(os.environ.get("BENCH_ADMIN_REPEAT", "20"))
    wanted = os.environ.get("BENCH_ADMIN_DB", "both")
    databases = ("sqlite", "postgresql") if wanted == "both" else (wanted,)
    project = _project()
    failures = []
    try:
        for database in databases:
            opener = _sqlite_store if database == "sqlite" else _postgresql_store
            with opener(sizes) as store:
                timings = time_pages(store, project, repeat)
            _report(database, timings, repeat)
            failures += [t for t in timings if t.status not in expected_status(t.name)]
        ms = markdown_ms()
        print(f"Markdown, 5,000 words: {ms:.1f} ms (target {MARKDOWN_TARGET_MS:.0f} ms)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {peak:.0f} MiB")
    finally:
        shutil.rmtree(project, ignore_errors=True)
    if failures:
        sys.exit(f"pages not answered as expected: {', '.join(t.name for t in failures)}")


if __name__ == "__main__":
    main()
