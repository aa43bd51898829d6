"""A fake Too Good To Go API on 127.0.0.1: login (polling and PIN), rotating refresh tokens,
favourites with paging, the error bodies seen in the wild, and a control API.

    with TgtgPeer() as peer:
        peer.add_account("ana@example.com")
        peer.add_item("774625", store="Bakery Blue", count=0, favorite_of="ana@example.com")
        client = TgtgClient(lambda: http, base_url=peer.base_url)
        ...
        peer.set_count("774625", 3)          # or POST /control/items/774625 {"items_available": 3}
        peer.script(Fault.too_many(retry_after="7"), times=1)
        peer.script(Fault.captcha(), match="item/v8", times=1)

Shapes follow docs/tgtg.md. `match` is a part of the path; the server thread, `script` and
`received` come from tests/peers/_http.py.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.peers._http import HttpPeer, PeerHandler

PIN = "123456"
UNAUTHORIZED = {"timestamp": "", "status": 401, "error": "Unauthorized", "path": ""}
DATADOME = {
    "url": "https://geo.captcha-delivery.com/captcha/?initialCid=AHrlqAAAAAMA&cid=x"
    "&referer=https%3A%2F%2Fapptoogoodtogo.com%2Fapi%2Fitem%2Fv8%2F&hash=H&t=fe&s=1&e=e"
}


@dataclass(frozen=True, slots=True)
class Fault:
    """What the fake answers instead, with the body TGTG sends for it: its Unauthorized JSON
    for 401, a DataDome captcha (and a datadome cookie) for 403, no body for the rest."""

    status: int
    retry_after: str | None = None

    @classmethod
    def unauthorized(cls) -> Fault:
        """401: TGTG's random refusals of a valid access token."""
        return cls(401)

    @classmethod
    def captcha(cls) -> Fault:
        """403 from DataDome: a captcha to solve instead of the answer."""
        return cls(403)

    @classmethod
    def too_many(cls, retry_after: str | None = None) -> Fault:
        return cls(429, retry_after)

    @classmethod
    def server_error(cls, status: int = 503) -> Fault:
        return cls(status)


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int
    at: float


@dataclass
class _Item:
    item_id: str
    store: str
    count: int
    favorite_of: set[str]
    price_minor: int = 399
    currency: str = "EUR"
    time_zone: str = "Europe/Paris"
    sales_window: str | None = None


@dataclass
class _Account:
    email: str
    confirmed: bool = False
    polling_ids: set[str] = field(default_factory=set)
    access: set[str] = field(default_factory=set)
    refresh: str | None = None


