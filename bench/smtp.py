"""SMTP throughput per connection at a realistic message size over STARTTLS (issue 18).

    .venv/bin/python -m bench.smtp [--messages N] [--repeat R] [--kb 18]

One sending connection (`smtp.workers: 1`) to a local aiosmtpd server with STARTTLS in its
own process, a message of about `--kb` KB (the size of a real edition: more than one 16 KiB
TLS record), and the same sends with TCP_NODELAY off in the same process as the baseline.
Two paths: the whole send (`deliver_edition`: ledger, one transaction per message) and the
backend alone (no ledger), medians of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PARAGRAPH = "<p>Organisers met with tenants about rent, wages and repairs this week. </p>"


def _serve(folder: str, queue) -> None:
    from tests.servers.smtp import SmtpServer

    server = SmtpServer(Path(folder))
    server.handler.messages = _CountOnly()
    server.__enter__()
    queue.put((server.port, str(server.ca_file)))
    time.sleep(3600)


class _CountOnly(list):
    def append(self, item: object) -> None:  # keep the server's memory flat
        pass


def _html(kb: float) -> str:
    """An edition's HTML padded so that one message (headers, text, HTML) is about `kb` KB."""
    from tests.servers.data import HTML

    padding = max(0, int(kb * 1024) - 2300 - len(HTML))  # ~2.3 KB: headers and text part
    return HTML.replace("</body>", PARAGRAPH * (padding // len(PARAGRAPH)) + "</body>")


def _edition(store, number: int, html: str) -> int:
    from publisher.store.models import EditionRow
    from tests.servers.data import TEXT

    with store.session() as session:
        row = EditionRow(
            campaign="weekly", number=number, composed_at=NOW, subject="Weekly",
            preheader="", html=html, text=TEXT, status="composed",
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


def _backend(port: int, ca_file: str, *, nodelay: bool):
    from publisher.deliver.backends.smtp import SmtpBackend

    return SmtpBackend("127.0.0.1", port, ca_file=ca_file, workers=1, tcp_nodelay=nodelay)


def whole_path(config, store, edition: int, port: int, ca_file: str, *, nodelay: bool) -> float:
    """Messages per second of one `deliver_edition` over one connection."""
    from publisher.deliver import deliver_edition

    backend = _backend(port, ca_file, nodelay=nodelay)
    started = time.perf_counter()
    report = deliver_edition(config, store, edition, now=NOW, backend=backend)
    elapsed = time.perf_counter() - started
    assert report.failed == 0 and report.sent > 0, report.note
    return report.sent / elapsed


def backend_only(config, store, edition: int, port: int, ca_file: str, *, nodelay: bool, n: int):
    """Messages per second of the backend alone (no ledger), one connection; and the size."""
    from publisher.deliver.base import Recipient, send_batch
    from publisher.deliver.mime import build_message
    from publisher.deliver.service import build_message as edition_message
    from publisher.deliver.service import load_edition

    message = edition_message(config, load_edition(store, edition), now=NOW)
    backend = _backend(port, ca_file, nodelay=nodelay)
    prepared = backend.prepare(message)
    people = [
        Recipient(i, f"p{i}@example.org", None, "t" * 32, message.public_url) for i in range(n)
    ]
    size = len(build_message(prepared, people[0]))
    send_batch(backend, prepared, people[:1], "warm-up")  # connect and STARTTLS outside
    started = time.perf_counter()
    failed = send_batch(backend, prepared, people, "bench")
    elapsed = time.perf_counter() - started
    backend.close()
    assert not failed, failed
    return n / elapsed, size


# (label, TCP_NODELAY); the first is the baseline
SETUPS = (("baseline: TCP_NODELAY off", False), ("TCP_NODELAY", True))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.smtp")
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--baseline-messages", type=int, default=150, help="TCP_NODELAY off")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kb", type=float, default=18.0)
    args, _ = parser.parse_known_args()  # `python -m bench smtp`: the name is left over
    with tempfile.TemporaryDirectory() as tmp:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        server = context.Process(target=_serve, args=(tmp, queue), daemon=True)
        server.start()
        port, ca_file = queue.get(timeout=30)
        assert server.pid is not None
        rates, size, cpu = _runs(Path(tmp), args, (port, ca_file, server.pid))
        server.terminate()
    _print(rates, size, cpu, args)


def _runs(folder: Path, args, server: tuple[int, str, int]):
    """`repeat` runs of every setup; (rates by (setup, path), the message size, CPU ms per
    message of this process and of the server in the backend-alone runs)."""
    from bench.dispatch import make_config, make_store

    html, size, number = _html(args.kb), 0, 1
    rates: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    prepared = []
    port, ca_file, pid = server
    for label, nodelay in SETUPS:
        n = args.messages if nodelay else args.baseline_messages
        sub = folder / f"nodelay-{nodelay}"
        sub.mkdir()
        store, _ = make_store(sub, n)
        options = f"  smtp:\n    host: 127.0.0.1\n    port: {port}\n    ca_file: {ca_file}\n"
        config = make_config(sub, "smtp", options + "    workers: 1\n")
        prepared.append((label, nodelay, n, store, config))
    for _ in range(args.repeat):  # setups interleaved: a change of load hits them all
        for label, nodelay, n, store, config in prepared:
            number += 1
            edition = _edition(store, number, html)
            rate = whole_path(config, store, edition, port, ca_file, nodelay=nodelay)
            rates.setdefault((label, "whole"), []).append(rate)
            ours, theirs = time.process_time(), _cpu_seconds(pid)
            rate, size = backend_only(config, store, edition, port, ca_file, nodelay=nodelay, n=n)
            rates.setdefault((label, "backend"), []).append(rate)
            cpu.setdefault((label, "ours"), []).append((time.process_time() - ours) / n * 1e3)
            cpu.setdefault((label, "server"), []).append((_cpu_seconds(pid) - theirs) / n * 1e3)
    return rates, size, cpu


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _print(rates, size: int, cpu, args) -> None:
    print(
        f"SMTP, STARTTLS, one connection, local aiosmtpd, {size / 1024:.1f} KB messages, "
        f"{args.messages} a run ({args.baseline_messages} with TCP_NODELAY off), "
        f"medians of {args.repeat}; CPU ms per message in the backend-alone runs:"
    )
    print(
        f"  {'':<27}{'whole send':>12}{'ratio':>7}{'backend':>11}{'ratio':>7}"
        f"{'CPU ours':>10}{'server':>8}"
    )
    base = {path: statistics.median(rates[(SETUPS[0][0], path)]) for path in ("whole", "backend")}
    for label, _ in SETUPS:
        cells = []
        for path in ("whole", "backend"):
            rate = statistics.median(rates[(label, path)])
            cells.append(f"{rate:>10,.0f}/s{rate / base[path]:>6.1f}x")
        ours, theirs = (statistics.median(cpu[(label, who)]) for who in ("ours", "server"))
        print(f"  {label:<27}{cells[0]} {cells[1]}{ours:>10.2f}{theirs:>8.2f}")


if __name__ == "__main__":
    main()
