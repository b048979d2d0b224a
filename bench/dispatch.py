"""Delivery benchmark: the whole SendGrid path (store -> ledger -> batches -> HTTP) against
the local SendGrid-compatible server with 150 ms added latency, beside (a) one request per
recipient (a sample, extrapolated) and (b) a bare-httpx concurrent POST of the same prepared
payloads: the floor our overhead is measured against. Then the file backend (outbox) against
a fresh MIME tree per message, and the SMTP backend to a local aiosmtpd server.

    python -m bench.dispatch [--subscribers 100000] [--workers 8] [--latency 0.15]
    python -m bench.dispatch --subscribers 1000000   # the streaming/peak-memory check
    python -m bench.dispatch --processes 1,2,4       # several processes on PostgreSQL
    python -m bench.dispatch --broadcast             # a broadcast beside a digest edition
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.servers: the same fake server the tests use

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
API_KEY = "SG.bench-key"


# --- peak memory (RSS high-water mark, reset per stage) -----------------------------------


def reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- servers in their own processes (they must not share our GIL) -------------------------


def _serve_sendgrid(latency: float, queue) -> None:
    from tests.servers.sendgrid import FakeSendGrid

    server = FakeSendGrid(api_key=API_KEY, latency=latency, validate="first", keep_bodies=False)
    server.start()
    queue.put(server.url)
    time.sleep(3600)


def _serve_smtp(folder: str, queue) -> None:
    from tests.servers.smtp import SmtpServer

    server = SmtpServer(Path(folder))
    server.handler.messages = _CountOnly()
    server.__enter__()
    queue.put((server.port, str(server.ca_file)))
    time.sleep(3600)


class _CountOnly(list):
    def append(self, item: object) -> None:  # keep memory flat
        pass


def start(target, *args):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue), daemon=True)
    process.start()
    return process, queue.get(timeout=30)


def stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/stats") as response:
        return json.loads(response.read())


# --- fixtures -----------------------------------------------------------------------------


def make_store(folder: Path, subscribers: int):
    from publisher.store import open_store
    from publisher.store.subscribers import SubscriberInput, import_subscribers
    from tests.servers.data import add_edition

    store = open_store(f"sqlite:///{folder}/bench.db")
    started = time.perf_counter()
    rows = (SubscriberInput(f"person{i}@example.org", f"Person {i}") for i in range(subscribers))
    import_subscribers(store, rows, now=NOW)
    print(
        f"  (setup: {subscribers:,} subscribers imported in {time.perf_counter() - started:.1f} s)"
    )
    return store, add_edition(store, NOW)


def make_config(folder: Path, backend: str, options: str):
    from publisher.config import load_config
    from tests.conftest import write_config
    from tests.servers.data import config_text

    return load_config(write_config(folder, config_text(backend, delivery=options)))


# --- SendGrid -------------------------------------------------------------------------------


def bench_sendgrid(args: argparse.Namespace, folder: Path) -> None:
    process, url = start(_serve_sendgrid, args.latency)
    os.environ["SENDGRID_API_KEY"] = API_KEY
    store, _ = make_store(folder, args.subscribers)
    print(
        f"sendgrid: {args.subscribers:,} subscribers, {args.latency * 1000:.0f} ms latency "
        f"per request, medians of {args.repeat} runs (ours and the floor interleaved)"
    )
    print(
        f"  {'workers':>7}  {'whole path (store, ledger, HTTP)':>40}  {'bare httpx floor':>26}"
        f"  {'ours/floor':>10}  peak RSS  {'exactly-once mode':>28}  {'eo/floor':>8}"
    )
    editions = itertools.count(2)  # edition 1 (from make_store) only shapes the floor bodies
    for workers in args.workers:
        config = make_config(
            folder, "sendgrid", f"  sendgrid:\n    host: {url}\n    workers: {workers}\n"
        )
        # exactly-once mode: one more round trip per batch (POST /v3/mail/batch)
        once = make_config(
            folder,
            "sendgrid",
            f"  sendgrid:\n    host: {url}\n    workers: {workers}\n    exactly_once: true\n",
        )
        ours, floors, peaks, onces = [], [], [], []
        for _ in range(args.repeat):
            seconds, peak, requests = whole_path(config, store, next(editions), url, args)
            ours.append(seconds)
            peaks.append(peak)
            if args.subscribers <= 200_000:  # the floor holds every payload in memory
                floors.append(bare_httpx_floor(config, store, 1, url, args, workers))
            if workers <= 8 and not args.skip_exactly_once:
                onces.append(whole_path(once, store, next(editions), url, args)[0])
        mine, n = statistics.median(ours), args.subscribers
        floor = statistics.median(floors) if floors else float("nan")
        eo = statistics.median(onces) if onces else float("nan")
        print(
            f"  {workers:>7}  {mine:6.2f} s {n / mine:>9,.0f}/s {requests:>5} requests"
            f"  {floor:9.2f} s {n / floor:>9,.0f}/s  {mine / floor:>9.2f}x"
            f"  {max(peaks):,.0f} MiB  {eo:9.2f} s {n / eo:>9,.0f}/s  {eo / floor:>7.2f}x"
        )
    if args.subscribers <= 200_000:
        config = make_config(folder, "sendgrid", f"  sendgrid:\n    host: {url}\n")
        one_each = per_recipient_baseline(config, store, 1, args, args.workers[0])
        print(
            f"  (a) one request per recipient, {args.workers[0]} workers: "
            f"{n / one_each:,.0f} recipients/s, {one_each:,.0f} s for {n:,} "
            f"(a sample, extrapolated; {n:,} requests)"
        )
    print("  targets: >= 25,000 recipients/s; ours/floor <= 1.5x; peak < 300 MiB at 1M")
    process.terminate()
    store.close()


def whole_path(
    config, store, number: int, url: str, args, body: tuple[str, str] | None = None
) -> tuple[float, float, int]:
    """A digest edition sent to everyone; `body`: its (html, text) instead of the small
    test edition's (the broadcast comparison sends the same bytes both ways)."""
    from publisher.deliver import deliver_edition
    from publisher.store.models import EditionRow
    from tests.servers.data import add_edition

    edition = add_edition(store, NOW, number=number)
    if body is not None:
        with store.session() as session:
            row = session.get(EditionRow, edition)
            row.html, row.text = body
    before = stats(url)
    reset_peak()
    started = time.perf_counter()
    report = deliver_edition(config, store, edition, now=NOW)
    seconds = time.perf_counter() - started
    peak = peak_mib()
    after = stats(url)
    assert report.exit_code == 0, report.note
    assert report.sent == args.subscribers, report.note
    assert after["recipients"] - before["recipients"] == args.subscribers  # each exactly once
    return seconds, peak, after["requests"] - before["requests"]


