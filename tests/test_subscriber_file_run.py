"""The subscriber file during a run: a file that cannot be read at all does not stop the run,
and an import never re-adds an address that was erased or must not be mailed."""

from __future__ import annotations

import pytest

from publisher.store.subscribers import (
    SubscriberInput,
    import_subscribers,
    iter_subscribers,
)
from publisher.store.suppression import suppress
from tests.hostile_project import CONFIG, make_project, run_cli


@pytest.mark.slow  # starts the real `publisher` command
def test_an_unreadable_subscriber_file_is_reported_and_the_run_goes_on(tmp_path):
    make_project(tmp_path, CONFIG.replace("subscribers.csv", "subscribers.json"))
    assert run_cli("run", "--once", cwd=tmp_path).returncode == 0  # no file yet: nobody
    (tmp_path / "subscribers.json").write_text("5", encoding="utf-8")
    (tmp_path / "content" / "second.md").write_text(
        (tmp_path / "content" / "wage-theft.md")
        .read_text(encoding="utf-8")
        .replace("wage-theft", "second-item")
        .replace("Wage theft enforcement wins", "A second item"),
        encoding="utf-8",
    )
    result = run_cli("run", "--once", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "subscribers.json" in output and "already stored are kept" in output
    assert "Traceback" not in output
    # The rest of the run happened: the new item was collected, the feeds were built.
    assert "A second item" in run_cli("items", cwd=tmp_path).stdout
    assert "feeds:" in output


def test_an_import_never_re_adds_a_suppressed_address(store, fixed_now):
    suppress(store, "Erased@Example.org", reason="erased", source="web", now=fixed_now)
    rows = [
        SubscriberInput("erased@example.org", "Erased", ()),
        SubscriberInput("kept@example.org", "Kept", ()),
    ]
    report = import_subscribers(store, rows, now=fixed_now)
    assert (report.inserted, report.suppressed) == (1, 1)
    assert [s.email for s in iter_subscribers(store)] == ["kept@example.org"]
