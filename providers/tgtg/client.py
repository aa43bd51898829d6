"""The TGTG consumer API on the daemon's shared httpx client: login, refresh, favourites.

Shapes and paths follow docs/tgtg.md (ahivert/tgtg-python 0.19 and TGTG Scanner 1.24):
every call is a POST with a JSON body; paths are joined relative to a base URL ending in "/".
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from providers.tgtg.errors import (
    TgtgBlocked,
    TgtgError,
    TgtgLoginError,
    TgtgRateLimited,
    TgtgUnauthorized,
)

if TYPE_CHECKING:
    import httpx

from providers.retry_after import parse_retry_after

DEFAULT_BASE_URL = "https://apptoogoodtogo.com/api/"
APK_VERSION = "24.11.0"
# The three Android templates the clients pick from at random.
USER_AGENTS = (
    "TGTG/{0} Dalvik/2.1.0 (Linux; U; Android 9; Nexus 5 Build/M4B30Z)",
    "TGTG/{0} Dalvik/2.1.0 (Linux; U; Android 10; SM-G935F Build/NRD90M)",
    "TGTG/{0} Dalvik/2.1.0 (Linux; Android 12; SM-G920V Build/MMB29K)",
)
AUTH_BY_EMAIL = "auth/v5/authByEmail"
AUTH_BY_POLLING = "auth/v5/authByRequestPollingId"
AUTH_BY_PIN = "auth/v5/authByRequestPin"
REFRESH = "token/v1/refresh"
ITEMS = "item/v8/"
# One item alone (`item/v8/<item_id>`, body {"origin": null}): one request however many
# favourites the account has, so a sales-window poll costs one slot of the budget.
ITEM = "item/v8/{0}"
SHARE_URL = "https://share.toogoodtogo.com/item/{0}"
PAGE_SIZE = 100
MAX_PAGES = 20


@dataclass(frozen=True, slots=True)
class Tokens:
    """What a login or a refresh returns; the refresh token rotates, so store it each time."""

    access_token: str
    refresh_token: str
    ttl_seconds: int | None
    # The raw Set-Cookie values, re-sent as a Cookie header (what ahivert's client does).
    cookie: str | None


@dataclass(frozen=True, slots=True)
class Observation:
    """One item as one favourites call saw it."""

    item_id: str
    store_name: str
    display_name: str
    items_available: int
    pickup_start: datetime | None
    pickup_end: datetime | None
    price_minor: int | None
    price_decimals: int
    currency: str | None
    store_time_zone: str | None
    sharing_url: str
    # When TGTG announced the next sales window opens (single-item calls, some list calls).
    next_sales_window: datetime | None = None


Credentials = tuple[str, str, str | None]  # access token, refresh token, cookie
OnRotate = Callable[[Tokens], Awaitable[None]]
# Called with the account's whole Cookie header when an answer set a new cookie (DataDome
# sets `datadome` on any answer, a 403 included; sending it back is what keeps a device
# trusted), so the caller can persist it with the account.
OnCookie = Callable[[str], Awaitable[None]]


class TgtgClient:
    """One client per daemon; accounts pass their own tokens to each call.

    `http()` gives the daemon's shared httpx client; it is asked for at the first request, so
    a daemon with no TGTG account never builds one.
    """

    def __init__(
        self,
        http: Callable[[], httpx.AsyncClient],
        *,
        base_url: str = DEFAULT_BASE_URL,
        language: str = "en-GB",
        user_agent: str | None = None,
        timeout: float = 20.0,
    ) -> None:
        if not base_url.endswith("/"):
            raise ValueError(f"the TGTG base URL must end in '/', got {base_url!r}")
        self._http = http
        self.base_url = base_url
        self._language = language
        self.user_agent = user_agent or random.choice(USER_AGENTS).format(APK_VERSION)
        self._correlation_id = str(uuid.uuid4())
        self._timeout = timeout
        self.requests = 0

    # -- login ---------------------------------------------------------------------------------

    async def auth_by_email(self, email: str) -> str:
        """Start the e-mail login; the polling id that the PIN or the polling trades for tokens."""
        response = await self._post(AUTH_BY_EMAIL, {"device_type": "ANDROID", "email": email})
        self._raise_for(response, login=True)
        body = _json(response)
        state = body.get("state")
        if state == "TERMS":
            raise TgtgLoginError(200, f"no TGTG account for {email} (sign up in the app first)")
        if state != "WAIT" or not body.get("polling_id"):
            raise TgtgLoginError(200, f"unexpected login state {state!r}")
        return str(body["polling_id"])

    async def auth_by_polling(self, email: str, polling_id: str) -> Tokens | None:
        """None while the user has not clicked the link in the e-mail (202), else the tokens."""
        response = await self._post(
            AUTH_BY_POLLING,
            {"device_type": "ANDROID", "email": email, "request_polling_id": polling_id},
        )
        if response.status_code == 202:
            return None
        self._raise_for(response, login=True)
        return _tokens(response)

    async def auth_by_pin(self, email: str, polling_id: str, pin: str) -> Tokens:
        """Trade the PIN from the login e-mail for tokens."""
        response = await self._post(
            AUTH_BY_PIN,
            {
                "device_type": "ANDROID",
                "email": email,
                "request_pin": pin,
                "request_polling_id": polling_id,
            },
        )
        self._raise_for(response, login=True)
        return _tokens(response)

    async def refresh(self, refresh_token: str, cookie: str | None) -> Tokens:
        """New tokens; the old refresh token is spent, the caller must persist the new one.
        The cookies it sets are merged into the ones the account had."""
        response = await self._post(REFRESH, {"refresh_token": refresh_token}, cookie=cookie)
        self._raise_for(response)
        tokens = _tokens(response)
        return _with_cookie(tokens, merge_cookies(cookie, response))

    # -- data ----------------------------------------------------------------------------------

    async def favorites(
        self, credentials: Credentials, on_rotate: OnRotate, on_cookie: OnCookie | None = None
    ) -> tuple[list[Observation], Credentials]:
        """Every favourite, paged; a 401 refreshes (persisted through `on_rotate`) and retries
        the page once. Returns the items and the credentials in use at the end."""
        observations: list[Observation] = []
        jar = _Jar(credentials, on_cookie)
        for page in range(1, MAX_PAGES + 1):
            items = await self._with_refresh(
                jar, on_rotate, lambda c, p=page: self._favorites_page(jar, c, p)
            )
            observations.extend(parse_item(item) for item in items)
            if len(items) < PAGE_SIZE:
                break
        return observations, jar.credentials

    async def item(
        self,
        credentials: Credentials,
        item_id: str,
        on_rotate: OnRotate,
        on_cookie: OnCookie | None = None,
    ) -> tuple[Observation, Credentials]:
        """One item alone (any item, not only favourites), with the same 401 handling."""
        jar = _Jar(credentials, on_cookie)
        [envelope] = await self._with_refresh(jar, on_rotate, lambda c: self._item(jar, c, item_id))
        return parse_item(envelope), jar.credentials

    async def _item(
        self, jar: _Jar, credentials: Credentials, item_id: str
    ) -> list[dict[str, Any]]:
        response = await self._post(
            ITEM.format(item_id), {"origin": None}, access=credentials[0], cookie=credentials[2]
        )
        await jar.take(response)
        self._raise_for(response)
        return [_json(response)]

    async def _favorites_page(
        self, jar: _Jar, credentials: Credentials, page: int
    ) -> list[dict[str, Any]]:
        body = {
            "origin": {"latitude": 0.0, "longitude": 0.0},
            "radius": 21,
            "page_size": PAGE_SIZE,
            "page": page,
            "discover": False,
            "favorites_only": True,
            "item_categories": [],
            "diet_categories": [],
            "pickup_earliest": None,
            "pickup_latest": None,
            "search_phrase": None,
            "with_stock_only": False,
            "hidden_only": False,
            "we_care_only": False,
        }
        response = await self._post(ITEMS, body, access=credentials[0], cookie=credentials[2])
        await jar.take(response)
        self._raise_for(response)
        items = _json(response).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    async def _with_refresh(
        self,
        jar: _Jar,
        on_rotate: OnRotate,
        call: Callable[[Credentials], Awaitable[list[dict[str, Any]]]],
    ) -> list[dict[str, Any]]:
        try:
            return await call(jar.credentials)
        except TgtgUnauthorized:
            tokens = await self.refresh(jar.credentials[1], jar.credentials[2])
            await on_rotate(tokens)
            jar.credentials = (tokens.access_token, tokens.refresh_token, tokens.cookie)
            return await call(jar.credentials)

    # -- transport -----------------------------------------------------------------------------

    def headers(self, access: str | None = None, cookie: str | None = None) -> dict[str, str]:
        headers = {
            "accept": "application/json",
            "Accept-Encoding": "gzip",
            "accept-language": self._language,
            "content-type": "application/json; charset=utf-8",
            "user-agent": self.user_agent,
            "x-correlation-id": self._correlation_id,
        }
        if access:
            headers["authorization"] = f"Bearer {access}"
        if cookie:
            headers["cookie"] = cookie
        return headers

    async def _post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        access: str | None = None,
        cookie: str | None = None,
    ) -> httpx.Response:
        # httpx is loaded with the shared client, on the first call (daemon/runtime/http_client.py).
        import httpx

        self.requests += 1
        try:
            return await self._http().post(
                self.base_url + path,
                json=body,
                headers=self.headers(access, cookie),
                timeout=self._timeout,
            )
        except httpx.TimeoutException:
            raise TgtgRateLimited(0, f"no answer within {self._timeout:.0f}s") from None
        except httpx.HTTPError as exc:
            raise TgtgRateLimited(0, f"{type(exc).__name__}: {exc}") from None

    @staticmethod
    def _raise_for(response: httpx.Response, *, login: bool = False) -> None:
        status = response.status_code
        if status == 200:
            return
        text = response.text[:200]
        if status == 401:
            raise TgtgUnauthorized(status, text or "unauthorized")
        if status == 403:
            raise TgtgBlocked(status, "blocked by DataDome (captcha)")
        if status == 429 or status >= 500:
            raise TgtgRateLimited(
                status, "too many requests" if status == 429 else text, _retry_after(response)
            )
        if login:
            raise TgtgLoginError(status, text or "login refused")
        raise TgtgError(status, text)


class _Jar:
    """The credentials of one call, the cookie updated from every answer (ours, since one
    client serves every account and httpx's own jar would mix their cookies)."""

    def __init__(self, credentials: Credentials, on_cookie: OnCookie | None) -> None:
        self.credentials = credentials
        self._on_cookie = on_cookie

    async def take(self, response: httpx.Response) -> None:
        merged = merge_cookies(self.credentials[2], response)
        if merged is None or merged == self.credentials[2]:
            return
        self.credentials = (self.credentials[0], self.credentials[1], merged)
        if self._on_cookie is not None:
            await self._on_cookie(merged)


def merge_cookies(cookie: str | None, response: httpx.Response) -> str | None:
    """The Cookie header `cookie` with the answer's Set-Cookie values put in (by name; only
    name=value is kept, as a client sends it)."""
    pairs: dict[str, str] = {}
    for part in (cookie or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            pairs[name] = value
    for header in response.headers.get_list("set-cookie"):
        name, sep, value = header.split(";", 1)[0].strip().partition("=")
        if sep and name:
            pairs[name] = value
    return "; ".join(f"{name}={value}" for name, value in pairs.items()) or None


def parse_item(envelope: dict[str, Any]) -> Observation:
    """One favourites envelope as an Observation (missing keys are tolerated)."""
    item = envelope.get("item") or {}
    store = envelope.get("store") or {}
    item_id = str(item.get("item_id") or envelope.get("item_id") or "")
    price = item.get("item_price") or item.get("price_including_taxes") or {}
    minor = price.get("minor_units")
    interval = envelope.get("pickup_interval") or {}
    return Observation(
        item_id=item_id,
        store_name=str(store.get("store_name") or envelope.get("display_name") or ""),
        display_name=str(envelope.get("display_name") or store.get("store_name") or ""),
        items_available=max(0, int(envelope.get("items_available") or 0)),
        pickup_start=_time(interval.get("start")),
        pickup_end=_time(interval.get("end")),
        price_minor=int(minor) if isinstance(minor, int) else None,
        price_decimals=int(price.get("decimals") or 2),
        currency=price.get("code"),
        store_time_zone=store.get("store_time_zone"),
        sharing_url=str(envelope.get("sharing_url") or SHARE_URL.format(item_id)),
        next_sales_window=_time(envelope.get("next_sales_window_purchase_start")),
    )


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise TgtgError(response.status_code, "the answer is not JSON") from None
    if not isinstance(body, dict):
        raise TgtgError(response.status_code, "the answer is not a JSON object")
    return body


def _tokens(response: httpx.Response) -> Tokens:
    body = _json(response)
    body = body.get("login_response") or body
    if not body.get("access_token") or not body.get("refresh_token"):
        raise TgtgError(response.status_code, "no tokens in the answer")
    cookies = response.headers.get_list("set-cookie")
    cookie = "; ".join(c.split(";", 1)[0] for c in cookies) or None
    ttl = body.get("access_token_ttl_seconds")
    return Tokens(
        access_token=str(body["access_token"]),
        refresh_token=str(body["refresh_token"]),
        ttl_seconds=int(ttl) if isinstance(ttl, int) else None,
        cookie=cookie,
    )


def _with_cookie(tokens: Tokens, cookie: str | None) -> Tokens:
    return Tokens(tokens.access_token, tokens.refresh_token, tokens.ttl_seconds, cookie)


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))
