"""Shared fixtures: a temporary project (config + content) and a migrated store."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.config import PublisherConfig, load_config
from publisher.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
FIXED_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

BASE_CONFIG = """\
organisation:
  name: Test Org
  website: https://www.example.org
  public_url: https://www.example.org/news
  postal_address: 1 Main St, Springfield
  from_email: news@example.org
  timezone: America/New_York
"""


def write_config(directory: Path, extra: str = "") -> Path:
    path = directory / "schedules.yaml"
    path.write_text(BASE_CONFIG + textwrap.dedent(extra), encoding="utf-8")
    return path


@pytest.fixture
def fixed_now() -> datetime:
    return FIXED_NOW


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A temporary project folder with an empty content/ directory."""
    (tmp_path / "content").mkdir()
    return tmp_path


@pytest.fixture
def make_config(project: Path):
    def _make(extra: str = "") -> PublisherConfig:
        return load_config(write_config(project, extra))

    return _make


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """PUBLISHER_TEST_DATABASE_URL runs the suite on another database (e.g. PostgreSQL)."""
    return os.environ.get("PUBLISHER_TEST_DATABASE_URL") or f"sqlite:///{tmp_path}/test.db"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = open_store(database_url)
    yield s
    s.close()
