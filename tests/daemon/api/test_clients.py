"""Who is calling: X-Forwarded-For is believed only from [api] trusted_proxies."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.api.clients import UNKNOWN_CLIENT, ClientResolver, networks
from daemon.config import ApiSettings

PROXIES = ClientResolver(networks(["127.0.0.1", "::1"]))


def scope(peer: str | None, *forwarded: str) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"type": "http", "client": (peer, 5000) if peer else None, "headers": headers}


def test_a_strangers_forwarded_header_is_ignored() -> None:
    # A client on the shop network cannot pick its own bucket by writing the header.
    assert PROXIES.key(scope("192.168.1.50", "10.9.9.9")) == "192.168.1.50"


def test_behind_the_local_proxy_the_right_most_untrusted_hop_is_the_client() -> None:
    # The left part is whatever the client wrote; the proxy appended the real peer.
    assert PROXIES.key(scope("127.0.0.1", "6.6.6.6, 203.0.113.7")) == "203.0.113.7"
    assert PROXIES.key(scope("127.0.0.1", "6.6.6.6", "203.0.113.7, 127.0.0.1")) == "203.0.113.7"


def test_a_proxy_without_the_header_is_the_client_itself() -> None:
    assert PROXIES.key(scope("127.0.0.1")) == "127.0.0.1"
    assert PROXIES.key(scope("::ffff:127.0.0.1")) == "127.0.0.1"


def test_a_garbled_chain_or_no_peer_is_the_unknown_client() -> None:
    assert PROXIES.key(scope("127.0.0.1", "not-an-address")) == UNKNOWN_CLIENT
    assert PROXIES.key(scope(None)) == UNKNOWN_CLIENT


def test_config_names_the_bad_network() -> None:
    with pytest.raises(ValueError, match="'shop-lan' is not an address or network"):
        ApiSettings(trusted_networks=("shop-lan",))
