"""The TGTG consumer API on the daemon's shared httpx client: login, refresh, favourites, orders.

Paths, bodies and answers follow ahivert/tgtg-python (`tgtg` 0.19.0, tgtg/__init__.py), the
client most TGTG tools run on; docs/tgtg.md says what each is and where it comes from. Every
call is a POST with a JSON body, paths joined to a base URL ending in "/". Before an account's
first call, and again after a DataDome challenge, the account gets a `datadome` cookie from
DataDome's SDK endpoint (datadome.py).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from providers.retry_after import parse_retry_after
from providers.tgtg.app_version import AppVersion
from providers.tgtg.cookies import DATADOME, CookieJar
from providers.tgtg.datadome import DataDomeSdk, is_challenge
from providers.tgtg.errors import (
    TgtgBlocked,
    TgtgError,
    TgtgLoginError,
    TgtgOrderRefused,
    TgtgRateLimited,
    TgtgUnauthorized,
)

if TYPE_CHECKING:
    import httpx

DEFAULT_BASE_URL = "https://apptoogoodtogo.com/api/"
# The reference's three Android templates, one picked at random per client.
USER_AGENTS = (
    "TGTG/{0} Dalvik/2.1.0 (Linux; U; Android 9; Nexus 5 Build/M4B30Z)",
    "TGTG/{0} Dalvik/2.1.0 (Linux; U; Android 10; SM-G935F Build/NRD90M)",
    "TGTG/{0} Dalvik/2.1.0 (Linux; Android 12; SM-G920V Build/MMB29K)",
)
AUTH_BY_EMAIL = "auth/v5/authByEmail"
AUTH_BY_POLLING = "auth/v5/authByRequestPollingId"
AUTH_BY_PIN = "auth/v5/authByRequestPin"
REFRESH = "token/v1/refresh"
BUCKET = "discover/v1/bucket"
# One item alone (`item/v8/<item_id>`, body {"origin": null}): one request however many
# favourites the account has, so a sales-window poll costs one slot of the budget.
ITEM = "item/v8/{0}"
SHARE_URL = "https://share.toogoodtogo.com/item/{0}"
# Orders (ref CREATE_ORDER_ENDPOINT, ABORT_ORDER_ENDPOINT, ORDER_STATUS_ENDPOINT): create is
# "order/v8/create/" joined with the item id, body {"item_count": n}; abort sends
# {"cancel_reason_id": 1}; both answer {"state": "SUCCESS", ...} when done, another state
# when not (ref create_order, abort_order). docs/tgtg.md, "Orders".
CREATE_ORDER = "order/v8/create/{0}"
ABORT_ORDER = "order/v8/{0}/abort"
ORDER_STATUS = "order/v8/{0}/status"
ORDER_DONE = "SUCCESS"
# The reference refreshes the access token when 4 hours have passed since the last refresh
# (DEFAULT_ACCESS_TOKEN_LIFETIME), whatever lifetime TGTG states.
ACCESS_TOKEN_LIFETIME_SECONDS = 4 * 3600
# The favourites bucket pages from 0 (the reference's get_favorites: page=0). The reference
# asks 50 a page and reads one page; a user of it got only 20 favourites back (issue #356),
# so the server serves at most 20: ask for 20 and page on until a page comes back shorter.
FIRST_PAGE = 0
PAGE_SIZE = 20
MAX_PAGES = 50


@dataclass(frozen=True, slots=True)
class Tokens:
    """An account's tokens and cookies; the refresh token rotates, so store it each time."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    # The account's whole Cookie header (DataDome's cookie among them), None with none.
    cookie: str | None = field(default=None, repr=False)
    # A lifetime TGTG stated with the tokens, when it did (the recorded answers do not).
    ttl_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class LoginStarted:
    """authByEmail's answer: the polling id the PIN or the link trades for tokens, and the
    cookies the login's next calls must send (same device)."""

    polling_id: str = field(repr=False)
    cookie: str | None = field(repr=False)


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


@dataclass(frozen=True, slots=True)
class Order:
    """An order TGTG made: `state` "RESERVED" until paid, aborted or expired (ref README,
    "Create an order" and "Get the status of an order")."""

    order_id: str
    item_id: str
    state: str
    quantity: int
    reserved_at: datetime | None
    total_minor: int | None = None
    currency: str | None = None


OnRotate = Callable[[Tokens], Awaitable[None]]
# Called with the account's whole Cookie header ("" for none) when an answer or DataDome's
# SDK changed it, so the caller can persist it with the account.
OnCookie = Callable[[str], Awaitable[None]]


class _Session:
    """One account's cookies during one call of ours (ours, not httpx's jar: one client
    serves every account and a shared jar would mix their DataDome cookies)."""

    def __init__(self, cookie: str | None, on_cookie: OnCookie | None) -> None:
        self.jar = CookieJar.parse(cookie)
        self._on_cookie = on_cookie

    async def set(self, jar: CookieJar) -> None:
        if jar == self.jar:
            return
        self.jar = jar
        if self._on_cookie is not None:
            await self._on_cookie(jar.header() or "")

    async def take(self, response: httpx.Response) -> None:
        await self.set(self.jar.with_cookies(response.headers.get_list("set-cookie")))


class TgtgClient:
    """One client per daemon; accounts pass their own tokens and cookies to each call.

    `http()` gives the daemon's shared httpx client; it is asked for at the first request, so
    a daemon with no TGTG account never builds one. Without `datadome` no cookie is asked of
    DataDome's SDK (a stand-in TGTG); without `app_version` the built-in version is claimed.
    """

    def __init__(
        self,
        http: Callable[[], httpx.AsyncClient],
        *,
        base_url: str = DEFAULT_BASE_URL,
        language: str = "en-GB",
        user_agent: str | None = None,
        timeout: float = 20.0,
        datadome: DataDomeSdk | None = None,
        app_version: AppVersion | None = None,
    ) -> None:
        if not base_url.endswith("/"):
            raise ValueError(f"the TGTG base URL must end in '/', got {base_url!r}")
        self._http = http
        self.base_url = base_url
        self._language = language
        self._fixed_agent = user_agent
        self._template = random.choice(USER_AGENTS)
        self._version = app_version or AppVersion()
        self._correlation_id = str(uuid.uuid4())
        self._timeout = timeout
        self._datadome = datadome
        # Requests to TGTG (what its per-IP limit counts), and to DataDome's SDK apart.
        self.requests = 0
        self.datadome_requests = 0

    @property
    def user_agent(self) -> str:
        return self._fixed_agent or self._template.format(self._version.known)

    # -- login ---------------------------------------------------------------------------------

    async def auth_by_email(
        self, email: str, cookie: str | None = None, on_cookie: OnCookie | None = None
    ) -> LoginStarted:
        """Start the e-mail login: TGTG mails a PIN and a link."""
        session = _Session(cookie, on_cookie)
        body = {"device_type": "ANDROID", "email": email}
        response = await self._post(session, AUTH_BY_EMAIL, body)
        self._raise_for(response, login=True)
        answer = _json(response)
        state = answer.get("state")
        if state == "TERMS":
            raise TgtgLoginError(200, f"no TGTG account for {email} (sign up in the app first)")
        if state != "WAIT" or not answer.get("polling_id"):
            raise TgtgLoginError(200, f"unexpected login state {state!r}")
        return LoginStarted(str(answer["polling_id"]), session.jar.header())

    async def auth_by_polling(
        self,
        email: str,
        polling_id: str,
        cookie: str | None = None,
        on_cookie: OnCookie | None = None,
    ) -> Tokens | None:
        """None while the user has not clicked the link in the e-mail (202), else the tokens."""
        session = _Session(cookie, on_cookie)
        body = {"device_type": "ANDROID", "email": email, "request_polling_id": polling_id}
        response = await self._post(session, AUTH_BY_POLLING, body)
        if response.status_code == 202:
            return None
        self._raise_for(response, login=True)
        return _tokens(response, session.jar)

    async def auth_by_pin(
        self,
        email: str,
        polling_id: str,
        pin: str,
        cookie: str | None = None,
        on_cookie: OnCookie | None = None,
    ) -> Tokens:
        """Trade the PIN from the login e-mail for tokens."""
        session = _Session(cookie, on_cookie)
        body = {
            "device_type": "ANDROID",
            "email": email,
            "request_pin": pin,
            "request_polling_id": polling_id,
        }
        response = await self._post(session, AUTH_BY_PIN, body)
        self._raise_for(response, login=True)
        return _tokens(response, session.jar)

    async def refresh(self, tokens: Tokens, on_cookie: OnCookie | None = None) -> Tokens:
        """New tokens; the old refresh token is spent, the caller must persist the new one."""
        return await self._refresh(_Session(tokens.cookie, on_cookie), tokens)

    async def _refresh(self, session: _Session, tokens: Tokens) -> Tokens:
        response = await self._post(session, REFRESH, {"refresh_token": tokens.refresh_token})
        self._raise_for(response)
        return _tokens(response, session.jar)

    # -- data ----------------------------------------------------------------------------------

    async def favorites(
        self, tokens: Tokens, on_rotate: OnRotate, on_cookie: OnCookie | None = None
    ) -> tuple[list[Observation], Tokens]:
        """Every favourite, a page at a time; a 401 refreshes (persisted through `on_rotate`)
        and retries that page once. Returns the items and the tokens in use at the end."""
        observations: list[Observation] = []
        session = _Session(tokens.cookie, on_cookie)
        for page in range(FIRST_PAGE, FIRST_PAGE + MAX_PAGES):
            body = {
                "origin": {"latitude": 0.0, "longitude": 0.0},
                "radius": 21,
                "paging": {"page": page, "size": PAGE_SIZE},
                "bucket": {"filler_type": "Favorites"},
            }
            answer, tokens = await self._with_refresh(session, tokens, on_rotate, BUCKET, body)
            bucket = answer.get("mobile_bucket") or {}
            items = [item for item in bucket.get("items") or [] if isinstance(item, dict)]
            observations.extend(parse_item(item) for item in items)
            if len(items) < PAGE_SIZE:
                break
        return observations, _with_cookie(tokens, session.jar)

    async def item(
        self,
        tokens: Tokens,
        item_id: str,
        on_rotate: OnRotate,
        on_cookie: OnCookie | None = None,
    ) -> tuple[Observation, Tokens]:
        """One item alone (any item, not only favourites), with the same 401 handling."""
        session = _Session(tokens.cookie, on_cookie)
        path = ITEM.format(item_id)
        answer, tokens = await self._with_refresh(
            session, tokens, on_rotate, path, {"origin": None}
        )
        return parse_item(answer), _with_cookie(tokens, session.jar)

    async def create_order(
        self,
        tokens: Tokens,
        item_id: str,
        on_rotate: OnRotate,
        on_cookie: OnCookie | None = None,
        *,
        count: int = 1,
    ) -> tuple[Order, Tokens]:
        """Reserve `count` bags of the item on this account (unpaid: the account's owner pays
        in the app). TgtgOrderRefused when TGTG says no (sold out, already reserved, ...)."""
        session = _Session(tokens.cookie, on_cookie)
        path = CREATE_ORDER.format(item_id)
        answer, tokens = await self._with_refresh(
            session, tokens, on_rotate, path, {"item_count": count}
        )
        state = str(answer.get("state") or "")
        if state != ORDER_DONE:
            raise TgtgOrderRefused(state or "no state")
        order = answer.get("order")
        if not isinstance(order, dict) or not order.get("id"):
            raise TgtgError(200, "no order in the answer")
        return parse_order(order), _with_cookie(tokens, session.jar)

    async def order_status(
        self,
        tokens: Tokens,
        order_id: str,
        on_rotate: OnRotate,
        on_cookie: OnCookie | None = None,
    ) -> tuple[str, Tokens]:
        """The order's state ("RESERVED" while it is held unpaid)."""
        session = _Session(tokens.cookie, on_cookie)
        # The reference posts no body; ours is the empty object every other call would send.
        answer, tokens = await self._with_refresh(
            session, tokens, on_rotate, ORDER_STATUS.format(order_id), {}
        )
        return str(answer.get("state") or ""), _with_cookie(tokens, session.jar)

    async def abort_order(
        self,
        tokens: Tokens,
        order_id: str,
        on_rotate: OnRotate,
        on_cookie: OnCookie | None = None,
    ) -> Tokens:
        """Give an unpaid order up (the app's call before payment, ref README "Abort an
        order"). TgtgOrderRefused when it is no longer open (expired, paid, aborted)."""
        session = _Session(tokens.cookie, on_cookie)
        answer, tokens = await self._with_refresh(
            session, tokens, on_rotate, ABORT_ORDER.format(order_id), {"cancel_reason_id": 1}
        )
        state = str(answer.get("state") or "")
        if state != ORDER_DONE:
            raise TgtgOrderRefused(state or "no state")
        return _with_cookie(tokens, session.jar)

    async def _with_refresh(
        self,
        session: _Session,
        tokens: Tokens,
        on_rotate: OnRotate,
        path: str,
        body: dict[str, Any],
    ) -> tuple[dict[str, Any], Tokens]:
        response = await self._post(session, path, body, access=tokens.access_token)
        if response.status_code == 401:
            # TGTG invalidates access tokens at random; the app refreshes and repeats the call.
            tokens = await self._refresh(session, tokens)
            await on_rotate(tokens)
            response = await self._post(session, path, body, access=tokens.access_token)
        self._raise_for(response)
        return _json(response), tokens

    # -- transport -----------------------------------------------------------------------------

    def headers(self, access: str | None = None, cookie: str | None = None) -> dict[str, str]:
        """The Android app's headers (the reference's `_headers`)."""
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
        self, session: _Session, path: str, body: dict[str, Any], *, access: str | None = None
    ) -> httpx.Response:
        """One call with DataDome's cookie: asked for first when the account has none; on a
        DataDome challenge the account's cookies are dropped, a fresh one asked for and the
        call made once more (the reference's `_post`). A second 403 is for the caller."""
        url = self.base_url + path
        await self._version.get(self._http())
        if not session.jar.has(DATADOME):
            await self._fresh_datadome(session, url)
        response = await self._send(url, body, access, session)
        if is_challenge(response):
            await session.set(CookieJar())
            await self._fresh_datadome(session, url)
            response = await self._send(url, body, access, session)
        return response

    async def _fresh_datadome(self, session: _Session, url: str) -> None:
        if self._datadome is None:
            return
        self.datadome_requests += 1
        cookie = await self._datadome.cookie(
            self._http(),
            request_url=url,
            user_agent=self.user_agent,
            app_version=self._version.known,
        )
        if cookie is not None:
            await session.set(session.jar.with_cookies([cookie]))

    async def _send(
        self, url: str, body: dict[str, Any], access: str | None, session: _Session
    ) -> httpx.Response:
        # httpx is loaded with the shared client, on the first call (daemon/runtime/http_client.py).
        import httpx

        self.requests += 1
        try:
            response = await self._http().post(
                url,
                json=body,
                headers=self.headers(access, session.jar.header()),
                timeout=self._timeout,
            )
        except httpx.TimeoutException:
            raise TgtgRateLimited(0, f"no answer within {self._timeout:.0f}s") from None
        except httpx.HTTPError as exc:
            raise TgtgRateLimited(0, f"{type(exc).__name__}: {exc}") from None
        # A block still sets cookies (DataDome's among them): keep them either way.
        await session.take(response)
        return response

    @staticmethod
    def _raise_for(response: httpx.Response, *, login: bool = False) -> None:
        status = response.status_code
        if status == 200:
            return
        text = response.text[:200]
        if status == 401:
            raise TgtgUnauthorized(status, text or "unauthorized")
        if status == 403:
            what = "a DataDome captcha" if is_challenge(response) else "not DataDome's"
            raise TgtgBlocked(status, f"blocked ({what}: {text[:80]})")
        if status == 429 or status >= 500:
            raise TgtgRateLimited(
                status, "too many requests" if status == 429 else text, _retry_after(response)
            )
        if login:
            raise TgtgLoginError(status, text or "login refused")
        raise TgtgError(status, text)