BENCH_DRAFT: dict[str, Any] = {
    "name": "Council vote", "subject": "The council votes tomorrow", "preheader": "Act tonight",
    "sender": "organisation", "body": "The council votes **tomorrow**.",
    "cta_label": "Write to your councillor", "cta_url": "https://www.example.org/act",
}  # fmt: skip


def _draft():
    from publisher.store.broadcasts import Audience, BroadcastDraft

    return BroadcastDraft(audience=Audience(), **BENCH_DRAFT)


def _broadcast_body(config, store) -> tuple[str, str]:
    """The broadcast's HTML and text as rendered: the digest edition beside it sends the
    same bytes, so the comparison is of the paths, not of the message sizes."""
    from publisher.deliver.broadcast_preview import render_broadcast
    from publisher.store.broadcasts import create_broadcast

    rendered = render_broadcast(
        config, store, create_broadcast(store, _draft(), by="bench", now=NOW), now=NOW
    )
    return rendered.html, rendered.text


def broadcast_path(config, store, url: str, args) -> tuple[float, float]:
    """A broadcast to everyone (issue 21) through the same SendGrid path: rendered,
    claimed, composed once into its edition, then sent as that edition."""
    from publisher.deliver.broadcast_preview import render_broadcast
    from publisher.deliver.broadcasts import send_broadcast
    from publisher.store.broadcasts import create_broadcast

    broadcast = create_broadcast(store, _draft(), by="bench", now=NOW)
    started = time.perf_counter()  # composing once: what a broadcast adds to a send
    render_broadcast(config, store, broadcast, now=NOW)
    composing = time.perf_counter() - started
    before = stats(url)
    started = time.perf_counter()
    report = send_broadcast(config, store, broadcast.id, by="bench", now=NOW)
    seconds = time.perf_counter() - started
    after = stats(url)
    assert report.exit_code == 0 and report.sent == args.subscribers, report.note
    assert after["recipients"] - before["recipients"] == args.subscribers  # each exactly once
    return seconds, composing


