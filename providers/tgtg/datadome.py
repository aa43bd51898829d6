"""DataDome, TGTG's bot protection: asking its SDK endpoint for a `datadome` cookie, as the
Android app's DataDome SDK does, and telling its challenge from other 403s.

Facts from ahivert/tgtg-python tgtg/__init__.py (`_fetch_datadome_cookie`, 0.19.0): the SDK
endpoint takes a form-encoded POST describing the device and the API call about to be made,
and answers JSON `{"status": 200, "cookie": "datadome=<value>; Max-Age=...; ..."}`; the cookie
string is a Set-Cookie value. docs/tgtg.md, "DataDome", has the whole flow.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from providers.tgtg.cookies import DATADOME

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

SDK_URL = "https://api-sdk.datadome.co/sdk/"
# The TGTG app's DataDome key: the same value is the `hash=` of every captcha URL users post
# (ahivert/tgtg-python issues #247, #396).
DDK = "1D42C2CA6131C526E09F294FE96F94"
DDV = "3.0.4"
# The client id is 120 characters of this alphabet (the reference's `_generate_datadome_cid`).
CID_ALPHABET = string.ascii_letters + string.digits + "~_"
CID_LENGTH = 120
# The device the reference describes: a Pixel 7 Pro on Android 14.
DEVICE = {
    "camera": json.dumps({"auth": "true", "info": '{"front":"2000x1500","back":"5472x3648"}'}),
    "inte": "android-java-okhttp",
    "mdl": "Pixel 7 Pro",
    "os": "Android",
    "osn": "UPSIDE_DOWN_CAKE",
    "osr": "14",
    "osv": "34",
    "screen_d": "3.5",
    "screen_x": "1440",
    "screen_y": "3120",
}
# What a DataDome challenge names: `{"url": "https://geo.captcha-delivery.com/captcha/..."}`
# or `.../interstitial/...` as JSON (issues #241, #247, #396), or an HTML page whose script
# sets `'host':'geo.captcha-delivery.com'` (issue #205). A 403 without it (CloudFront's
# "Request blocked" page, issue #110) is not DataDome's, and a new cookie does not lift it.
CHALLENGE_HOST = "captcha-delivery.com"


def is_challenge(response: httpx.Response) -> bool:
    """A 403 that is DataDome asking for a (new) device cookie."""
    return response.status_code == 403 and CHALLENGE_HOST in response.text


@dataclass(frozen=True, slots=True)
class DataDomeSdk:
    """Where to ask for a cookie, the clock for the SDK's event stamp, and how long to wait
    (the reference waits 10 s)."""

    url: str
    now: Callable[[], datetime]
    timeout: float = 10.0

    async def cookie(
        self,
        http: httpx.AsyncClient,
        *,
        request_url: str,
        user_agent: str,
        app_version: str,
    ) -> str | None:
        """A fresh `datadome=...` Set-Cookie value for a call to `request_url`, or None when
        the SDK gave none (the call then goes without, as the reference's does)."""
        # httpx is loaded with the shared client, on the first call (daemon/runtime/http_client.py).
        import httpx

        stamp = int(self.now().timestamp() * 1000)
        events = [{"id": 1, "message": "response validation", "source": "sdk", "date": stamp}]
        form = {
            **DEVICE,
            "cid": "".join(secrets.choice(CID_ALPHABET) for _ in range(CID_LENGTH)),
            "ddk": DDK,
            "ddv": DDV,
            "ddvc": app_version,
            "events": json.dumps(events, separators=(",", ":")),
            "request": request_url,
            "ua": user_agent,
        }
        headers = {
            "Accept": "*/*",
            "User-Agent": user_agent,
            # The reference also offers br; httpx decodes it only with brotli installed.
            "Accept-Encoding": "gzip, deflate",
        }
        try:
            response = await http.post(self.url, data=form, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            log.warning("tgtg: no DataDome cookie (%s: %s)", type(exc).__name__, exc)
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        good = isinstance(body, dict) and response.status_code == 200 and body.get("status") == 200
        cookie = body.get("cookie") if good else None
        if not isinstance(cookie, str) or f"{DATADOME}=" not in cookie:
            log.warning("tgtg: DataDome's SDK gave no cookie (HTTP %d)", response.status_code)
            return None
        return cookie
