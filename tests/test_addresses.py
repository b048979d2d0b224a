"""normalise_email's quick reading (publisher/store/addresses.py) gives exactly what
email-validator gives, or leaves the address to it: over generated addresses, addresses
built from tricky pieces (quoted local parts, dots, IDNA, upper case, trailing dots, long
labels, IP literals, display names, hyphens where IDNA forbids them) and plain text."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from publisher.store.addresses import quick_reading
from publisher.store.subscribers import normalise_email


def reference(raw: str) -> str | None:
    """normalise_email as it was: email-validator's reading, lower-cased (None: refused)."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return (result.ascii_email or result.normalized).lower()


def ours(raw: str) -> str | None:
    try:
        return normalise_email(raw)
    except ValueError:
        return None


LOCALS = [
    "ann",
    "Ann.Lee",
    "a.b.c",
    ".ann",
    "ann.",
    "a..b",
    '"ann lee"',
    '"a@b"',
    "a+tag",
    "POSTMASTER",
    "Abuse",
    "o'neil",
    "x" * 64,
    "x" * 65,
    "ü",
    "a b",
    "",
    "a\\b",
    "<a>",
    "a(b)",
    "=?x?=",
    "#!$%&*/=?^_`{|}~-",
    "e\u0301",
    "ǅ",
]
DOMAINS = [
    "example.org",
    "Example.ORG",
    "example.org.",
    "exa_mple.org",
    "xn--bcher-kva.de",
    "bücher.de",
    "BÜCHER.de",
    "ab--cd.org",
    "-a.org",
    "a-.org",
    "a.b",
    "localhost",
    "x.test",
    "x.invalid",
    "1.2.3.4",
    "[1.2.3.4]",
    "[IPv6:::1]",
    "org",
    "a." + "b" * 63 + ".org",
    "a." + "b" * 64 + ".org",
    ("c" * 60 + ".") * 5 + "org",
    "exa mple.org",
    "xn--zz.org",
    "ex\u00adample.org",
    "ｅｘａｍｐｌｅ.org",
    "a.123",
    "é.fr",
    "",
]
TRICKY = [f"{local}@{domain}" for local in LOCALS for domain in DOMAINS]
TRICKY += [
    "Ann <ann@example.org>",
    "<ann@example.org>",
    "  ann@example.org  ",
    "ann@@x.org",
    "ann",
    "@example.org",
    "ann@",
    "a@b@c.org",
    '"ann"@example.org',
    "ann@example.org\n",
]


@pytest.mark.parametrize("raw", TRICKY)
def test_tricky_addresses_read_as_email_validator_reads_them(raw):
    assert ours(raw) == reference(raw)


PIECES = st.sampled_from(
    [
        "a",
        "B",
        ".",
        "-",
        "_",
        "+",
        '"',
        "@",
        "[",
        "]",
        " ",
        "ü",
        "xn--",
        "1",
        "é",
        "ß",
        "\\",
        "<",
        ">",
        ",",
        "org",
        "ＡＢ",
        "\u0301",
        ":",
    ]
)
LABEL = st.from_regex(r"[A-Za-z0-9-]{1,70}", fullmatch=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    local=st.one_of(
        st.from_regex(r"[A-Za-z0-9.+_'-]{0,70}", fullmatch=True),
        st.lists(PIECES, max_size=8).map("".join),
    ),
    labels=st.lists(
        st.one_of(LABEL, st.lists(PIECES, max_size=4).map("".join)), min_size=1, max_size=5
    ),
)
@example(local="ann", labels=["example", "org", ""])
def test_generated_addresses_read_as_email_validator_reads_them(local, labels):
    raw = f"{local}@{'.'.join(labels)}"
    assert ours(raw) == reference(raw)


@settings(max_examples=200, deadline=None)
@given(st.emails() | st.text(max_size=40))
def test_any_text_or_address_reads_as_email_validator_reads_it(raw):
    assert ours(raw) == reference(raw)


def test_the_quick_reading_leaves_the_unusual_to_email_validator():
    assert quick_reading("Ann.Lee@Example.ORG") == "Ann.Lee@example.org"
    assert quick_reading("Postmaster@example.org") == "postmaster@example.org"
    assert quick_reading("ann@bücher.de") == "ann@xn--bcher-kva.de"
    for unusual in ('"ann lee"@example.org', "Ann <ann@example.org>", "a@[1.2.3.4]", "a@x.test"):
        assert quick_reading(unusual) is None
