"""`--help` of every command reads well in an 80-column terminal: no `<bool>`/`<str>` type
placeholders beside options or arguments, command lists show whole first sentences (never
cut with "..."), and `publisher editions` prints lines that fit in 80 columns."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import typer
from typer.testing import CliRunner

from publisher.cli import app
from publisher.cli.digest import edition_lines
from publisher.store.editions import EditionSummary
from tests.servers.data import add_edition

TYPE_PLACEHOLDER = re.compile(r"<(bool|str|int|float|path|text|[a-z]+ range)>")


def command_paths() -> list[tuple[str, ...]]:
    """Every command and group, as the words typed after `publisher`."""
    paths: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


def test_every_command_is_reached():
    names = {" ".join(path) for path in command_paths()}
    assert {"", "send", "worker", "editions", "subscribers import", "staff add"} <= names


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "publisher")
def test_help_has_no_type_placeholders_and_fits_80_columns(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # every option and argument shows a word (PATH, N, SECONDS, CAMPAIGN...) or nothing
    assert not TYPE_PLACEHOLDER.search(result.output), result.output
    assert all(len(line) <= 80 for line in lines), result.output
    if "Commands:" in lines:
        listed = lines[lines.index("Commands:") + 1 :]
        assert listed and not any(line.rstrip().endswith("...") for line in listed), listed


def test_a_long_docstring_is_reflowed_not_kept_with_its_line_breaks():
    result = CliRunner().invoke(app, ["worker", "--help"], env={"COLUMNS": "80"})
    assert "Runs beside the daemon, on any host, until SIGTERM or Ctrl-C." in result.output


def summary(**fields: object) -> EditionSummary:
    values: dict[str, object] = {
        "id": 1,
        "campaign": "economic-justice-weekly-for-the-whole-coalition",
        "number": 128,
        "composed_at": datetime(2026, 11, 30, 14, 0, tzinfo=UTC),
        "subject": "Economic Justice Weekly — 30 November 2026: " + "housing, wages " * 8,
        "status": "uncertain",
        "item_count": 12,
        "recipients": 120_000,
        "sent": 118_000,
        "uncertain": 2_000,
        "failed": 10,
        "skipped": 5,
        "uncertain_batches": (3, 17),
    }
    values.update(fields)
    return EditionSummary(**values)  # type: ignore[arg-type]


def test_editions_lines_fit_80_columns_and_name_their_numbers():
    text = edition_lines(summary(), width=80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    assert (
        lines[0] == "economic-justice-weekly-for-the-whole-coalition #128: sent with 2000 uncertain"
    )
    assert "  digest, composed 2026-11-30 14:00 UTC, 12 items" in lines
    assert "  sent 118000, uncertain 2000, failed 10, skipped 5" in lines
    assert "  uncertain batches: 3, 17" in lines
    assert "".join(lines[4:]).replace("    ", " ").startswith("  subject: Economic Justice")


def test_editions_label_the_welcome_and_broadcasts_apart_from_digests(
    make_config, store, database_url, project, monkeypatch
):
    """`publisher editions` lists every stored edition; the reserved campaign keys (the
    welcome email's "~welcome", broadcasts' "~broadcast") are labelled by their kind."""
    make_config()
    now = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    for campaign, number in (("weekly", 3), ("~welcome", 12345), ("~broadcast", 7)):
        add_edition(store, now, campaign=campaign, number=number, subject=f"About {campaign}")
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", database_url)
    args = ["-c", str(project / "schedules.yaml"), "editions"]
    result = CliRunner().invoke(app, args, standalone_mode=False)
    assert result.exception is None, result.output
    lines = result.output.splitlines()
    kinds = {
        header.split(" #")[0]: kind.split(",")[0].strip()
        for header, kind in zip(lines, lines[1:], strict=False)
        if " #" in header
    }
    assert kinds == {"weekly": "digest", "~welcome": "welcome", "~broadcast": "broadcast"}
    assert "  sent 0, uncertain 0, failed 0, skipped 0" in lines
    assert "3 editions" in result.output
