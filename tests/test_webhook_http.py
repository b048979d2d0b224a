"""The webhook deliverer's HTTP side (publisher/deliver/webhook_http.py) against a real
receiver on 127.0.0.1: connections kept alive and reused, a connection the receiver closed
never failing a delivery, a long answer cut and its connection dropped, redirects not
followed, every connection made to a checked address (the Host header still the name), and
https verified against the certificate's authority."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme
from standardwebhooks import Webhook

from publisher.config import WebhooksConfig
from publisher.deliver.webhook_http import Connections
from publisher.deliver.webhooks import Deliverer, webhook_connections
from publisher.sources.network import AddressRefused, Network, is_public
from publisher.store import Store, outbox, webhooks
from publisher.store.consent import CLI, add_pending, set_subscriber_status
from tests.conftest import FIXED_NOW
from tests.webhook_receiver import Receiver, receiving

LOCAL = WebhooksConfig(allow_private_addresses=True, timeout=5.0, workers=1)
HEADERS = {"content-type": "application/json", "webhook-id": "msg_1_1"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


@pytest.fixture
def connections() -> Iterator[Connections]:
    made = webhook_connections(LOCAL)
    yield made
    made.close()


def post(connections: Connections, url: str, n: int = 0) -> int:
    return connections.post(url, b'{"n":%d}' % n, HEADERS, kept=2000).status


def test_one_kept_alive_connection_carries_many_posts(
    receiver: Receiver, connections: Connections
) -> None:
    assert [post(connections, receiver.url, n) for n in range(5)] == [200] * 5
    assert len(receiver.received) == 5 and receiver.connections() == 1


def test_a_connection_the_receiver_closed_never_fails_a_delivery(
    receiver: Receiver, connections: Connections
) -> None:
    """The receiver closes each connection after answering, without saying so: the next
    POST goes over a new connection (found closed before reuse, or sent again once when
    the receiver closed it at the very moment of reuse)."""
    receiver.hang_up = True
    assert [post(connections, receiver.url, n) for n in range(4)] == [200] * 4
    assert [b'{"n":%d}' % n for n in range(4)] == receiver.bodies()
    assert receiver.connections() == 4


def test_a_long_answer_is_cut_and_its_connection_dropped(
    receiver: Receiver, connections: Connections
) -> None:
    receiver.status = 503  # answers "down for maintenance " * 500: 10,500 bytes
    answer = connections.post(receiver.url, b"{}", HEADERS, kept=100)
    assert answer.status == 503 and answer.text == ("down for maintenance " * 5)[:100]
    receiver.status = 200
    assert post(connections, receiver.url) == 200
    assert receiver.connections() == 2  # the unread rest was not left on a kept connection


def test_a_redirect_is_not_followed(receiver: Receiver, connections: Connections) -> None:
    receiver.status = 307
    assert post(connections, receiver.url) == 307
    assert len(receiver.peers) == 1


def test_a_name_is_connected_to_at_its_checked_address_only(receiver: Receiver) -> None:
    """A name whose address is not allowed is refused before anything is sent; one whose
    address is allowed (here the test says loopback plays a public host) is connected to at
    that address, with the name kept in the Host header."""
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    url = f"http://hooks.example.org:{port}/hook"

    def resolve(host: str, port: int) -> list[str]:
        assert host == "hooks.example.org"
        return ["127.0.0.1"]

    refused = Connections(Network(resolve, is_public), timeout=5.0, keep=1)
    with pytest.raises(AddressRefused, match="not a public address"):
        post(refused, url)
    assert receiver.peers == []
    allowed = Connections(Network(resolve, lambda address: True), timeout=5.0, keep=1)
    assert post(allowed, url) == 200
    (got,) = receiver.received
    assert got.headers["Host"] == f"hooks.example.org:{port}"
    allowed.close()


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_receiver(authority: trustme.CA) -> Iterator[Receiver]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("localhost").configure_cert(context)
    with receiving(tls=context) as found:
        yield found


def test_https_is_verified_against_the_certificates_authority(
    tls_receiver: Receiver, connections: Connections
) -> None:
    # the default context (httpx's CA bundle) does not know the test authority
    with pytest.raises(ssl.SSLCertVerificationError):
        post(connections, tls_receiver.url)
    assert tls_receiver.peers == []


def test_an_event_is_delivered_signed_over_https(
    store: Store, tls_receiver: Receiver, authority: trustme.CA
) -> None:
    _, secret = webhooks.create_endpoint(
        store, tls_receiver.url, outbox.EVENTS, by="owner@example.org", now=FIXED_NOW
    )
    for n in range(3):
        someone = add_pending(store, f"t{n}@example.org", name=None, topics=(), ctx=CLI,
                              now=FIXED_NOW)  # fmt: skip
        set_subscriber_status(store, someone.id, "active", action="confirm", ctx=CLI, now=FIXED_NOW)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    network = webhook_connections(LOCAL).network
    over_tls = Connections(network, timeout=5.0, keep=1, tls_context=trusting)
    sender = Deliverer(store, LOCAL, clock=lambda: FIXED_NOW, connections=over_tls)
    assert sender.run_until_idle().delivered == 3
    sender.close()
    over_tls.close()
    assert len(tls_receiver.received) == 3 and tls_receiver.connections() == 1
    for got in tls_receiver.received:
        assert Webhook(secret).verify(got.body, got.headers)["type"] == "subscriber.confirmed"
