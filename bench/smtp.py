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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.smtp")
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kb", type=float, default=18.0)
    args, _ = parser.parse_known_args()  # `python -m bench smtp`: the name is left over
    from bench.dispatch import make_config, make_store

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        server = context.Process(target=_serve, args=(tmp, queue), daemon=True)
        server.start()
        port, ca_file = queue.get(timeout=30)
        store, _ = make_store(folder, args.messages)
        options = f"  smtp:\n    host: 127.0.0.1\n    port: {port}\n    ca_file: {ca_file}\n"
        config = make_config(folder, "smtp", options + "    workers: 1\n")
        html = _html(args.kb)
        rates: dict[tuple[str, bool], list[float]] = {}
        size = 0
        number = 1
        for _ in range(args.repeat):
            for nodelay in (True, False):
                number += 1
                edition = _edition(store, number, html)
                rates.setdefault(("whole", nodelay), []).append(
                    whole_path(config, store, edition, port, ca_file, nodelay=nodelay)
                )
                rate, size = backend_only(
                    config, store, edition, port, ca_file, nodelay=nodelay, n=args.messages
                )
                rates.setdefault(("backend", nodelay), []).append(rate)
        server.terminate()
    _print(rates, size, args)


def _print(rates: dict[tuple[str, bool], list[float]], size: int, args) -> None:
    print(
        f"SMTP, STARTTLS, one connection, local aiosmtpd, {size / 1024:.1f} KB messages, "
        f"{args.messages} a run, medians of {args.repeat}:"
    )
    print(f"  {'path':<34}{'TCP_NODELAY':>14}{'baseline (off)':>16}{'ratio':>8}")
    for path, label in (("whole", "whole send (ledger)"), ("backend", "backend alone")):
        on = statistics.median(rates[(path, True)])
        off = statistics.median(rates[(path, False)])
        print(f"  {label:<34}{on:>10,.0f}/s{off:>12,.0f}/s{on / off:>7.1f}x")


if __name__ == "__main__":
    main()
