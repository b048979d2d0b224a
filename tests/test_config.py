from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from publisher.config import load_config
from publisher.errors import ConfigError
from tests.conftest import BASE_CONFIG, write_config


def errors_of(exc: ConfigError) -> list[ConfigError]:
    return getattr(exc, "errors", [exc])


def test_sample_configuration_is_valid():
    config = load_config(Path(__file__).parent.parent / "schedules.yaml")
    assert config.organisation.name
    assert config.sources


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "schedules.yaml"
    path.write_text(BASE_CONFIG + "sources:\n  - name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == str(path)
    assert info.value.line in (9, 10)
    assert "YAML syntax" in str(info.value)


def test_unknown_key_names_line_and_key_path_with_suggestion(tmp_path):
    path = write_config(
        tmp_path,
        """
        sources:
          - name: posts
            type: markdown
            pathh: content
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = errors_of(info.value)
    unknown = [e for e in found if "unknown key 'pathh'" in e.reason]
    assert unknown, [str(e) for e in found]
    assert unknown[0].line == 12
    assert unknown[0].key == "sources[0].pathh"
    assert "did you mean 'path'" in unknown[0].reason


def test_wrong_type_names_key(tmp_path):
    path = write_config(
        tmp_path,
        """
        sources:
          - name: remote
            type: feed
            url: https://example.org/feed.xml
            timeout: soon
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = errors_of(info.value)[0]
    assert error.key == "sources[0].timeout"
    assert error.line == 13


def test_unknown_time_zone_suggests_the_right_one(tmp_path):
    path = tmp_path / "schedules.yaml"
    path.write_text(BASE_CONFIG.replace("America/New_York", "America/NewYork"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "did you mean 'America/New_York'" in str(info.value)
    assert info.value.key == "organisation.timezone"
    assert info.value.line == 7


def test_duplicate_keys_are_errors(tmp_path):
    path = tmp_path / "schedules.yaml"
    path.write_text(BASE_CONFIG + "sources: []\nsources: []\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "duplicate key 'sources'" in str(info.value)
    assert info.value.line == 9


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "publisher.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # starts the real `publisher` command
def test_cli_on_malformed_config_exits_2_without_traceback(tmp_path):
    write_config(
        tmp_path,
        """
        sources:
          - name: posts
            type: markdown
            path: content
            colour: red
        """,
    )
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "schedules.yaml:13" in result.stderr
    assert "sources[0].colour" in result.stderr


@pytest.mark.slow  # starts the real `publisher` command
def test_cli_on_missing_config_exits_2(tmp_path):
    result = run_cli("--config", "nope.yaml", "collect", cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr
    assert "not found" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # starts the real `publisher` command
@pytest.mark.parametrize(
    "args",
    [("nosuchcmd",), ("preview",), ("items", "--limit", "many"), ("run", "--bogus")],
)
def test_cli_usage_errors_exit_2_without_traceback(tmp_path, args):
    write_config(tmp_path)
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "Usage:" in result.stderr or "Error" in result.stderr


def test_recursive_alias_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "schedules.yaml"
    path.write_text(BASE_CONFIG + "sources: &loop\n  - *loop\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="recursive alias") as info:
        load_config(path)
    assert (info.value.line, info.value.key) == (8, "sources[0]")  # where the anchor is


@pytest.mark.parametrize("key", ["root", "file"])
def test_internal_attributes_are_not_configuration_keys(tmp_path, key):
    path = tmp_path / "schedules.yaml"
    path.write_text(BASE_CONFIG + f"{key}: /etc\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"unknown key '{key}'"):
        load_config(path)


@pytest.mark.slow  # starts the real `publisher` command
def test_send_to_something_that_is_not_an_address_is_a_usage_error(tmp_path):
    write_config(tmp_path)
    result = run_cli("send", "weekly", "--to", "not-an-address", cwd=tmp_path)
    assert result.returncode == 2
    assert "is not an email address" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "outbox").exists()


def test_a_campaign_may_not_take_the_archive_folder_of_alerts(tmp_path):
    from publisher.config.models import RESERVED_CAMPAIGN_NAMES
    from publisher.render.alert import ARCHIVE_FOLDER

    assert ARCHIVE_FOLDER in RESERVED_CAMPAIGN_NAMES
    path = write_config(
        tmp_path,
        f"""
        campaigns:
          - name: {ARCHIVE_FOLDER}
            title: Alerts
            subject: Alert
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = errors_of(info.value)
    assert any(e.key == "campaigns[0].name" and "reserved" in e.reason for e in found), found
