"""Where a fetch may connect: public addresses only, unless the source says otherwise.

A remote feed that redirects to a loopback, private, link-local or cloud-metadata address
(or names a host whose DNS answers with one) would have us fetch from inside our own network
and republish what we found there. So every connection is checked on the address it is about
to be made to, after resolving, and made to that very address: DNS cannot answer one thing
to the check and another to the connect. The check lives in the transport (`guarded_client`)
so that each redirect hop is checked too.

A source whose configured URL is itself such an address (`http://127.0.0.1:8080/feed`,
`http://localhost/...`) is the staff's explicit choice, as is `allow_private_addresses: true`;
its fetches may connect anywhere. Connections are pooled apart by that choice, so a
connection opened for a private-allowed source is never reused for a public-only one.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """A connection to an address the fetch may not reach; nothing was sent to it."""


def is_public(address: Address) -> bool:
    """An address on the public internet: not loopback, private, link-local (where cloud
    metadata services live: 169.254.169.254), shared (100.64/10), reserved or unspecified."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address.is_global and not address.is_multicast


def names_private_host(url: str) -> bool:
    """The URL's host is itself a non-public address, or `localhost`: staff who configure
    that mean it (no DNS is asked: a name's addresses are checked when connecting)."""
    try:
        host = httpx.URL(url).host.lower()
    except (httpx.InvalidURL, TypeError):
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not is_public(ipaddress.ip_address(host))
    except ValueError:
        return False


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses, as the system resolver gives them (an address stays itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Network:
    """How names become addresses and which addresses count as public; tests replace both
    (a test resolver stands in for DNS, and a loopback server can play a public host)."""

    resolve: Callable[[str, int], list[str]] = resolve
    public: Callable[[Address], bool] = is_public


# Whether the fetch running in this thread may reach non-public addresses (set by
# `private_allowed`, read by the transport of each request, redirects included).
_PRIVATE_ALLOWED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "private_allowed", default=False
)


@contextlib.contextmanager
def private_allowed(allowed: bool) -> Iterator[None]:
    token = _PRIVATE_ALLOWED.set(allowed)
    try:
        yield
    finally:
        _PRIVATE_ALLOWED.reset(token)


def allowed_addresses(network: Network, host: str, port: int, allow_private: bool) -> list[str]:
    """The host's addresses a connection may be made to (connect to one of these, not to the
    name: DNS cannot answer one thing here and another to the connect); AddressRefused when
    there is none. A failed lookup raises the resolver's OSError or UnicodeError."""
    found = network.resolve(host, port)
    allowed = [a for a in found if allow_private or _allowed(network, a)]
    if not allowed:
        shown = ", ".join(found[:3]) or "no address"
        raise AddressRefused(
            f"refused to connect to {host} at {shown}: not a public address "
            "(allow_private_addresses: true on the source allows it)"
        )
    return allowed


def _allowed(network: Network, address: str) -> bool:
    try:
        return network.public(ipaddress.ip_address(address.split("%")[0]))
    except ValueError:
        return False


class _CheckedBackend(httpcore.SyncBackend):
    """Connects only to addresses the policy allows, to the address that was checked."""

    def __init__(self, network: Network, allow_private: bool) -> None:
        self.network, self.allow_private = network, allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            allowed = allowed_addresses(self.network, host, port, self.allow_private)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        error: httpcore.ConnectError | None = None
        for address in allowed:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"cannot connect to {host}")


class GuardedTransport(httpx.BaseTransport):
    """Two connection pools, public-only and private-allowed, chosen per request by the
    fetch's `private_allowed`."""

    def __init__(self, limits: httpx.Limits, network: Network) -> None:
        self._transports = {
            allowed: _checked_transport(limits, _CheckedBackend(network, allowed))
            for allowed in (False, True)
        }

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._transports[_PRIVATE_ALLOWED.get()].handle_request(request)

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()


def _checked_transport(
    limits: httpx.Limits, backend: httpcore.NetworkBackend
) -> httpx.HTTPTransport:
    # httpx's transport takes no network backend, so its pool is replaced by one that has
    # ours (the same arguments httpx passes; no proxy from the environment: the check is
    # on the address we connect to, which through a proxy would be the proxy's).
    transport = httpx.HTTPTransport(limits=limits, trust_env=False)
    transport._pool = httpcore.ConnectionPool(  # noqa: SLF001 - see above
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    return transport


@dataclass(frozen=True)
class ClientOptions:
    connections: int = 16  # at once, over every host
    network: Network = field(default_factory=Network)


def guarded_client(options: ClientOptions | None = None) -> httpx.Client:
    """The HTTP client of collection: every connection checked (see the module's doc)."""
    options = options or ClientOptions()
    limits = httpx.Limits(max_connections=options.connections, max_keepalive_connections=None)
    return httpx.Client(transport=GuardedTransport(limits, options.network))
