"""Keys of the JSON API and the stored answers of its idempotent POSTs.

A key is shown once as `pk_<prefix>_<secret>`: the prefix finds its row, the SHA-256 of the
whole token is compared in constant time. The token carries 256 random bits, so a fast hash
is as safe as a slow one and costs nothing per request. Which scopes mean what is the web
edge's rule (publisher/web/api/keys.py); the store keeps them as words.

`authenticate` keeps a found key in memory for KEY_CACHE_TTL (by the token's hash), so a
busy client costs no query per call: a revoke through `revoke_key` in this process drops it
at once; one made by another process (the CLI, a second server) takes effect within
KEY_CACHE_TTL. Expiry is checked against the clock on every call."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update

from publisher.store import Store, dialect
from publisher.store.models import ApiIdempotencyRow, ApiKeyRow

__all__ = [
    "IDEMPOTENCY_KEPT",
    "IDEMPOTENCY_STALE",
    "KEY_CACHE_TTL",
    "ApiKey",
    "Replay",
    "authenticate",
    "cached_key",
    "claim_answer",
    "create_key",
    "keep_answers",
    "kept_answers",
    "list_keys",
    "release_answer",
    "remember_answer",
    "revoke_key",
]

IDEMPOTENCY_KEPT = timedelta(hours=24)
# a claim still without its answer this long after it was made is a lost request (its
# process was killed between the claim and the answer): a retry with the same body takes it
IDEMPOTENCY_STALE = timedelta(minutes=5)
_KEYS = cast(Table, ApiKeyRow.__table__)
_IDEM = cast(Table, ApiIdempotencyRow.__table__)
LAST_USED_STEP = timedelta(minutes=1)  # last use written at most once a minute per key
KEY_CACHE_TTL = timedelta(seconds=10)  # how long another process's revoke may go unseen
_CACHE_MOST = 1000  # keys kept at most (a flood of unknown tokens is never kept)
# (store URL, token hash) -> the key and when it was read: per URL, so every Store of one
# database in this process shares it and a revoke through any of them drops it
_cache: dict[tuple[str, str], tuple[ApiKey, datetime]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    kind: str  # scoped | signup
    scopes: tuple[str, ...]
    prefix: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class Replay:
    """A stored answer: its request's hash, status and JSON body."""

    request_hash: str
    status: int
    body: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        row.id,
        row.name,
        row.kind,
        tuple(row.scopes.split()),
        row.prefix,
        row.created_by,
        row.created_at,
        row.expires_at,
        row.revoked_at,
        row.last_used_at,
    )


