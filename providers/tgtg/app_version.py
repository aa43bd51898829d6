"""Which TGTG app version the client claims in its user agent: the one configured, else the
current one on Google Play (looked up once a process), else the last one found, else a
built-in one.

The lookup follows ahivert/tgtg-python tgtg/google_play_scraper.py: the app's Play page
(`com.app.tgtg`, `hl=en&gl=US`) carries its data in an `AF_initDataCallback({key: 'ds:5', ...
data: <JSON>, sideChannel: ...})` script, and the version string is at
`data[1][2][140][0][0][0]`. DataDome refuses app versions it thinks too old, which is why the
version is looked up rather than pinned (marklagendijk/node-toogoodtogo-watcher pull request
#257, which made the same change for the same reason).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

PLAY_URL = "https://play.google.com/store/apps/details?id=com.app.tgtg&hl=en&gl=US"
# The newest version a reference user's lookup printed ("Using version 26.6.21",
# ahivert/tgtg-python issue #396, 2026-06-30); the reference's own fallback, 24.11.0, dates
# from 2024.
FALLBACK = "26.6.21"
_DATA = re.compile(r"AF_initDataCallback\(\{key:\s*'ds:5'.*?data:(.*?), sideChannel:", re.DOTALL)
_PATH = (1, 2, 140, 0, 0, 0)
_VERSION = re.compile(r"\d+(\.\d+)+")


def version_from_play_page(html: str) -> str:
    """The version on the Play page; ValueError when the page is not as expected."""
    found = _DATA.search(html)
    if found is None:
        raise ValueError("no ds:5 data on the page")
    node: Any = json.loads(found.group(1))
    try:
        for index in _PATH:
            node = node[index]
    except (IndexError, KeyError, TypeError):
        raise ValueError("the ds:5 data has no version where it used to be") from None
    if not isinstance(node, str) or not _VERSION.fullmatch(node):
        raise ValueError(f"{node!r} is not a version")
    return node


class AppVersion:
    """The version to claim, found once (a lock keeps concurrent first calls to one lookup).

    `override`: the configured version ("" to look it up). `lookup_url`: the Play page (""
    for no lookup). `remember`: a file keeping the last version found, the fallback when a
    later lookup fails (None: the built-in FALLBACK only). `timeout`: for the lookup.
    """

    def __init__(
        self,
        *,
        override: str = "",
        lookup_url: str = "",
        remember: Path | None = None,
        timeout: float = 20.0,
    ) -> None:
        self._override = override.strip()
        self._timeout = timeout
        self._url = lookup_url
        self._remember = remember
        self._found: str | None = self._override or (None if lookup_url else FALLBACK)
        self._lock = asyncio.Lock()

    @property
    def known(self) -> str:
        """The version in use, or the fallback before the lookup ran."""
        return self._found or FALLBACK

    async def get(self, http: httpx.AsyncClient) -> str:
        if self._found is not None:
            return self._found
        async with self._lock:
            if self._found is None:
                self._found = await self._look_up(http)
        return self._found

    async def _look_up(self, http: httpx.AsyncClient) -> str:
        import httpx

        try:
            response = await http.get(self._url, timeout=self._timeout, follow_redirects=True)
            response.raise_for_status()
            version = version_from_play_page(response.text)
        except (httpx.HTTPError, ValueError) as exc:
            kept = await asyncio.to_thread(self._read)
            log.warning(
                "tgtg: could not look up the app's version (%s); using %s", exc, kept or FALLBACK
            )
            return kept or FALLBACK
        log.info("tgtg: the app's current version is %s", version)
        await asyncio.to_thread(self._write, version)
        return version

    def _read(self) -> str | None:
        if self._remember is None:
            return None
        try:
            text = self._remember.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text if _VERSION.fullmatch(text) else None

    def _write(self, version: str) -> None:
        if self._remember is None:
            return
        try:
            self._remember.write_text(version + "\n", encoding="utf-8")
        except OSError as exc:
            log.warning("tgtg: cannot keep the app version in %s: %s", self._remember, exc)
