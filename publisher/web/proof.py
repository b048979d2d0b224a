"""The optional proof of work on the sign-up form (`subscribers.proof_of_work`): an ALTCHA
challenge made here and solved by the visitor's browser (templates/web/altcha.js, served by
us: no third party sees the visitor). Solving costs a browser a fraction of a second and a
bulk sender that much per sign-up. A challenge is signed (a key derived from
PUBLISHER_SECRET_KEY, so every process accepts the others'), expires with the form, and
counts once: its salt is marked used in the store's rate-limit table."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta
from urllib.parse import parse_qs

import altcha

from publisher.store.limits import Limit, take
from publisher.web.context import Web
from publisher.web.security import FORM_MAX_AGE

MAX_NUMBER = 100_000  # about 50,000 SHA-256 on average: ~0.1 s in a browser


def _key(w: Web) -> bytes:
    return w.tokens.derived_key("altcha")


def challenge_json(w: Web) -> str:
    """A fresh challenge for the form, as the JSON the page's script reads."""
    expires = w.now() + timedelta(seconds=FORM_MAX_AGE)
    options = altcha.ChallengeOptionsV1(hmac_key=_key(w), max_number=MAX_NUMBER, expires=expires)
    made = altcha.create_challenge_v1(options)
    return json.dumps(
        {
            "algorithm": made.algorithm,
            "challenge": made.challenge,
            "maxnumber": made.max_number,
            "salt": made.salt,
            "signature": made.signature,
        }
    )


def solved(w: Web, payload: str, *, now: datetime) -> bool:
    """The form's `altcha` field solves a challenge of ours, not expired, not used before."""
    if not payload or len(payload) > 2000:
        return False
    try:
        ok, _ = altcha.verify_solution_v1(payload, _key(w), check_expires=False)
        salt = str(json.loads(base64.b64decode(payload, validate=True))["salt"])
        expires = int(parse_qs(salt.partition("?")[2]).get("expires", ["0"])[0])
    except (ValueError, KeyError, TypeError):
        return False
    if not ok or expires <= now.timestamp():  # our clock, not the library's
        return False
    used = Limit(f"pow:{hashlib.sha256(salt.encode()).hexdigest()[:40]}", 1, 2 * FORM_MAX_AGE)
    return take(w.store, [used], now=now) is None
