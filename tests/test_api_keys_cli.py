"""`publisher keys create|list|revoke` as a process: the secret printed once, never listed,
the key working against the store until revoked."""

from __future__ import annotations

import re

import pytest

from publisher.store import api_keys, open_store
from tests.test_web_cli import _cli
from tests.web_support import write_web_config


@pytest.mark.slow  # starts the real `publisher` command
def test_keys_create_list_revoke(project, database_url, fixed_now):
    write_web_config(project, 1)
    made = _cli(project, database_url, "keys", "create", "CRM sync",
                "--scope", "subscribers:read", "--scope", "subscribers:write")  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = re.search(r"pk_[0-9a-f]{12}_\S+", made.stdout)
    assert token is not None and "not shown again" in made.stdout
    wrong = _cli(project, database_url, "keys", "create", "x", "--scope", "everything")
    assert wrong.returncode == 2 and "unknown scope 'everything'" in wrong.stderr
    signup = _cli(project, database_url, "keys", "create", "Website form", "--signup")
    assert signup.returncode == 0, signup.stderr
    listed = _cli(project, database_url, "keys", "list")
    assert token.group() not in listed.stdout
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("2  Website form  signup  no expiry  never used")
    assert lines[1].startswith("1  CRM sync  subscribers:read subscribers:write")
    store = open_store(database_url)
    try:
        assert api_keys.authenticate(store, token.group(), now=fixed_now) is not None
        assert _cli(project, database_url, "keys", "revoke", "1").returncode == 0
        # another process's revoke: this one's cached key ends within KEY_CACHE_TTL
        later = fixed_now + api_keys.KEY_CACHE_TTL
        assert api_keys.authenticate(store, token.group(), now=later) is None
        assert _cli(project, database_url, "keys", "revoke", "9").returncode == 1
    finally:
        store.close()