def create_key(
    store: Store,
    name: str,
    *,
    kind: str,
    scopes: Sequence[str],
    created_by: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its token (shown once: only its hash is kept)."""
    prefix = secrets.token_hex(6)
    token = f"pk_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKeyRow(
        name=name[:100],
        kind=kind,
        scopes=" ".join(sorted(set(scopes))),
        prefix=prefix,
        secret_hash=_hash(token),
        created_by=created_by[:320],
        created_at=now,
        expires_at=expires_at,
    )
    with store.session() as session:
        session.add(row)
        session.flush()
        key = _key(row)
    return key, token


def list_keys(store: Store) -> list[ApiKey]:
    """Every key, newest first (revoked ones too: the page shows when)."""
    with store.session() as session:
        rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id.desc()))
        return [_key(row) for row in rows]


def revoke_key(store: Store, key_id: int, *, now: datetime) -> ApiKey | None:
    """Revoke a key at once (None: no such key). Revoking twice keeps the first time."""
    with store.session() as session:
        row = session.get(ApiKeyRow, key_id)
        if row is None:
            return None
        if row.revoked_at is None:
            row.revoked_at = now
        key = _key(row)
    _forget(store, key_id)
    return key


def _forget(store: Store, key_id: int) -> None:
    """Drop a key from this process's cache (after its row changed)."""
    with _cache_lock:
        for entry in [
            e for e, (key, _) in _cache.items() if e[0] == store.url and key.id == key_id
        ]:
            del _cache[entry]


def _cached(store: Store, digest: str, now: datetime) -> tuple[ApiKey, datetime] | None:
    """The key and when its row was read, if read less than KEY_CACHE_TTL ago."""
    with _cache_lock:
        found = _cache.get((store.url, digest))
        if found is None or found[1] <= now < found[1] + KEY_CACHE_TTL:
            return found
        # an old entry, or a clock gone back (a test's): gone, the row is read again
        del _cache[(store.url, digest)]
        return None


def _keep(store: Store, digest: str, key: ApiKey, read_at: datetime) -> None:
    with _cache_lock:
        if len(_cache) >= _CACHE_MOST:
            _cache.clear()  # rare (that many keys in use): simply read them again
        _cache[(store.url, digest)] = (key, read_at)


def authenticate(store: Store, token: str, *, now: datetime) -> ApiKey | None:
    """The usable key this token is (revoked, expired, unknown or malformed: None); its
    last use is written at most once a minute, so a busy client costs no write per call.
    A key found is kept for KEY_CACHE_TTL (see the module)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "pk" or len(parts[1]) != 12:
        return None
    digest = _hash(token)
    cached = _cached(store, digest, now)
    key = cached[0] if cached else _read_key(store, parts[1], digest)
    if key is None or not key.usable(now):
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_STEP:
        table = _KEYS
        with store.engine.begin() as connection:
            connection.execute(update(table).where(table.c.id == key.id).values(last_used_at=now))
        key = replace(key, last_used_at=now)
    if cached is None or key is not cached[0]:  # the read time stays the row's
        _keep(store, digest, key, cached[1] if cached else now)
    return key


def cached_key(store: Store, token: str, *, now: datetime) -> ApiKey | None:
    """What `authenticate` would give, when it can be told without the store (the key kept
    in memory, usable, its last use written less than LAST_USED_STEP ago); None otherwise:
    then ask `authenticate` (it reads or writes the store). For callers on an event loop."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "pk" or len(parts[1]) != 12:
        return None
    cached = _cached(store, _hash(token), now)
    if cached is None:
        return None
    key = cached[0]
    if not key.usable(now) or key.last_used_at is None or now - key.last_used_at >= LAST_USED_STEP:
        return None
    return key


def _read_key(store: Store, prefix: str, digest: str) -> ApiKey | None:
    table = _KEYS
    with store.engine.connect() as connection:
        row = connection.execute(select(table).where(table.c.prefix == prefix)).first()
    if row is None or not hmac.compare_digest(row.secret_hash, digest):
        return None
    return ApiKey(
        row.id,
        row.name,
        row.kind,
        tuple(row.scopes.split()),
        row.prefix,
        row.created_by,
        row.created_at,  # aware: Core reads go through UTCDateTime too
        row.expires_at,
        row.revoked_at,
        row.last_used_at,
    )


def claim_answer(
    store: Store, key_id: int, idem_key: str, request_hash: str, *, now: datetime
) -> Replay | None:
    """Claim this key's Idempotency-Key for a request about to run: None when claimed (run
    it, then `remember_answer` or `release_answer`), else what is kept for it: a finished
    answer, or status 0 while the first request still runs. A claim of the same request
    without its answer for IDEMPOTENCY_STALE is taken over (claimed afresh: None), by one
    conditional UPDATE, so of two retries at once only one runs it. Claims older than
    IDEMPOTENCY_KEPT are deleted in the same transaction, so the table stays a day deep."""
    values = {"key_id": key_id, "idem_key": idem_key, "request_hash": request_hash}
    claim = _claim_statement(store)
    with store.engine.begin() as connection:
        connection.execute(_PRUNE, {"before": now - IDEMPOTENCY_KEPT})
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT
        row = {**values, "status": 0, "body": "", "created_at": now}
        if connection.execute(claim, row).first() is not None:
            return None
        stale = {"k": key_id, "i": idem_key, "h": request_hash, "now": now}
        if connection.execute(_TAKE_OVER, stale | {"before": now - IDEMPOTENCY_STALE}).rowcount:
            return None
        kept = connection.execute(_KEPT, {"k": key_id, "i": idem_key}).first()
    return Replay("", 0, "") if kept is None else Replay(kept.request_hash, kept.status, kept.body)


# built once (each create with an Idempotency-Key runs them): building costs more than running
_PRUNE = delete(_IDEM).where(_IDEM.c.created_at <= bindparam("before"))
_ONE = (_IDEM.c.key_id == bindparam("k"), _IDEM.c.idem_key == bindparam("i"))
_KEPT = select(_IDEM.c.request_hash, _IDEM.c.status, _IDEM.c.body).where(*_ONE)
# the claim of a lost request, made anew; the WHERE is checked again on the row a concurrent
# take-over committed (PostgreSQL) or runs after it (SQLite): the second finds it fresh
_TAKE_OVER = (
    update(_IDEM)
    .where(
        *_ONE,
        _IDEM.c.status == 0,
        _IDEM.c.request_hash == bindparam("h"),
        _IDEM.c.created_at <= bindparam("before"),
    )
    .values(created_at=bindparam("now"))
)
_REMEMBER = update(_IDEM).where(*_ONE).values(status=bindparam("s"), body=bindparam("b"))
_KEPT_MANY = select(
    _IDEM.c.key_id, _IDEM.c.idem_key, _IDEM.c.request_hash, _IDEM.c.status, _IDEM.c.body
).where(_IDEM.c.idem_key.in_(bindparam("idems", expanding=True)))
_KEEP = insert(_IDEM)
_CLAIMS: dict[str, Any] = {}  # per dialect: the INSERT ... ON CONFLICT DO NOTHING


def _claim_statement(store: Store) -> Any:
    name = store.engine.dialect.name
    if name not in _CLAIMS:
        table = _IDEM
        _CLAIMS[name] = dialect.insert_ignore(store.engine, table).returning(table.c.key_id)
    return _CLAIMS[name]


def remember_answer(store: Store, key_id: int, idem_key: str, *, status: int, body: str) -> None:
    """Keep the answer of a claimed request: retries with the same body get it again."""
    with store.engine.begin() as connection:
        connection.execute(_REMEMBER, {"k": key_id, "i": idem_key, "s": status, "b": body})


def kept_answers(
    store: Store, keys: Sequence[tuple[int, str]], *, now: datetime
) -> dict[tuple[int, str], Replay]:
    """What is kept for each (key id, Idempotency-Key) that has something, in one read
    (older ones deleted first, as claim_answer does): the API's batched creates look their
    keys up together, run the rest and `keep_answers` in the same transaction."""
    if not keys:
        return {}
    wanted = set(keys)
    with store.engine.begin() as connection:
        connection.execute(_PRUNE, {"before": now - IDEMPOTENCY_KEPT})
        rows = connection.execute(_KEPT_MANY, {"idems": sorted({i for _, i in wanted})})
        return {
            (row.key_id, row.idem_key): Replay(row.request_hash, row.status, row.body)
            for row in rows
            if (row.key_id, row.idem_key) in wanted
        }


def keep_answers(
    store: Store, answers: Sequence[tuple[int, str, str, int, str]], *, now: datetime
) -> None:
    """Keep (key id, Idempotency-Key, request hash, status, body) answers of requests run
    without a claim first, in the transaction that ran them (so nobody saw them running),
    one statement: IntegrityError if another process claimed one of the keys meanwhile."""
    if answers:
        rows = [
            {"key_id": k, "idem_key": i, "request_hash": h, "status": s, "body": b,
             "created_at": now}
            for k, i, h, s, b in answers
        ]  # fmt: skip
        with store.engine.begin() as connection:
            connection.execute(_KEEP, rows)


def release_answer(store: Store, key_id: int, idem_key: str) -> None:
    """Give a claim up (the request failed on our side): a retry runs it afresh."""
    table = _IDEM
    with store.engine.begin() as connection:
        connection.execute(
            delete(table).where(table.c.key_id == key_id, table.c.idem_key == idem_key)
        )
