"""Who is calling: the client's address, believing X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Where an address cannot be read (a test transport, a Unix socket): never trusted, and one
# shared bucket for the limits.
UNKNOWN_CLIENT = "unknown"


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Config entries ("127.0.0.0/8", "::1") as networks; the config validated them."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def parse_address(text: str) -> Address | None:
    """An IP address, or None; "::ffff:127.0.0.1" counts as 127.0.0.1."""
    try:
        address = ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(address: Address | None, allowed: Iterable[Network]) -> bool:
    """True when `address` lies in one of `allowed`."""
    return address is not None and any(
        address.version == net.version and address in net for net in allowed
    )


@dataclass(frozen=True)
class ClientResolver:
    """Reads the calling client's address off an ASGI scope.

    The peer's own address, unless the peer is a trusted proxy: then the right-most address
    of X-Forwarded-For that is not itself a trusted proxy (the left ones are whatever the
    client wrote). The HTTP server passes the peer through untouched for this to work.
    """

    trusted_proxies: tuple[Network, ...] = ()

    def address(self, scope: Scope) -> Address | None:
        peer = scope.get("client")
        address = parse_address(str(peer[0])) if peer else None
        if not within(address, self.trusted_proxies):
            return address
        forwarded = Headers(scope=scope).getlist("x-forwarded-for")
        hops = [hop for line in forwarded for hop in line.split(",") if hop.strip()]
        for hop in reversed(hops):
            candidate = parse_address(hop)
            if candidate is None:
                return None  # a garbled chain: nobody to believe
            if not within(candidate, self.trusted_proxies):
                return candidate
            address = candidate
        return address

    def key(self, scope: Scope) -> str:
        """The address as text, for per-client limits and logs."""
        address = self.address(scope)
        return UNKNOWN_CLIENT if address is None else str(address)
