"""Signed tokens for the subscriber web (the rate limits are in publisher/web/limits.py).

Forms carry a signed, expiring token bound to the form and (on a subscriber's pages) to the
subscriber: a post without a valid one is refused (CSRF). It needs no cookie or session, so
the sign-up form also works inside an iframe on the organisation's own site. Confirmation
links are signed the same way, bound to the subscriber and to the purpose, and expire.
Time comes from the injected clock, never from the signing library's own.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import datetime

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

SECRET_MIN_LENGTH = 32
# estimated from the key itself (secret_key_problem): secrets.token_hex(16) gave 81-125
# in 100,000 tries, token_urlsafe(32) 185-260; "abcd" ten times 16, "aaaa…" 0
SECRET_MIN_BITS = 72
FORM_MAX_AGE = 2 * 3600  # a page left open for two hours still submits
CONFIRM_MAX_AGE = 7 * 24 * 3600


def fingerprint(value: str) -> str:
    """A short one-way binding: a signed payload is readable, so never put a token in it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def _symbols(text: str) -> int:
    """`text`'s length once every repeat of 3 or more characters counts as one symbol
    (a crude LZ77): "abcd" ten times is 8 symbols, a random key about its length."""
    count, i = 0, 0
    while i < len(text):
        length = 1
        while i + length < len(text) and text[i : i + length + 1] in text[:i]:
            length += 1
        i, count = i + (length if length >= 3 else 1), count + 1
    return count


def secret_key_problem(secret: str) -> str | None:
    """Why `secret` is too weak to sign links and forms, or None. Length alone lets
    "aaaa…" through, so its entropy is estimated: the spread of its characters (Shannon)
    times its length with repeats folded (`_symbols`). A random key passes; a repeated
    or patterned one does not."""
    if len(secret) < SECRET_MIN_LENGTH:
        return f"is too short: use at least {SECRET_MIN_LENGTH} random characters"
    sample = secret[:256]
    counts = [sample.count(c) for c in set(sample)]
    per_char = 0.0 - sum(n / len(sample) * math.log2(n / len(sample)) for n in counts)
    bits = per_char * _symbols(sample)
    if bits < SECRET_MIN_BITS:
        return (
            f"is not random enough ({bits:.0f} bits estimated, {SECRET_MIN_BITS} needed): use a "
            "random value, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return None


class Tokens:
    def __init__(self, secret: str, clock: Callable[[], datetime]) -> None:
        class _Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock().timestamp())

        self._serializer = URLSafeTimedSerializer(secret, signer=_Signer)

    def _dumps(self, salt: str, payload: list[str | int]) -> str:
        return str(self._serializer.dumps(payload, salt=salt))

    def _loads(self, salt: str, token: str, max_age: int) -> object:
        try:
            return self._serializer.loads(token, salt=salt, max_age=max_age)
        except BadData:  # tampered, expired, another key or another purpose
            return None

    def form_token(self, form: str, binding: str = "") -> str:
        return self._dumps("form", [form, fingerprint(binding)])

    def check_form(self, token: str | None, form: str, binding: str = "") -> bool:
        if not token:
            return False
        return self._loads("form", token, FORM_MAX_AGE) == [form, fingerprint(binding)]

    def derived_key(self, purpose: str) -> bytes:
        """A key of its own for another signing scheme (the sign-up's proof of work)."""
        return bytes(self._serializer.make_signer(purpose).derive_key())

    def link_token(self, purpose: str, ref: str, email: str, token: str) -> str:
        """A link for one purpose (confirm, data), naming the subscriber by their opaque
        reference and bound to their address and current token."""
        return self._dumps(purpose, [ref, fingerprint(f"{email}|{token}")])

    def check_link(self, purpose: str, value: str | None, max_age: int) -> tuple[str, str] | None:
        """(reference, binding) of a valid link token for this purpose, else None."""
        data = self._loads(purpose, value or "", max_age)
        if isinstance(data, list) and len(data) == 2 and isinstance(data[0], str):
            return data[0], str(data[1])
        return None
