"""The TUI's client of the daemon's HTTP API: one method per call, records out, failures in
plain words. Every URL the TUI uses is a `Route` below; screens never see one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

import httpx

from tui.records import (
    Categories,
    Category,
    DailyTotals,
    Favorite,
    Favorites,
    Health,
    LoggedMessage,
    MessageHistory,
    MessagePage,
    MessageQuery,
    MessageSent,
    NamedProduct,
    NewProduct,
    Order,
    OrderPage,
    OtpSent,
    Product,
    ProductAnswer,
    ProductDetails,
    ProductPage,
    PushSent,
    PushToken,
    PushTokens,
    RecipientPage,
    RecordError,
    SentReport,
    Stats,
    StoredReport,
    StoredReports,
    Subscriber,
    SubscriberAnswer,
    SubscriberDetails,
    SubscriberPage,
    TgtgAccount,
    TgtgAccounts,
    TgtgAnswer,
    parse,
)

TIMEOUT_SECONDS = 10.0


class Unreachable(Exception):
    """The daemon did not answer at all (not running, wrong address, network down)."""

    def __init__(self, url: str, reason: str, *, refused: bool = False) -> None:
        super().__init__(f"cannot reach the daemon at {url}: {reason}")
        self.url = url
        self.reason = reason
        # The connection itself failed: nothing listens there, so a local daemon is not running
        # (a timeout is something else: a daemon that is there but stuck).
        self.refused = refused


class ApiError(Exception):
    """The daemon answered with an error; `message` is its plain-words explanation."""

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []

    @property
    def fields(self) -> dict[str, str]:
        """Field name (without the `body.`/`query.` prefix) → the rule it broke."""
        out: dict[str, str] = {}
        for error in self.errors:
            name = str(error.get("field", "")).split(".", 1)[-1]
            out[name] = str(error.get("rule", ""))
        return out


R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Route(Generic[R]):
    """One call of the API: its method, its path (with `{name}` holes), the record its answer
    is read into (None: the answer is not read), and the names of the query parameters and
    JSON body fields the client may send. The client refuses to send any other name, so the
    contract test that holds routes against /api/openapi.json holds the requests too."""

    method: str
    path: str
    answer: type[R] | None
    query: tuple[str, ...] = ()
    sends: tuple[str, ...] = ()

    @property
    def call(self) -> str:
        """How the call is named in an error: "GET /api/v1/stats"."""
        return f"{self.method} {self.path}"


HEALTH = Route("GET", "/api/health", Health)
# The smallest authenticated read: it proves the token (health answers without one).
TOKEN_CHECK: Route[None] = Route("GET", "/api/v1/messages", None, query=("limit",))
STATS = Route("GET", "/api/v1/stats", Stats)
TGTG_ACCOUNTS = Route("GET", "/api/v1/tgtg/accounts", TgtgAccounts)

MESSAGE_QUERY = ("status", "channel", "kind", "recipient", "since", "until")
MESSAGES = Route("GET", "/api/v1/messages", MessagePage, query=("limit", "before", *MESSAGE_QUERY))
MESSAGE = Route("GET", "/api/v1/messages/{message_id}", MessageHistory)
RETRY_MESSAGE = Route("POST", "/api/v1/messages/{message_id}/retry", MessageHistory)
CANCEL_MESSAGE = Route("POST", "/api/v1/messages/{message_id}/cancel", MessageHistory)
SEND_SMS = Route("POST", "/api/v1/messages", MessageSent, sends=("to", "body", "idempotency_key"))
SEND_PUSH = Route(
    "POST", "/api/v1/notifications", PushSent, sends=("tokens", "topic", "title", "body")
)

SUBSCRIBER_FIELDS = ("name", "phone", "email", "channels", "watch_items")
SUBSCRIBERS = Route("GET", "/api/v1/subscribers", SubscriberPage, query=("limit", "after", "q"))
# The same list, read for picking recipients: who, their phone, whether they opted out.
RECIPIENTS = Route("GET", "/api/v1/subscribers", RecipientPage, query=("limit", "after"))
SUBSCRIBER = Route("GET", "/api/v1/subscribers/{subscriber_id}", SubscriberAnswer)
ADD_SUBSCRIBER = Route("POST", "/api/v1/subscribers", SubscriberAnswer, sends=SUBSCRIBER_FIELDS)
EDIT_SUBSCRIBER = Route(
    "PATCH",
    "/api/v1/subscribers/{subscriber_id}",
    SubscriberAnswer,
    sends=(*SUBSCRIBER_FIELDS, "opted_out", "verified"),
)
DELETE_SUBSCRIBER: Route[None] = Route("DELETE", "/api/v1/subscribers/{subscriber_id}", None)
FAVORITES = Route("GET", "/api/v1/tgtg/favorites", Favorites, query=("subscriber_id",))
PUSH_TOKENS = Route("GET", "/api/v1/push-tokens", PushTokens, query=("subscriber_id", "limit"))
# Sent with an empty body: TGTG mails the PIN to the subscriber's own e-mail address.
TGTG_LOGIN = Route("POST", "/api/v1/subscribers/{subscriber_id}/tgtg/login", TgtgAnswer)
TGTG_PIN = Route("POST", "/api/v1/subscribers/{subscriber_id}/tgtg/pin", TgtgAnswer, sends=("pin",))
SEND_OTP = Route("POST", "/api/send-otp", OtpSent, sends=("phone", "purpose"))
VERIFY_OTP: Route[None] = Route("POST", "/api/verify-otp", None, sends=("phone", "otp", "purpose"))

PRODUCT_FIELDS = ("name", "sku", "brand", "category")
PRODUCTS = Route(
    "GET", "/api/v1/products", ProductPage, query=("page", "per_page", "search", "category")
)
CATEGORIES = Route("GET", "/api/v1/products/categories", Categories)
PRODUCT = Route("GET", "/api/v1/products/{product_id}", ProductAnswer)
# The same product, read for its name only (an order's lines).
PRODUCT_NAME = Route("GET", "/api/v1/products/{product_id}", NamedProduct)
ADD_PRODUCT = Route(
    "POST", "/api/v1/products", ProductAnswer, sends=(*PRODUCT_FIELDS, "price", "stock")
)
EDIT_PRODUCT = Route(
    "PATCH", "/api/v1/products/{product_id}", ProductAnswer, sends=(*PRODUCT_FIELDS, "price")
)
ADJUST_STOCK = Route("POST", "/api/v1/products/{product_id}/stock", ProductAnswer, sends=("delta",))

ORDERS = Route("GET", "/api/v1/orders", OrderPage, query=("limit", "offset"))
REPORTS = Route("GET", "/api/v1/reports", StoredReports, query=("limit",))
DAILY_TOTALS = Route("GET", "/api/v1/reports/daily-totals", DailyTotals, query=("days",))
SEND_REPORT = Route("POST", "/api/v1/reports/send", SentReport, sends=("kind", "date"))

# Every call the TUI makes, for the contract test that holds each against /api/openapi.json.
ROUTES: tuple[Route[Any], ...] = (
    HEALTH,
    TOKEN_CHECK,
    STATS,
    TGTG_ACCOUNTS,
    MESSAGES,
    MESSAGE,
    RETRY_MESSAGE,
    CANCEL_MESSAGE,
    SEND_SMS,
    SEND_PUSH,
    SUBSCRIBERS,
    RECIPIENTS,
    SUBSCRIBER,
    ADD_SUBSCRIBER,
    EDIT_SUBSCRIBER,
    DELETE_SUBSCRIBER,
    FAVORITES,
    PUSH_TOKENS,
    TGTG_LOGIN,
    TGTG_PIN,
    SEND_OTP,
    VERIFY_OTP,
    PRODUCTS,
    CATEGORIES,
    PRODUCT,
    PRODUCT_NAME,
    ADD_PRODUCT,
    EDIT_PRODUCT,
    ADJUST_STOCK,
    ORDERS,
    REPORTS,
    DAILY_TOTALS,
    SEND_REPORT,
)


class ApiClient:
    """One daemon, one token, one connection pool; create once, close once.

    Tests pass `transport` (an httpx transport) to answer from canned data.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=timeout,
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    # -- the daemon and the dashboard ------------------------------------------------------

    async def health(self) -> Health:
        """The daemon's health with every component's detail (the token is sent)."""
        return await self._call(HEALTH)

    async def check_token(self) -> None:
        """Raise ApiError(401) when the daemon refuses the token."""
        await self._send(TOKEN_CHECK, query={"limit": 1})

    async def stats(self) -> Stats:
        return await self._call(STATS)

    async def tgtg_accounts(self) -> tuple[TgtgAccount, ...]:
        return (await self._call(TGTG_ACCOUNTS)).accounts

    # -- messages ---------------------------------------------------------------------------

    async def messages(
        self, *, limit: int, before: int | None = None, query: MessageQuery | None = None
    ) -> MessagePage:
        """Newest first; `before` (an id) pages back; `query` says which (None: all)."""
        q = query or MessageQuery()
        params = {
            "limit": limit,
            "status": q.status,
            "channel": q.channel,
            "kind": q.kind,
            "recipient": q.recipient,
            "since": q.since.isoformat() if q.since else None,
            "until": q.until.isoformat() if q.until else None,
            "before": before,
        }
        return await self._call(MESSAGES, query=params)

    async def message(self, message_id: int) -> MessageHistory:
        return await self._call(MESSAGE, {"message_id": message_id})

    async def retry_message(self, message_id: int) -> LoggedMessage:
        return (await self._call(RETRY_MESSAGE, {"message_id": message_id})).message

    async def cancel_message(self, message_id: int) -> LoggedMessage:
        return (await self._call(CANCEL_MESSAGE, {"message_id": message_id})).message

    async def send_sms(
        self, to: str, body: str, *, idempotency_key: str | None = None
    ) -> MessageSent:
        """Queue an SMS; with a key used before, nothing new is queued (`created` False)."""
        payload: dict[str, object] = {"to": to, "body": body}
        if idempotency_key is not None:
            payload["idempotency_key"] = idempotency_key
        return await self._call(SEND_SMS, body=payload)

    async def push_to_tokens(
        self, tokens: Sequence[str], body: str, *, title: str | None = None
    ) -> PushSent:
        payload = {"tokens": list(tokens), "title": title, "body": body}
        return await self._call(SEND_PUSH, body=payload)

    async def push_to_topic(self, topic: str, body: str, *, title: str | None = None) -> PushSent:
        return await self._call(SEND_PUSH, body={"topic": topic, "title": title, "body": body})

    # -- subscribers ------------------------------------------------------------------------

    async def subscribers(self, *, limit: int, after: int = 0, search: str = "") -> SubscriberPage:
        """By id from `after`; `search` is matched by the daemon on name, e-mail and phone."""
        query = {"limit": limit, "after": after, "q": search}
        return await self._call(SUBSCRIBERS, query=query)

    async def recipients(self, *, limit: int, after: int | None = None) -> RecipientPage:
        """Subscribers by id from `after` (None: the first page), for picking recipients."""
        return await self._call(RECIPIENTS, query={"limit": limit, "after": after})

    async def subscriber(self, subscriber_id: int) -> SubscriberAnswer:
        """The subscriber with their TGTG login."""
        return await self._call(SUBSCRIBER, {"subscriber_id": subscriber_id})

    async def add_subscriber(self, details: SubscriberDetails) -> Subscriber:
        payload = _subscriber_body(details, editing=False)
        return (await self._call(ADD_SUBSCRIBER, body=payload)).subscriber

    async def edit_subscriber(self, subscriber_id: int, details: SubscriberDetails) -> Subscriber:
        return await self._edit_subscriber(subscriber_id, _subscriber_body(details, editing=True))

    async def set_opted_out(self, subscriber_id: int, opted_out: bool) -> Subscriber:
        return await self._edit_subscriber(subscriber_id, {"opted_out": opted_out})

    async def mark_verified(self, subscriber_id: int) -> Subscriber:
        return await self._edit_subscriber(subscriber_id, {"verified": True})

    async def _edit_subscriber(self, subscriber_id: int, payload: dict[str, object]) -> Subscriber:
        holes = {"subscriber_id": subscriber_id}
        return (await self._call(EDIT_SUBSCRIBER, holes, body=payload)).subscriber

    async def delete_subscriber(self, subscriber_id: int) -> None:
        """Their TGTG login, favourites and push tokens go too."""
        await self._send(DELETE_SUBSCRIBER, {"subscriber_id": subscriber_id})

    async def favorites(self, subscriber_id: int) -> tuple[Favorite, ...]:
        query = {"subscriber_id": subscriber_id}
        return (await self._call(FAVORITES, query=query)).favorites

    async def push_tokens(self, subscriber_id: int, *, limit: int) -> tuple[PushToken, ...]:
        query = {"subscriber_id": subscriber_id, "limit": limit}
        return (await self._call(PUSH_TOKENS, query=query)).tokens

    async def start_tgtg_login(self, subscriber_id: int) -> TgtgAccount:
        """TGTG mails the subscriber (at their own e-mail address) a PIN."""
        holes = {"subscriber_id": subscriber_id}
        return (await self._call(TGTG_LOGIN, holes, body={})).account

    async def enter_tgtg_pin(self, subscriber_id: int, pin: str) -> TgtgAccount:
        holes = {"subscriber_id": subscriber_id}
        return (await self._call(TGTG_PIN, holes, body={"pin": pin})).account

    async def send_otp(self, phone: str, purpose: str) -> OtpSent:
        return await self._call(SEND_OTP, body={"phone": phone, "purpose": purpose})

    async def verify_otp(self, phone: str, code: str, purpose: str) -> None:
        """Raise ApiError (field `otp`) when the code is wrong or expired."""
        await self._send(VERIFY_OTP, body={"phone": phone, "otp": code, "purpose": purpose})

    # -- products ---------------------------------------------------------------------------

    async def products(
        self,
        *,
        page: int = 1,
        per_page: int = 50,
        search: str | None = None,
        category: str | None = None,
    ) -> ProductPage:
        query = {"page": page, "per_page": per_page, "search": search, "category": category}
        return await self._call(PRODUCTS, query=query)

    async def categories(self) -> tuple[Category, ...]:
        return (await self._call(CATEGORIES)).categories

    async def product(self, product_id: int) -> ProductAnswer:
        """One product and its price history."""
        return await self._call(PRODUCT, {"product_id": product_id})

    async def product_name(self, product_id: int) -> str:
        return (await self._call(PRODUCT_NAME, {"product_id": product_id})).product.name

    async def add_product(self, product: NewProduct) -> Product:
        payload = {
            **_product_body(product.details),
            "price": product.price,
            "stock": product.stock,
        }
        return (await self._call(ADD_PRODUCT, body=payload)).product

    async def edit_product(self, product_id: int, details: ProductDetails) -> Product:
        """Name, SKU, brand and category; price and stock have their own calls."""
        return await self._edit_product(product_id, _product_body(details))

    async def change_price(self, product_id: int, price: str) -> Product:
        """The daemon keeps the old price in the product's history."""
        return await self._edit_product(product_id, {"price": price})

    async def _edit_product(self, product_id: int, payload: dict[str, object]) -> Product:
        holes = {"product_id": product_id}
        return (await self._call(EDIT_PRODUCT, holes, body=payload)).product

    async def adjust_stock(self, product_id: int, delta: int | str) -> Product:
        """Add `delta` (remove, when negative); text is sent as typed for the daemon to refuse."""
        holes = {"product_id": product_id}
        return (await self._call(ADJUST_STOCK, holes, body={"delta": delta})).product

    # -- orders and reports -----------------------------------------------------------------

    async def orders(self, *, limit: int, offset: int = 0) -> tuple[Order, ...]:
        """Newest first."""
        page = await self._call(ORDERS, query={"limit": limit, "offset": offset})
        return page.orders

    async def reports(self, *, limit: int) -> tuple[StoredReport, ...]:
        """The reports made, newest first."""
        return (await self._call(REPORTS, query={"limit": limit})).reports

    async def daily_totals(self, *, days: int) -> DailyTotals:
        return await self._call(DAILY_TOTALS, query={"days": days})

    async def send_report(self, kind: str, day: date | None = None) -> SentReport:
        """Make a report now (of the period with `day`, or the last whole one) and queue it to
        its recipients."""
        payload: dict[str, object] = {"kind": kind}
        if day is not None:
            payload["date"] = day.isoformat()
        return await self._call(SEND_REPORT, body=payload)

    # -- the wire ---------------------------------------------------------------------------

    async def _call(
        self,
        route: Route[R],
        holes: Mapping[str, object] | None = None,
        *,
        query: Mapping[str, object] | None = None,
        body: Mapping[str, object] | None = None,
    ) -> R:
        """Send `route` and read its answer into its record; RecordError when it does not fit."""
        if route.answer is None:
            raise TypeError(f"{route.call} has no answer record: use _send")
        answer = await self._request(route, holes, query, body)
        try:
            return parse(route.answer, answer)
        except RecordError as exc:
            raise exc.answering(route.call) from None

    async def _send(
        self,
        route: Route[None],
        holes: Mapping[str, object] | None = None,
        *,
        query: Mapping[str, object] | None = None,
        body: Mapping[str, object] | None = None,
    ) -> None:
        """Send `route`, whose answer the TUI does not read."""
        await self._request(route, holes, query, body)

    async def _request(
        self,
        route: Route[Any],
        holes: Mapping[str, object] | None,
        query: Mapping[str, object] | None,
        body: Mapping[str, object] | None,
    ) -> object:
        """One request; the decoded JSON answer, or ApiError / Unreachable."""
        _declared(route, "query parameter", query or {}, route.query)
        _declared(route, "body field", body or {}, route.sends)
        path = route.path.format(**(holes or {}))
        try:
            response = await self._http.request(
                route.method, path, json=body, params=_query(query or {})
            )
        except httpx.ConnectError:
            raise Unreachable(self.url, "nothing answers there", refused=True) from None
        except httpx.TimeoutException:
            raise Unreachable(self.url, "it did not answer in time") from None
        except httpx.HTTPError as exc:
            raise Unreachable(self.url, type(exc).__name__) from None
        try:
            answer: object = response.json()
        except ValueError:
            answer = {"message": response.text[:200]}
        if response.status_code >= 400:
            error = answer if isinstance(answer, dict) else {}
            message = error.get("message") or f"HTTP {response.status_code}"
            raise ApiError(response.status_code, str(message), error.get("errors"))
        return answer


def _declared(
    route: Route[Any], what: str, given: Mapping[str, object], names: tuple[str, ...]
) -> None:
    # A name a route does not declare would escape the contract test: refuse to send it.
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"{route.call} does not declare the {what}(s) {', '.join(unknown)}")


def _query(params: Mapping[str, object]) -> dict[str, Any]:
    """Drop unset parameters; booleans as the API reads them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or value == "":
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def _product_body(details: ProductDetails) -> dict[str, object]:
    body: dict[str, object] = {"name": details.name}
    if details.sku:
        body["sku"] = details.sku
    body["brand"] = details.brand or None
    body["category"] = details.category or None
    return body


def _subscriber_body(details: SubscriberDetails, *, editing: bool) -> dict[str, object]:
    body: dict[str, object] = {}
    for name, value in (("name", details.name), ("phone", details.phone), ("email", details.email)):
        if value or editing:
            body[name] = value or None
    body["channels"] = list(details.channels)
    if details.watch_items is not None:
        body["watch_items"] = list(details.watch_items)
    return body