def bench_broadcast(args: argparse.Namespace, folder: Path) -> None:
    """A broadcast and a digest edition of the same size, in the same process, interleaved,
    each against the bare-httpx floor (the digest edition carries the broadcast's HTML and
    text: the same bytes): a broadcast costs no more than composing it once."""
    process, url = start(_serve_sendgrid, args.latency)
    os.environ["SENDGRID_API_KEY"] = API_KEY
    store, _ = make_store(folder, args.subscribers)
    n, editions = args.subscribers, itertools.count(2)
    print(
        f"broadcast vs digest edition: {n:,} recipients via sendgrid, "
        f"{args.latency * 1000:.0f} ms latency, medians of {args.repeat} runs"
    )
    print(
        f"  {'workers':>7}  {'digest':>22}  {'broadcast':>22}  {'floor':>9}  d/floor  b/floor  b/d"
    )
    body: tuple[str, str] | None = None
    for workers in args.workers:
        config = make_config(
            folder, "sendgrid", f"  sendgrid:\n    host: {url}\n    workers: {workers}\n"
        )
        body = body or _broadcast_body(config, store)
        digests, broadcasts, floors, composing = [], [], [], []
        for _ in range(args.repeat):
            digests.append(whole_path(config, store, next(editions), url, args, body)[0])
            seconds, composed = broadcast_path(config, store, url, args)
            broadcasts.append(seconds)
            composing.append(composed)
            floors.append(bare_httpx_floor(config, store, 1, url, args, workers))
        d, b, f, c = (statistics.median(x) for x in (digests, broadcasts, floors, composing))
        print(
            f"  {workers:>7}  {d:6.2f} s {n / d:>9,.0f}/s  {b:6.2f} s {n / b:>9,.0f}/s"
            f"  {f:7.2f} s  {d / f:6.2f}x  {b / f:6.2f}x  {b / d:4.2f}  (composing: {c:.2f} s)"
        )
        print(f"     runs: digest {digests}, broadcast {broadcasts}, floor {floors}")
    print("  target: the broadcast's ratio to the floor is the digest's (b/d ~ 1.0)")
    process.terminate()
    store.close()


def _recipients(store, message, count: int):
    from publisher.deliver import Recipient
    from publisher.store.subscribers import iter_subscribers

    out = []
    for s in iter_subscribers(store):
        out.append(Recipient(s.id, s.email, s.name, s.token, message.public_url))
        if len(out) >= count:
            break
    return out


def per_recipient_baseline(config, store, edition, args, workers) -> float:
    """One request per recipient, same workers, no ledger: a sample, extrapolated."""
    from publisher.deliver import make_backend
    from publisher.deliver.base import send_batch
    from publisher.deliver.service import build_message, load_edition

    message = build_message(config, load_edition(store, edition), now=NOW)
    backend = make_backend(config)
    prepared = backend.prepare(message)
    sample = _recipients(store, message, 20 * workers)
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda r: send_batch(backend, prepared, [r], "b"), sample))
    return (time.perf_counter() - started) / len(sample) * args.subscribers


def bare_httpx_floor(config, store, edition, url, args, workers) -> float:
    """The same bodies, serialised beforehand, POSTed with httpx by the same number of
    threads: no store, no ledger, no body building."""
    import httpx

    from publisher.deliver import make_backend
    from publisher.deliver.backends.sendgrid import SendGridBackend
    from publisher.deliver.service import build_message, load_edition

    message = build_message(config, load_edition(store, edition), now=NOW)
    backend = make_backend(config)
    assert isinstance(backend, SendGridBackend)
    prepared = backend.prepare(message)
    recipients = _recipients(store, message, args.subscribers)
    payloads = [
        json.dumps(backend.build_body(prepared, recipients[i : i + 1000], f"x-{i}")[0]).encode()
        for i in range(0, len(recipients), 1000)
    ]
    del recipients
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    with httpx.Client(limits=httpx.Limits(max_connections=workers)) as client:
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            answers = list(
                pool.map(
                    lambda body: (
                        client.post(
                            f"{url}/v3/mail/send", content=body, headers=headers, timeout=60
                        ).status_code
                    ),
                    payloads,
                )
            )
        elapsed = time.perf_counter() - started
    assert set(answers) == {202}, set(answers)
    return elapsed


# --- file and SMTP ------------------------------------------------------------------------


