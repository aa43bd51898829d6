"""The daemon's one shared HTTP client: every HTTP provider and TGTG account use it."""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from daemon import __version__

TIMEOUT_SECONDS = 20.0


def build_http_client(timeout: float = TIMEOUT_SECONDS) -> httpx.AsyncClient:
    """A pooled client that keeps no cookies.

    One client serves every provider and every TGTG account: a shared cookie jar would send
    one account's cookies (DataDome's) with another account's requests. Clients that need
    cookies keep them per account themselves (providers/tgtg/client.py).
    """
    return httpx.AsyncClient(
        timeout=timeout,
        headers={"User-Agent": f"shopbell/{__version__}"},
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=())),
    )
