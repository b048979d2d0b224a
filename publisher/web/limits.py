"""The rate limits of the sign-up and of the staff's log-in (reset emails, second-factor
codes): which keys a request counts against and how many hits each allows. The counters
are in the store (publisher.store.limits), shared by every process.

An address counts as its mailbox: lower-cased, without a plus-tag, and without dots for
providers that ignore them (Gmail), so `a.b+x@gmail.com` and `ab@gmail.com` share a limit.
Clients count per IP and per network (/24 for IPv4, /64 for IPv6: one host or one customer
usually holds the whole network); every sign-up counts against a global ceiling. Keys of
addresses are hashed: the table never holds an address."""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime

from publisher.store import Store
from publisher.store.limits import Limit, take

IP_LIMIT = 10  # sign-ups per IP per 10 minutes
NETWORK_LIMIT = 30  # per /24 or /64 per 10 minutes
GLOBAL_LIMIT = 600  # sign-ups per hour from everyone together
MAILBOX_LIMIT = 3  # confirmation emails per mailbox per hour
CLIENT_WINDOW = 600
HOUR = 3600
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox(address: str) -> str:
    """The mailbox an address reaches (for counting only; the address is stored as typed)."""
    local, _, domain = address.strip().lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"


def network(ip: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) holding `ip`; an unparsable value stands for itself."""
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:60]
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped:
        parsed = parsed.ipv4_mapped
    prefix = 24 if parsed.version == 4 else 64
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))


def _hashed(kind: str, value: str) -> str:
    return f"{kind}:{hashlib.sha256(value.encode('utf-8')).hexdigest()[:40]}"


def client_limits(ip: str) -> list[Limit]:
    """The limits a sign-up from this client counts against, the global ceiling first."""
    return [
        Limit("signup:all", GLOBAL_LIMIT, HOUR),
        Limit(_hashed("ip", ip), IP_LIMIT, CLIENT_WINDOW),
        Limit(_hashed("net", network(ip)), NETWORK_LIMIT, CLIENT_WINDOW),
    ]


def allow_client(store: Store, ip: str, *, now: datetime) -> bool:
    """Count a sign-up from this client: False (nothing counted) if a limit is reached."""
    return client_wait(store, ip, now=now) is None


def client_wait(store: Store, ip: str, *, now: datetime) -> int | None:
    """Count a sign-up from this client: None if counted, else the seconds until the full
    limit's window ends (nothing counted): an answer's Retry-After."""
    full = take(store, client_limits(ip), now=now)
    if full is None:
        return None
    return full.window - int(now.timestamp()) % full.window


STAFF_RESET_LIMIT = 3  # password-reset emails per staff address per hour


def allow_staff_reset(store: Store, address: str, *, now: datetime) -> bool:
    """Count a password-reset email to this staff address: False if it had its share (in
    the store like every other limit, so all `publisher serve` processes share it)."""
    limit = Limit(_hashed("staff-reset", address.lower()), STAFF_RESET_LIMIT, HOUR)
    return take(store, [limit], now=now) is None


STAFF_CODE_LIMIT = 5  # second-factor codes (TOTP or recovery) per staff account
STAFF_CODE_WINDOW = 300  # per 5 minutes (a fixed window, like every limit here)


def allow_staff_code(store: Store, staff_id: int, *, now: datetime) -> bool:
    """Count a second-factor code tried for this staff account: False (nothing counted)
    if it had its share. Keyed by the account's id, which says nothing about the person."""
    limit = Limit(f"staff-code:{staff_id}", STAFF_CODE_LIMIT, STAFF_CODE_WINDOW)
    return take(store, [limit], now=now) is None


def allow_mail(store: Store, address: str, *, now: datetime) -> bool:
    """Count a confirmation email to this address's mailbox: False if it had its share."""
    limit = Limit(_hashed("mailbox", mailbox(address)), MAILBOX_LIMIT, HOUR)
    return take(store, [limit], now=now) is None
