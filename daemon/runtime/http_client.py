"""The daemon's one shared HTTP client: every HTTP provider and TGTG account use it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from daemon import __version__

if TYPE_CHECKING:
    import httpx

TIMEOUT_SECONDS = 20.0


def build_http_client(timeout: float = TIMEOUT_SECONDS) -> httpx.AsyncClient:
    """A pooled client that keeps no cookies.

    One client serves every provider and every TGTG account: a shared cookie jar would send
    one account's cookies (DataDome's) with another account's requests. Clients that need
    cookies keep them per account themselves (providers/tgtg/client.py).
    """
    # Imported here, not at the top: see SharedHttp (the cookie jar brings urllib.request).
    from http.cookiejar import CookieJar, DefaultCookiePolicy

    import httpx

    return httpx.AsyncClient(
        timeout=timeout,
        headers={"User-Agent": f"shopbell/{__version__}"},
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=())),
    )


class SharedHttp:
    """The shared client, built by the first call: `http()` is the client.

    A daemon with no HTTP provider and no TGTG login never needs one, and building it costs
    about 3 MiB of resident memory for good (httpx, its TLS context and the CA bundle;
    bench/idle_memory.py), which a small Raspberry Pi running only the modem keeps.
    """

    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def __call__(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = build_http_client(self._timeout)
        return self._client

    @property
    def built(self) -> bool:
        """Whether a caller has needed the client yet."""
        return self._client is not None

    async def aclose(self) -> None:
        """Close the client if it was built; a later call builds a new one."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
