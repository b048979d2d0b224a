"""A small project for the hostile-input tests: one Markdown item, one campaign whose
audience is a topic, a subscribers file, the file backend. Dates are relative to the real
clock because `run --once` reads it (the tests never depend on which day it is)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

CONFIG = """\
organisation:
  name: Test Org
  website: https://www.example.org
  public_url: https://www.example.org/news
  postal_address: 1 Main St, Springfield
  from_email: news@example.org
  from_name: Test Org News
  reply_to: editor@example.org
  timezone: America/New_York
sources:
  - name: posts
    type: markdown
    path: content
campaigns:
  - name: weekly
    title: Workers Weekly
    subject: "Workers Weekly #{{ edition.number }}"
    preheader: "News from {{ org.name }}"
    audience: [workers-rights]
    lookback_days: 30
    cadence: "weekly: monday 09:00"
    sections:
      - name: news
        type: list
delivery:
  backend: file
subscribers:
  file: subscribers.csv
"""

ITEM = """\
---
title: Wage theft enforcement wins
date: {date}
kind: article
topics: [Workers Rights]
summary: A city office recovered back pay for hundreds of workers.
url: https://www.example.org/news/wage-theft
---

The office recovered back pay.
"""

# Everything a run writes: none of it may exist after a refused configuration.
OUTPUTS = ("var", "outbox", "feeds", "archive", "preview")


def make_project(root: Path, config: str = CONFIG, subscribers: str | None = None) -> Path:
    """Write the project into `root`; returns the schedules.yaml path."""
    (root / "content").mkdir(exist_ok=True)
    date = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
    (root / "content" / "wage-theft.md").write_text(ITEM.format(date=date), encoding="utf-8")
    (root / "subscribers.csv").write_text(
        subscribers
        if subscribers is not None
        else "email,name,topics\nann@example.org,Ann,Workers Rights\nbo@example.org,Bo,Housing\n",
        encoding="utf-8",
    )
    path = root / "schedules.yaml"
    path.write_text(config, encoding="utf-8")
    return path


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The real `publisher` command in a fresh interpreter (stdout and stderr as text)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    environment.update(env or {})
    environment["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "publisher.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


def written(root: Path) -> list[str]:
    return [name for name in OUTPUTS if (root / name).exists()]


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the text")
