"""Hostile configuration values through the real command: exit 2, a message naming file,
line and key, no traceback, nothing executed and nothing written, for `check` and `run`."""

from __future__ import annotations

import resource
import time
import tracemalloc
from pathlib import Path

import pytest

from publisher.cli import main
from publisher.config import load_config
from publisher.errors import ConfigError
from tests.hostile_project import CONFIG, line_of, make_project, run_cli, written

MARKER = "sandbox-escaped"


def bomb() -> str:
    """A 'billion laughs' under an unknown key: 9 levels of 9 aliases each (9**9 values)."""
    lines = ["laughs:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 10):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"  l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def replace(old: str, new: str):
    def edit(text: str, root: Path) -> str:
        assert old in text
        return text.replace(old, new.replace("ROOT", str(root)), 1)

    return edit


def append(extra: str):
    return lambda text, root: text + extra


# (id, edit, text on the offending line, key, what the message says)
CASES = [
    (
        "sandbox-escape-in-subject",
        replace(
            'subject: "Workers Weekly #{{ edition.number }}"',
            "subject: \"{{ cycler.__init__.__globals__.os.popen('touch ROOT/"
            + MARKER
            + "').read() }}\"",
        ),
        "subject:",
        "campaigns[0].subject",
        "not allowed in configuration",
    ),
    (
        "newline-rendered-by-subject",
        replace(
            'subject: "Workers Weekly #{{ edition.number }}"',
            "subject: \"Weekly{{ edition.date | date('%n') }}Bcc: x@example.net\"",
        ),
        "subject:",
        "campaigns[0].subject",
        "renders control characters (\\n)",
    ),
    (
        "crlf-in-subject",
        replace(
            'subject: "Workers Weekly #{{ edition.number }}"',
            'subject: "Weekly\\r\\nBcc: victim@example.net"',
        ),
        "subject:",
        "campaigns[0].subject",
        "control characters (\\r, \\n)",
    ),
    (
        "crlf-in-from-name",
        replace("from_name: Test Org News", 'from_name: "News\\r\\nBcc: victim@example.net"'),
        "from_name:",
        "organisation.from_name",
        "control characters",
    ),
    (
        "crlf-in-reply-to",
        replace(
            "reply_to: editor@example.org", 'reply_to: "editor@example.org\\r\\nBcc: x@example.net"'
        ),
        "reply_to:",
        "organisation.reply_to",
        "is not an email address",
    ),
    (
        "crlf-in-campaign-title",
        replace("title: Workers Weekly", 'title: "Workers\\nBcc: victim@example.net"'),
        "title:",
        "campaigns[0].title",
        "control characters (\\n)",
    ),
    (
        "from-email-not-an-email",
        replace("from_email: news@example.org", "from_email: not an email"),
        "from_email:",
        "organisation.from_email",
        "'not an email' is not an email address",
    ),
    (
        "unsubscribe-mailto-not-an-email",
        replace("backend: file", "backend: file\n  unsubscribe_mailto: nobody"),
        "unsubscribe_mailto:",
        "delivery.unsubscribe_mailto",
        "is not an email address",
    ),
    (
        "huge-grace",
        replace(
            'cadence: "weekly: monday 09:00"',
            'cadence: "weekly: monday 09:00"\n    grace: 99999999999999d',
        ),
        "grace:",
        "campaigns[0].grace",
        "too long: at most 31d",
    ),
    (
        "huge-collect-every",
        append("schedule:\n  collect_every: 99999999999999d\n"),
        "collect_every:",
        "schedule.collect_every",
        "too long",
    ),
    (
        "alias-bomb",
        append(bomb()),
        "  l4:",  # 9**5 values: the first alias past the bound
        "laughs.l4[6]",
        "expands to more than",
    ),
    (
        "deep-nesting",
        append("deep: " + "[" * 5000 + "]" * 5000 + "\n"),
        "deep:",
        "deep" + "[0]" * 7 + "...",
        "nested more than 32 levels deep",
    ),
    (
        "duplicate-campaign-names",
        replace("delivery:", "  - name: weekly\n    title: Again\n    subject: Again\ndelivery:"),
        "  - name: weekly\n    title: Again",
        "campaigns[1].name",
        "duplicate campaign name 'weekly'",
    ),
    (
        "feed-naming-unknown-campaign",
        append(
            "feeds:\n  feeds:\n    - name: eds\n      title: Editions\n      description: E\n"
            "      path: editions/weekly\n      campaign: weekley\n"
        ),
        "campaign: weekley",
        "feeds.feeds[0].campaign",
        "unknown campaign 'weekley'; did you mean 'weekly'?",
    ),
]


def _hostile(tmp_path: Path, edit) -> tuple[Path, str]:
    text = edit(CONFIG, tmp_path)
    make_project(tmp_path, config=text)
    return tmp_path / "schedules.yaml", text


def _expected_line(text: str, needle: str) -> int:
    if "\n" in needle:  # a block of lines: the line it starts on
        return text[: text.index(needle)].count("\n") + 1
    return line_of(text, needle)


@pytest.mark.slow  # starts the real `publisher` command
@pytest.mark.parametrize(
    ("edit", "needle", "key", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_check_refuses_hostile_value(tmp_path, edit, needle, key, reason):
    path, text = _hostile(tmp_path, edit)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run_cli("check", cwd=tmp_path)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the child, not wall time: on a shared machine waiting is not work
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = _expected_line(text, needle)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{path.name}:{line}: {key}: " in result.stderr, result.stderr
    assert reason in result.stderr, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / MARKER).exists()
    assert written(tmp_path) == []
    assert cpu < 20  # interpreter start included; the bounded load itself is below


@pytest.mark.parametrize(
    ("edit", "needle", "key", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_run_refuses_exactly_what_check_refuses(tmp_path, capsys, edit, needle, key, reason):
    """`run --once` (in process, through main()) refuses before opening the store."""
    path, text = _hostile(tmp_path, edit)
    with pytest.raises(SystemExit) as exited:
        main(["run", "--once", "--config", str(path)])
    captured = capsys.readouterr()
    assert exited.value.code == 2, captured.out + captured.err
    line = _expected_line(text, needle)
    assert f"{path}:{line}: {key}: " in captured.err, captured.err
    assert reason in captured.err
    assert not (tmp_path / MARKER).exists()
    assert written(tmp_path) == []


@pytest.mark.slow  # starts the real `publisher` command
def test_the_unmodified_project_runs_and_writes(tmp_path):
    """The control for the tests above: the same project, unedited, runs and writes."""
    make_project(tmp_path)
    assert run_cli("check", cwd=tmp_path).returncode == 0
    result = run_cli("run", "--once", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {"var", "outbox", "feeds", "archive"} <= set(written(tmp_path))


@pytest.mark.parametrize("case", ["alias-bomb", "deep-nesting"])
def test_bounded_yaml_is_refused_well_under_a_second(tmp_path, case):
    edit = dict((c[0], c[1]) for c in CASES)[case]
    path, _text = _hostile(tmp_path, edit)
    assert len(path.read_bytes()) < 11_000  # a few kilobytes
    # Bounded work, not a stopwatch (the machine is shared): an unbounded loader takes
    # about a gigabyte for the bomb; this one stops after a few megabytes at most.
    tracemalloc.start()
    started = time.process_time()  # this process's CPU time: other processes' load aside
    try:
        with pytest.raises(ConfigError):
            load_config(path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024
    assert time.process_time() - started < 10  # a hang guard only


@pytest.mark.parametrize(
    ("old", "new", "key", "says"),
    [
        (
            "postal_address: 1 Main St, Springfield",
            'postal_address: "1 Main St\\x1b[2J"',
            "organisation.postal_address",
            "control characters (\\x1b)",
        ),
        (
            "public_url: https://www.example.org/news",
            'public_url: "https://www.example.org/news\\nBcc: x@example.net"',
            "organisation.public_url",
            "control characters (\\n)",
        ),
        (
            "name: Test Org",
            'name: "Test\\tOrg"',
            "organisation.name",
            "control characters (\\t)",
        ),
        (
            "backend: file",
            "backend: file\n  backoff_max: .inf",
            "delivery.backoff_max",
            "finite number",
        ),
    ],
)
def test_other_hostile_values_are_refused(tmp_path, old, new, key, says):
    path, _text = _hostile(tmp_path, replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key
    assert says in str(info.value)


def test_multi_line_fields_keep_their_lines(tmp_path):
    edit = replace(
        "postal_address: 1 Main St, Springfield", 'postal_address: "1 Main St\\nSpringfield"'
    )
    path, _text = _hostile(tmp_path, edit)
    assert load_config(path).organisation.postal_address == "1 Main St\nSpringfield"


def test_topics_in_configuration_are_slugs(tmp_path):
    audience = 'audience: ["Workers’ Rights", Économie, Трудовые права]'
    path, _text = _hostile(tmp_path, replace("audience: [workers-rights]", audience))
    config = load_config(path)
    assert config.campaigns[0].audience == ["workers-rights", "economie", "трудовые-права"]
    path.write_text(CONFIG.replace("[workers-rights]", '["!!"]'), encoding="utf-8")
    with pytest.raises(ConfigError, match="has no letter or digit") as info:
        load_config(path)
    assert info.value.key == "campaigns[0].audience[0]"
