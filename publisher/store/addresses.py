"""normalise_email's reading of an address without re-reading its domain every time: the
API's creates bring new addresses at the same few domains, and email-validator spends
most of an address on the domain (its IDNA check walks every character). `quick_reading`
takes validate_email's own steps with email-validator's own functions, the domain's
reading remembered per domain (a pure function of its text and the options); anything
unusual (a display name, a quoted local part, an IP literal, a refusal) it leaves to
validate_email itself, so the answer and the error message stay exactly its.
tests/test_addresses.py compares the two over generated and tricky addresses."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import email_validator
from email_validator import EmailNotValidError
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from email_validator.syntax import (
    split_email,
    validate_email_domain_name,
    validate_email_length,
    validate_email_local_part,
)
from email_validator.types import ValidatedEmail

__all__ = ["quick_reading"]


@lru_cache(maxsize=2048)
def _domain(domain: str, test_environment: bool, globally: bool) -> tuple[str, str] | None:
    """email-validator's (domain, ascii_domain) of a domain name; None: it refuses it."""
    try:
        info = validate_email_domain_name(
            domain, test_environment=test_environment, globally_deliverable=globally
        )
    except EmailNotValidError:
        return None
    return info["domain"], info["ascii_domain"]


def quick_reading(address: str) -> str | None:
    """`ascii_email or normalized` of validate_email(address, check_deliverability=False,
    allow_smtputf8=False) for a plain address it accepts; None when validate_email itself
    must say (a display name, quotes, an IP literal, anything it refuses)."""
    try:
        display, original, local, quoted, domain = split_email(address)
        if display is not None or quoted or not domain or domain.startswith("["):
            return None
        if unicodedata.normalize("NFC", local) != local:
            return None  # validate_email reads it again after normalising: let it
        info = validate_email_local_part(
            local,
            allow_smtputf8=False,
            allow_empty_local=email_validator.ALLOW_EMPTY_LOCAL,
            quoted_local_part=False,
            strict=email_validator.STRICT,
        )
        read = _domain(
            domain, email_validator.TEST_ENVIRONMENT, email_validator.GLOBALLY_DELIVERABLE
        )
        if read is None:
            return None
        result = ValidatedEmail()
        result.original = original + "@" + domain
        result.display_name = None
        result.smtputf8 = info["smtputf8"]
        result.local_part, result.ascii_local_part = info["local_part"], info["ascii_local_part"]
        if (
            ascii_local := result.ascii_local_part
        ) and ascii_local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
            result.ascii_local_part, result.local_part = (
                ascii_local.lower(),
                result.local_part.lower(),
            )
        result.domain, result.ascii_domain = read
        result.normalized = result.local_part + "@" + result.domain
        if result.ascii_local_part and result.ascii_domain:
            result.ascii_email = result.ascii_local_part + "@" + result.ascii_domain
        else:
            result.ascii_email = None
        validate_email_length(result)
    except EmailNotValidError:
        return None
    return result.ascii_email or result.normalized
