"""The sample project as `make run` runs it: a second run duplicates nothing, and the demo
works on any date (README "Quickstart")."""

from __future__ import annotations

import os
import shutil
import subprocess
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from publisher.cli import main

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = "economic-justice-weekly"


def run_once(capsys: pytest.CaptureFixture[str], project: Path) -> str:
    try:
        main(["run", "--once", "--config", str(project / "schedules.yaml")])
    except SystemExit as exited:  # only an error exits; success returns
        raise AssertionError(capsys.readouterr().err) from exited
    return capsys.readouterr().out


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def copy_sample(project: Path) -> None:
    for name in ("schedules.yaml", "subscribers.csv"):
        shutil.copy(ROOT / name, project / name)
    for name in ("content", "templates"):
        shutil.copytree(ROOT / name, project / name)


def test_a_second_run_of_the_sample_project_duplicates_nothing(tmp_path, capsys, monkeypatch):
    copy_sample(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    monkeypatch.delenv("PUBLISHER_DELIVERY", raising=False)
    monkeypatch.setenv("PUBLISHER_NOW", "2026-12-07T15:00:00Z")
    first = run_once(capsys, tmp_path)
    assert "problem" in first and "Traceback" not in first
    assert f"{CAMPAIGN}: edition 1 composed, 10 items" in first
    # The two resources the featured section (max 1) had no room for are not lost: the
    # next runs carry them, one per edition, and nothing else.
    for number in (2, 3):
        again = run_once(capsys, tmp_path)
        assert "0 new, 0 updated" in again  # no new items
        assert f"{CAMPAIGN}: edition {number} composed, 1 items" in again
    outbox, feeds = files_under(tmp_path / "outbox"), files_under(tmp_path / "feeds")
    last = run_once(capsys, tmp_path)
    assert "nothing new, no edition" in last  # every item went out once: no fourth edition
    assert f"{CAMPAIGN}: every stored item went out in an earlier edition" in last
    assert "feeds: 0 files written" in last  # unchanged feed files left untouched
    assert files_under(tmp_path / "outbox") == outbox
    assert files_under(tmp_path / "feeds") == feeds


FAR_AHEAD = "2031-12-08T17:00:00Z"  # five years after the sample posts


@pytest.mark.slow  # runs `make run`, which starts the real `publisher` command
def test_make_run_shows_a_full_digest_years_ahead(tmp_path):
    """The Makefile's own `run` target on a copy of the sample project, with the clock five
    years on: an edition with several items in every list section, one .eml per active
    subscriber, the archive, the feeds, and a screen saying what it did and where to look."""
    copy_sample(tmp_path)
    venv = ROOT / ".venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env["PUBLISHER_NOW"] = FAR_AHEAD
    done = subprocess.run(
        # -o: the venv's install stamp counts as up to date (the copy has no pyproject.toml)
        ["make", "-f", str(ROOT / "Makefile"), "-o", f"{venv}/.installed", f"VENV={venv}", "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"{CAMPAIGN}: edition 1 composed, 10 items" in out
    assert "ran as of 2031-12-08 17:00 UTC (PUBLISHER_NOW fixed the clock)" in out
    assert "where to look:" in out and f"{tmp_path}/outbox/" in out
    emails = sorted((tmp_path / "outbox" / CAMPAIGN / "1").glob("*.eml"))
    assert len(emails) == 6  # the active subscribers who follow economic justice, or all
    message = message_from_bytes(emails[0].read_bytes(), policy=policy.default)
    assert "8 December 2031" in message["Subject"]
    page = (tmp_path / "archive" / CAMPAIGN / "1.html").read_text(encoding="utf-8")
    for section in ("Featured resource", "Latest posts", "In the news"):
        assert section in page
    assert page.count("Harbor Falls") >= 1  # a news item
    assert 'href="1.html"' in (tmp_path / "archive" / CAMPAIGN / "index.html").read_text()
    everything = (tmp_path / "feeds" / "everything.rss").read_text(encoding="utf-8")
    assert everything.count("<item>") == 12
    assert (tmp_path / "feeds" / "editions" / f"{CAMPAIGN}.atom").is_file()


def test_an_unreadable_fixed_clock_is_refused_with_how_to_fix_it(tmp_path, capsys, monkeypatch):
    copy_sample(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_NOW", "next tuesday")
    with pytest.raises(SystemExit) as exited:
        main(["run", "--once", "--config", str(tmp_path / "schedules.yaml")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "PUBLISHER_NOW='next tuesday' is not an ISO 8601 date/time" in err
    assert "Traceback" not in err and not (tmp_path / "outbox").exists()
