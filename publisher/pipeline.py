"""The whole job, stage by stage: collect -> store -> compose -> render -> deliver, publish.

This is the top of the flow (like cli.py): it may import every stage; no stage imports it.
The CLI and the scheduler both call these functions; `run_once` is what `make run` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from publisher.collect import CollectReport, collect_all
from publisher.config import PublisherConfig
from publisher.store import Store

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    collect: CollectReport | None = None
    notes: list[str] = field(default_factory=list)  # one line per other stage's outcome


def run_once(config: PublisherConfig, store: Store, *, now: datetime) -> RunReport:
    """Collect, publish feeds, compose and deliver every campaign once (`make run`)."""
    report = RunReport()
    report.collect = collect_all(config, store, now=now)
    return report