class TgtgPeer(HttpPeer[Received, Fault]):
    """The fake; its attributes are read and changed by tests from any thread."""

    def __init__(self, *, port: int = 0) -> None:
        super().__init__(_Handler, port=port)
        self.accounts: dict[str, _Account] = {}
        self.items: dict[str, _Item] = {}
        self.spent_refresh_tokens: set[str] = set()
        # When set, every item answer carries `Set-Cookie: datadome=<value>` (DataDome renews
        # its cookie on ordinary answers too).
        self.datadome: str | None = None

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api/"

    # -- control -------------------------------------------------------------------------------

    def add_account(self, email: str) -> None:
        with self._lock:
            self.accounts[email] = _Account(email)

    def add_item(
        self, item_id: str, *, store: str, count: int = 0, favorite_of: str | None = None
    ) -> None:
        with self._lock:
            owners = {favorite_of} if favorite_of else set()
            self.items[item_id] = _Item(item_id, store, count, owners)

    def favorite(self, email: str, item_id: str) -> None:
        with self._lock:
            self.items[item_id].favorite_of.add(email)

    def set_count(self, item_id: str, count: int) -> None:
        with self._lock:
            self.items[item_id].count = count

    def set_price(self, item_id: str, price_minor: int) -> None:
        with self._lock:
            self.items[item_id].price_minor = price_minor

    def unfavorite(self, email: str, item_id: str) -> None:
        """The user removes the item from the favourites in the app."""
        with self._lock:
            self.items[item_id].favorite_of.discard(email)

    def set_sales_window(self, item_id: str, start: str | None) -> None:
        """Announce the item's next sales window (`next_sales_window_purchase_start`)."""
        with self._lock:
            self.items[item_id].sales_window = start

    def confirm(self, email: str) -> None:
        """The user clicks the link in the login e-mail: polling now answers 200."""
        with self._lock:
            self.accounts[email].confirmed = True

    def expire_access_tokens(self) -> None:
        """Every access token is invalid from now on (TGTG's random 401s)."""
        with self._lock:
            for account in self.accounts.values():
                account.access.clear()

    def requests_to(self, fragment: str) -> list[Received]:
        """The requests whose path contains `fragment` (as `match` picks them)."""
        return [r for r in self.received if fragment in r.path]

    # -- the server ----------------------------------------------------------------------------

    def _answer(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        with self._lock:
            if path.startswith("/control/items/"):
                self.items[path.rsplit("/", 1)[1]].count = int(body["items_available"])
                return 200, {"ok": True}, []
            fault = self._take_fault(lambda match: match in path)
            if fault is not None:
                return _fault_answer(fault, path)
            if path == "/api/auth/v5/authByEmail":
                return self._by_email(body)
            if path == "/api/auth/v5/authByRequestPollingId":
                return self._by_polling(body)
            if path == "/api/auth/v5/authByRequestPin":
                return self._by_pin(body)
            if path == "/api/token/v1/refresh":
                return self._refresh(body)
            if path in ("/api/item/v8/", "/api/item/v9/"):
                return self._with_datadome(self._items(body, headers, path))
            if re.fullmatch(r"/api/item/v[89]/[^/]+", path):
                return self._with_datadome(self._item(headers, path))
            return 404, {"type": "about:blank", "title": "Not Found", "status": 404}, []

    def _by_email(self, body: dict[str, Any]) -> tuple[int, Any, list[tuple[str, str]]]:
        account = self.accounts.get(body.get("email", ""))
        if account is None:
            return 200, {"state": "TERMS"}, []
        polling_id = str(uuid.uuid4())
        account.polling_ids.add(polling_id)
        return 200, {"state": "WAIT", "polling_id": polling_id}, []

    def _by_polling(self, body: dict[str, Any]) -> tuple[int, Any, list[tuple[str, str]]]:
        account = self.accounts.get(body.get("email", ""))
        if account is None or body.get("request_polling_id") not in account.polling_ids:
            return 400, {"errors": [{"code": "INVALID_POLLING_ID"}]}, []
        if not account.confirmed:
            return 202, None, []
        return self._issue(account)

    def _by_pin(self, body: dict[str, Any]) -> tuple[int, Any, list[tuple[str, str]]]:
        account = self.accounts.get(body.get("email", ""))
        if account is None or body.get("request_polling_id") not in account.polling_ids:
            return 400, {"errors": [{"code": "INVALID_POLLING_ID"}]}, []
        if body.get("request_pin") != PIN:
            return 400, {"errors": [{"code": "WRONG_PIN"}]}, []
        return self._issue(account)

    def _issue(self, account: _Account) -> tuple[int, Any, list[tuple[str, str]]]:
        access = "at-" + uuid.uuid4().hex
        if account.refresh:
            self.spent_refresh_tokens.add(account.refresh)
        account.refresh = "rt-" + uuid.uuid4().hex
        account.access.add(access)
        cookie = f"datadome={uuid.uuid4().hex[:12]}; Max-Age=31536000; Path=/; Secure"
        payload = {
            "access_token": access,
            "refresh_token": account.refresh,
            "access_token_ttl_seconds": 172800,
        }
        return 200, payload, [("Set-Cookie", cookie)]

    def _refresh(self, body: dict[str, Any]) -> tuple[int, Any, list[tuple[str, str]]]:
        for account in self.accounts.values():
            if account.refresh and body.get("refresh_token") == account.refresh:
                return self._issue(account)
        return 401, {**UNAUTHORIZED, "path": "/api/token/v1/refresh"}, []

    def _with_datadome(
        self, answer: tuple[int, Any, list[tuple[str, str]]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        if self.datadome is None:
            return answer
        status, payload, headers = answer
        cookie = f"datadome={self.datadome}; Max-Age=31536000; Path=/; Secure; SameSite=Lax"
        return status, payload, [*headers, ("Set-Cookie", cookie)]

    def _owner(self, headers: dict[str, str]) -> _Account | None:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        return next((a for a in self.accounts.values() if token in a.access), None)

    def _item(self, headers: dict[str, str], path: str) -> tuple[int, Any, list[tuple[str, str]]]:
        """One item alone, as `item/v8/<id>` answers: the envelope plus sharing_url."""
        if self._owner(headers) is None:
            return 401, {**UNAUTHORIZED, "path": path}, []
        item = self.items.get(path.rsplit("/", 1)[1])
        if item is None:
            return 404, {"type": "about:blank", "title": "Not Found", "status": 404}, []
        share = f"https://share.toogoodtogo.com/item/{item.item_id}"
        return 200, _envelope(item) | {"sharing_url": share}, []

    def _items(
        self, body: dict[str, Any], headers: dict[str, str], path: str
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        owner = self._owner(headers)
        if owner is None:
            return 401, {**UNAUTHORIZED, "path": path}, []
        size = int(body.get("page_size") or 20)
        page = int(body.get("page") or 1)
        mine = [i for i in sorted(self.items.values(), key=lambda i: i.item_id)]
        mine = [i for i in mine if owner.email in i.favorite_of]
        chunk = mine[(page - 1) * size : page * size]
        return 200, {"items": [_envelope(item) for item in chunk]}, []


class _Handler(PeerHandler[TgtgPeer]):
    def do_POST(self) -> None:
        peer = self.peer
        raw = self.read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        path = re.sub(r"/+", "/", self.path)
        status, payload, headers = peer._answer(path, body, dict(self.headers))
        peer._record(
            Received(
                path,
                body,
                {k.lower(): v for k, v in self.headers.items()},
                status,
                time.monotonic(),
            )
        )
        data = b"" if payload is None else json.dumps(payload).encode()
        content_type = [("Content-Type", "application/json")] if payload is not None else []
        self.send(status, data, [*headers, *content_type])


def _fault_answer(fault: Fault, path: str) -> tuple[int, Any, list[tuple[str, str]]]:
    extra = [("Retry-After", fault.retry_after)] if fault.retry_after else []
    if fault.status == 401:
        return 401, {**UNAUTHORIZED, "path": path}, extra
    if fault.status == 403:
        return 403, DATADOME, [*extra, ("Set-Cookie", "datadome=blocked; Path=/")]
    return fault.status, None, extra


def _envelope(item: _Item) -> dict[str, Any]:
    extra = {"next_sales_window_purchase_start": item.sales_window} if item.sales_window else {}
    return extra | {
        "item": {
            "item_id": item.item_id,
            "name": "",
            "item_price": {"code": item.currency, "minor_units": item.price_minor, "decimals": 2},
            "item_value": {
                "code": item.currency,
                "minor_units": item.price_minor * 3,
                "decimals": 2,
            },
        },
        "store": {
            "store_id": f"{item.item_id}s",
            "store_name": item.store,
            "store_time_zone": item.time_zone,
        },
        "display_name": f"{item.store} (Magic Bag)",
        "items_available": item.count,
        "pickup_interval": {"start": "2026-11-22T17:00:00Z", "end": "2026-11-22T17:30:00Z"},
        "favorite": True,
        "in_sales_window": item.count > 0,
        "item_type": "MAGIC_BAG",
        "item_tags": [] if item.count else [{"id": "SOLD_OUT", "short_text": "Sold out"}],
    }
