"""The API key cache (publisher/store/api_keys.py): a key found is kept in memory for
KEY_CACHE_TTL, dropped at once by a revoke in this process; a revoke by another process
(here: the row changed behind the cache's back) takes effect within the bound."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from publisher.store import Store
from publisher.store.api_keys import (
    KEY_CACHE_TTL,
    authenticate,
    cached_key,
    create_key,
    revoke_key,
)
from publisher.store.models import ApiKeyRow
from tests.conftest import FIXED_NOW

SECOND = timedelta(seconds=1)


def _key(store: Store, **extra: object) -> tuple[int, str]:
    key, token = create_key(
        store, "cached", kind="scoped", scopes=["subscribers:read"], created_by="t",
        now=FIXED_NOW, **extra,  # type: ignore[arg-type]
    )  # fmt: skip
    return key.id, token


def _revoke_elsewhere(store: Store, key_id: int) -> None:
    """What the CLI's revoke in another process does to the row (no cache of ours told)."""
    with store.engine.begin() as connection:
        connection.execute(
            update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(revoked_at=FIXED_NOW)
        )


def test_a_revoke_in_this_process_refuses_the_key_at_once(store):
    key_id, token = _key(store)
    assert authenticate(store, token, now=FIXED_NOW) is not None
    revoke_key(store, key_id, now=FIXED_NOW + SECOND)
    assert authenticate(store, token, now=FIXED_NOW + 2 * SECOND) is None


def test_another_process_revoke_takes_effect_within_the_bound(store):
    key_id, token = _key(store)
    assert authenticate(store, token, now=FIXED_NOW) is not None
    _revoke_elsewhere(store, key_id)
    just_before = FIXED_NOW + KEY_CACHE_TTL - SECOND
    assert authenticate(store, token, now=just_before) is not None  # still cached
    assert authenticate(store, token, now=FIXED_NOW + KEY_CACHE_TTL) is None
    assert authenticate(store, token, now=FIXED_NOW) is None  # and not cached again


def test_a_cached_key_still_expires_on_time(store):
    _, token = _key(store, expires_at=FIXED_NOW + 3 * SECOND)
    assert authenticate(store, token, now=FIXED_NOW) is not None
    assert authenticate(store, token, now=FIXED_NOW + 3 * SECOND) is None


def test_a_wrong_secret_with_a_cached_key_prefix_is_refused(store):
    _, token = _key(store)
    assert authenticate(store, token, now=FIXED_NOW) is not None
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    assert authenticate(store, forged, now=FIXED_NOW) is None


def test_a_clock_gone_back_reads_the_row_again(store):
    key_id, token = _key(store)
    assert authenticate(store, token, now=FIXED_NOW) is not None
    _revoke_elsewhere(store, key_id)
    assert authenticate(store, token, now=FIXED_NOW - SECOND) is None


def test_cached_key_answers_only_what_authenticate_would_without_the_store(store):
    """The API's event loop asks cached_key first: a key not yet read, one whose last use
    is due to be written, a revoked or an expired one all send it to `authenticate`."""
    key_id, token = _key(store, expires_at=FIXED_NOW + KEY_CACHE_TTL)
    assert cached_key(store, token, now=FIXED_NOW) is None  # never read: the store must say
    assert cached_key(store, "pk_nonsense", now=FIXED_NOW) is None
    found = authenticate(store, token, now=FIXED_NOW)
    assert found is not None
    assert cached_key(store, token, now=FIXED_NOW + SECOND) == found
    assert cached_key(store, token, now=FIXED_NOW + KEY_CACHE_TTL) is None  # expired, stale
    revoke_key(store, key_id, now=FIXED_NOW + SECOND)
    assert cached_key(store, token, now=FIXED_NOW + 2 * SECOND) is None