def parse_item(envelope: dict[str, Any]) -> Observation:
    """One favourites envelope as an Observation (missing keys are tolerated)."""
    item = envelope.get("item") or {}
    store = envelope.get("store") or {}
    item_id = str(item.get("item_id") or envelope.get("item_id") or "")
    price = item.get("item_price") or item.get("price_including_taxes") or {}
    minor = price.get("minor_units")
    interval = envelope.get("pickup_interval") or {}
    # A single item's sharing_url is the app's download page, not the item's
    # (`https://share.toogoodtogo.com/download?locale=fr-FR` in the reference's README,
    # "Get an item"): only a link naming the item is used.
    shared = str(envelope.get("sharing_url") or "")
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
        sharing_url=shared if "/item/" in shared else SHARE_URL.format(item_id),
        next_sales_window=_time(envelope.get("next_sales_window_purchase_start")),
    )


def parse_order(order: dict[str, Any]) -> Order:
    """The `order` of a create answer (ref README, "Create an order")."""
    line = order.get("order_line") or {}
    total = line.get("total_price_including_taxes") or {}
    minor = total.get("minor_units")
    return Order(
        order_id=str(order.get("id") or ""),
        item_id=str(order.get("item_id") or ""),
        state=str(order.get("state") or ""),
        quantity=int(line.get("quantity") or 1),
        reserved_at=_time(order.get("reserved_at")),
        total_minor=minor if isinstance(minor, int) else None,
        currency=total.get("code"),
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


def _tokens(response: httpx.Response, jar: CookieJar) -> Tokens:
    """A token answer: `{access_token, refresh_token}` at the top (login, refresh) or under
    `login_response` (sign-up), with the account's cookies after it."""
    body = _json(response)
    body = body.get("login_response") or body
    if not body.get("access_token") or not body.get("refresh_token"):
        raise TgtgError(response.status_code, "no tokens in the answer")
    ttl = body.get("access_token_ttl_seconds")
    return Tokens(
        access_token=str(body["access_token"]),
        refresh_token=str(body["refresh_token"]),
        cookie=jar.header(),
        ttl_seconds=ttl if isinstance(ttl, int) else None,
    )


def _with_cookie(tokens: Tokens, jar: CookieJar) -> Tokens:
    return replace(tokens, cookie=jar.header())


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))