def bench_file_and_smtp(args: argparse.Namespace, folder: Path) -> None:
    from publisher.deliver import deliver_edition

    count = args.file_messages
    store, edition = make_store(_fresh(folder / "mail"), count)
    config = make_config(folder / "mail", "file", "")
    reset_peak()
    started = time.perf_counter()
    report = deliver_edition(config, store, edition, now=NOW)
    ours = time.perf_counter() - started
    assert report.sent == count
    fresh = fresh_mime_tree_baseline(config, store, edition)
    print(
        f"file outbox: {count:,} messages  {ours:6.2f} s  {count / ours:>8,.0f} msg/s "
        f"(target >= 2,000)  peak RSS {peak_mib():,.0f} MiB"
    )
    print(
        f"  baseline: a fresh EmailMessage tree per message (sample)  {fresh:>8,.0f} msg/s  "
        f"-> prepared skeleton is {count / ours / fresh:.1f}x faster"
    )
    process, (port, ca_file) = start(_serve_smtp, str(folder))
    smtp_count = min(count, 2000)
    store2, edition2 = make_store(_fresh(folder / "smtp"), smtp_count)
    options = (
        f"  smtp:\n    host: 127.0.0.1\n    port: {port}\n    security: starttls\n"
        f"    ca_file: {ca_file}\n    workers: 2\n"
    )
    config2 = make_config(folder / "smtp", "smtp", options)
    started = time.perf_counter()
    report = deliver_edition(config2, store2, edition2, now=NOW)
    elapsed = time.perf_counter() - started
    assert report.sent == smtp_count, report.note
    print(
        f"smtp (STARTTLS, 2 connections, local aiosmtpd): {smtp_count:,} messages  "
        f"{elapsed:6.2f} s  {smtp_count / elapsed:>8,.0f} msg/s"
    )
    process.terminate()


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def fresh_mime_tree_baseline(config, store, edition, sample: int = 500) -> float:
    from email.message import EmailMessage
    from email.policy import SMTP

    from publisher.deliver.base import list_headers
    from publisher.deliver.service import build_message, load_edition

    message = build_message(config, load_edition(store, edition), now=NOW)
    recipients = _recipients(store, message, sample)
    started = time.perf_counter()
    for r in recipients:
        m = EmailMessage(policy=SMTP)
        m["From"], m["To"] = message.from_email, r.email
        m["Subject"] = r.personalise(message.subject)
        for name, value in list_headers(message, r, "x").items():
            m[name] = value
        m.set_content(r.personalise(message.text))
        m.add_alternative(r.personalise(message.html), subtype="html")
        m.as_bytes()
    return len(recipients) / (time.perf_counter() - started)


def profile_sendgrid(args: argparse.Namespace, folder: Path) -> None:
    """cProfile of one whole-path send (the producer and every sending thread, merged):
    where the CPU goes; `--profile` prints the top entries by own time."""
    import cProfile
    import pstats

    from publisher.deliver.dispatch import Dispatcher

    process, url = start(_serve_sendgrid, args.latency)
    os.environ["SENDGRID_API_KEY"] = API_KEY
    store, _ = make_store(folder, args.subscribers)
    workers = args.workers[0]
    options = f"  sendgrid:\n    host: {url}\n    workers: {workers}\n"
    if args.profile == "exactly-once":
        options += "    exactly_once: true\n"
    config = make_config(folder, "sendgrid", options)
    profiles: list[cProfile.Profile] = []
    work = Dispatcher._work

    def profiled_work(self: Dispatcher, *a: Any) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.runcall(work, self, *a)

    Dispatcher._work = profiled_work  # type: ignore[method-assign, assignment]
    main_profile = cProfile.Profile()
    profiles.append(main_profile)
    main_profile.runcall(whole_path, config, store, 2, url, args)
    Dispatcher._work = work  # type: ignore[method-assign]
    merged = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        merged.add(profile)
    merged.sort_stats("tottime").print_stats(args.profile_top)
    process.terminate()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dispatch")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument(
        "--workers",
        type=lambda v: [int(w) for w in v.split(",")],
        default=[4, 6, 8],
        help="comma-separated worker counts",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--file-messages", type=int, default=10_000)
    parser.add_argument("--skip-mail", action="store_true", help="SendGrid only")
    parser.add_argument("--skip-exactly-once", action="store_true")
    parser.add_argument(
        "--broadcast", action="store_true", help="a broadcast beside a digest edition only"
    )
    parser.add_argument(
        "--profile",
        choices=["plain", "exactly-once"],
        help="profile one send instead (first --workers value)",
    )
    parser.add_argument("--profile-top", type=int, default=20)
    parser.add_argument(
        "--processes",
        type=lambda v: [int(p) for p in v.split(",")],
        help="comma-separated sending-process counts on PostgreSQL (bench.processes)",
    )
    args, _ = parser.parse_known_args()  # `python -m bench dispatch` passes module names too
    if args.processes:
        from bench.processes import bench_processes

        if args.workers == [4, 6, 8]:
            args.workers = [4]
        bench_processes(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            profile_sendgrid(args, Path(tmp))
            return
        if args.broadcast:
            bench_broadcast(args, Path(tmp))
            return
        bench_sendgrid(args, Path(tmp))
        if not args.skip_mail:
            bench_file_and_smtp(args, Path(tmp))


if __name__ == "__main__":
    main()
