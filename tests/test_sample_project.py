"""The sample project as `make run` runs it: a second run duplicates nothing (README)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from publisher.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run_once(capsys: pytest.CaptureFixture[str], project: Path) -> str:
    try:
        main(["run", "--once", "--config", str(project / "schedules.yaml")])
    except SystemExit as exited:  # only an error exits; success returns
        raise AssertionError(capsys.readouterr().err) from exited
    return capsys.readouterr().out


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_second_run_of_the_sample_project_duplicates_nothing(tmp_path, capsys, monkeypatch):
    for name in ("schedules.yaml", "subscribers.csv"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("content", "templates"):
        shutil.copytree(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    monkeypatch.delenv("PUBLISHER_DELIVERY", raising=False)
    first = run_once(capsys, tmp_path)
    assert "problem" in first and "Traceback" not in first
    outbox, feeds = files_under(tmp_path / "outbox"), files_under(tmp_path / "feeds")
    second = run_once(capsys, tmp_path)
    assert "0 new, 0 updated" in second  # no new items
    assert "nothing new, no edition" in second  # no second edition
    assert "feeds: 0 files written" in second  # unchanged feed files left untouched
    assert files_under(tmp_path / "outbox") == outbox
    assert files_under(tmp_path / "feeds") == feeds
