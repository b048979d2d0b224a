"""Shared fixtures: a temporary project (config + content) and a migrated store."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from publisher.config import PublisherConfig, load_config
from publisher.store import Store, open_store
from tests.pgcluster import Cluster, start_cluster

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


T = TypeVar("T")


def present(value: T | None) -> T:
    """`value`, asserted to be there (a lookup the test expects to find something)."""
    assert value is not None
    return value


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


# `make test` sets this: there, PostgreSQL tests must run, never skip.
POSTGRES_REQUIRED = os.environ.get("PUBLISHER_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = start_cluster()
    if cluster is None:
        message = "no PostgreSQL server installed (make test installs Debian's postgresql)"
        if POSTGRES_REQUIRED:
            pytest.fail(message)
        pytest.skip(f"SKIPPING EVERY POSTGRESQL TEST: {message}")
    yield cluster
    cluster.stop()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the PostgreSQL cluster directly is a `postgres` test too (the store
    fixture's PostgreSQL parameter carries the mark itself)."""
    for item in items:
        if "pg_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test that takes this fixture (or `store`) runs on SQLite and on PostgreSQL,
    each time on a database of its own. (The kill-point, resume and daemon tests run real
    processes on a SQLite file instead.)"""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.db"
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    yield cluster.url(name)
    cluster.drop_database(name)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = open_store(database_url)
    yield s
    s.close()


GUIDE_IMAGES = ROOT / "docs" / "staff" / "images"


@pytest.fixture
def guide_shot(tmp_path: Path):
    """`guide_shot(page, "posts-editor")`: a screenshot for the staff guide (docs/staff/).
    Written into docs/staff/images/ by `make guide-screenshots` (PUBLISHER_GUIDE_SHOTS=1),
    into the test's temp folder otherwise, so an ordinary run never changes the tree."""
    folder = GUIDE_IMAGES if os.environ.get("PUBLISHER_GUIDE_SHOTS") else tmp_path / "guide"
    folder.mkdir(parents=True, exist_ok=True)

    def shot(page, name: str, *, full_page: bool = False) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return shot
