"""When a tokenless call to a "local" route counts as one of the shop PC's own programs.

Coming from `[api] trusted_networks` is not enough: a web page open in the shop PC's
browser can post to 127.0.0.1 (a form, or a `no-cors` fetch, needs no CORS preflight), and
a rebinding DNS name can point a page's own host name at this machine. So the call is
refused without the token when it carries
- an `Origin` not in `[api] cors_origins` (browsers add Origin to every cross-site POST),
- a body that is not JSON (a page can only send JSON cross-site after a preflight, which
  the CORS layer answers only for listed origins), or
- a `Host` that is not one of this machine's names or an IP address (a rebinding name is
  a name, never an address).
The seed's own programs (curl, Python requests, a Node script) send JSON to
localhost or an address, with no Origin.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers

from daemon.api.clients import Address, Network, within

JSON_TYPES = ("application/json",)


def machine_names(
    extra_urls: Iterable[str] = (), extra_hosts: Iterable[str] = ()
) -> frozenset[str]:
    """This machine's own host names, lower case, for the Host check."""
    names = {"localhost"}
    hostname = socket.gethostname().lower()
    if hostname:
        names |= {hostname, hostname + ".local"}
    with contextlib.suppress(OSError):
        names.add(socket.getfqdn().lower())
    names |= {host.strip().lower() for host in extra_hosts if host.strip()}
    for url in extra_urls:
        host = urlsplit(url).hostname if url else None
        if host:
            names.add(host.lower())
    return frozenset(names)


@dataclass(frozen=True)
class LocalCallers:
    """The rule for tokenless calls to the local routes."""

    networks: tuple[Network, ...]
    origins: frozenset[str]
    names: frozenset[str]

    def refusal(self, address: Address | None, headers: Headers) -> str | None:
        """Why this call needs the token after all, or None when it may go without."""
        if not within(address, self.networks):
            return "it does not come from [api] trusted_networks"
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") not in self.origins:
            return f"sent from a web page ({_shown(origin)}), not listed in [api] cors_origins"
        kind = headers.get("content-type", "").partition(";")[0].strip().lower()
        if _has_body(headers) and kind not in JSON_TYPES and not kind.endswith("+json"):
            return "the body is not JSON (Content-Type: application/json)"
        host = headers.get("host")
        if host is not None and not self._is_this_machine(host):
            return f"the Host header ({_shown(host)}) is not a name of this machine"
        return None

    def _is_this_machine(self, host: str) -> bool:
        name = _hostname(host)
        if name in self.names or name.endswith(".localhost"):
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


def _has_body(headers: Headers) -> bool:
    # No body at all carries no message: the route answers it with 400, as the seed did.
    length = headers.get("content-length", "").strip()
    return "transfer-encoding" in headers or (length != "" and length != "0")


def _hostname(host: str) -> str:
    """ "example.com:8765" -> "example.com"; "[::1]:8765" -> "::1"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _shown(text: str) -> str:
    # Only printable ASCII, and not too much of it: the value came from the network.
    cleaned = "".join(ch if " " <= ch <= "~" else "?" for ch in text[:80])
    return cleaned + ("..." if len(text) > 80 else "")
