"""What the TUI reads from the daemon's API and what its forms send, as frozen records.

Each answer record names only the fields a screen, widget or modal reads; its field names are
the API's JSON keys, so `tests/tui/test_api_contract.py` can hold them against the daemon's
OpenAPI document. `parse` turns decoded JSON into a record and says in plain words which field
is missing or of the wrong kind. A field with a default may be absent from the answer (the
daemon leaves it out, or an older daemon does not have it yet); every other field is required.
Keys the TUI does not read are ignored, so a daemon may add fields freely.
"""

from __future__ import annotations

import functools
import types
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

R = TypeVar("R")


class RecordError(ValueError):
    """The daemon's answer does not have the shape this TUI reads (one of them is older)."""

    def __init__(self, where: str, problem: str, call: str = "") -> None:
        # `where` is the field as the answer nests it ("today.date", "hourly[3].count").
        self.where = where
        self.problem = problem
        self.call = call
        answer = f"the daemon's answer to {call}" if call else "the daemon's answer"
        what = f"{where} {problem}" if where else f"it {problem}"
        super().__init__(
            f"{answer} does not fit this version of the TUI: {what}. "
            "Run a TUI and a daemon of the same shopbell version."
        )

    def answering(self, call: str) -> RecordError:
        """The same error, naming the call whose answer it is about."""
        return RecordError(self.where, self.problem, call)


# -- GET /api/health ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """One provider of a channel."""

    state: str
    detail: str | None = ""


@dataclass(frozen=True, slots=True)
class OwnerAlert:
    """One open owner alert (the "owner" component's `open_alerts`)."""

    key: str | None = None
    subject: str | None = None
    raised_at: str | None = None


@dataclass(frozen=True, slots=True)
class QueueHealth:
    """One channel's queue (the "outbox" component's `queues`): its depth and how long it
    takes to send at the current rate (None: no provider is sending)."""

    waiting: int = 0
    rate_per_second: float | None = None
    eta_seconds: float | None = None
    max_queued: int = 0
    full: bool = False


@dataclass(frozen=True, slots=True)
class BudgetSpend:
    """A day's or a month's SMS segments against the cap; `money` at the configured price."""

    segments: int = 0
    limit: int = 0
    percent: float | None = None
    money: str | None = None


@dataclass(frozen=True, slots=True)
class BudgetHealth:
    """The spending cap (the "outbox" component's `budget`): off, ok, warn or spent."""

    state: str = "off"
    day: BudgetSpend | None = None
    month: BudgetSpend | None = None


@dataclass(frozen=True, slots=True)
class Component:
    """One component of the health answer; a channel lists its providers, the owner its
    alerts. Those are the component's own extra keys, which the API's schema leaves open."""

    # Read from the open part of the object (ComponentHealth allows extra keys): the contract
    # test cannot hold them against a schema, so each has a default.
    OPEN_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"providers", "open_alerts", "reachable", "queues", "budget"}
    )

    state: str
    # The daemon leaves a None detail out of the answer.
    detail: str | None = ""
    providers: dict[str, ProviderHealth] = field(default_factory=dict)
    open_alerts: tuple[OwnerAlert, ...] = ()
    reachable: bool = True
    queues: dict[str, QueueHealth] = field(default_factory=dict)
    budget: BudgetHealth | None = None


@dataclass(frozen=True, slots=True)
class Health:
    """GET /api/health. Without the token (or from a daemon that is starting) only the status
    may be there; the rest has defaults."""

    status: str
    version: str | None = None
    components: dict[str, Component] = field(default_factory=dict)
    uptime_seconds: float | None = None
    time: str | None = None


# -- GET /api/v1/stats ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shop:
    name: str
    currency: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Today:
    """Today's figures in the shop's time zone; `by_status` counts messages by their state."""

    date: str
    sent: int
    delivered: int
    failed: int
    by_status: dict[str, int]


@dataclass(frozen=True, slots=True)
class Hour:
    start: str
    count: int


@dataclass(frozen=True, slots=True)
class LastRun:
    started_at: str
    outcome: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    next_run_at: str | None
    last_run: LastRun | None


@dataclass(frozen=True, slots=True)
class Stats:
    """The shop, the outbox's queue by state, today's figures, the last 24 hours and the jobs."""

    shop: Shop
    queue: dict[str, int]
    today: Today
    hourly: tuple[Hour, ...]
    jobs: tuple[Job, ...]


# -- TGTG -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TgtgAccount:
    """A TGTG login as the API shows it (never its tokens)."""

    email: str
    state: str
    state_detail: str | None
    last_poll_at: str | None
    failures: int


@dataclass(frozen=True, slots=True)
class TgtgAccounts:
    accounts: tuple[TgtgAccount, ...]


@dataclass(frozen=True, slots=True)
class TgtgAnswer:
    """A subscriber's TGTG login after it was started or given its PIN."""

    account: TgtgAccount


@dataclass(frozen=True, slots=True)
class Favorite:
    """A watched TGTG item and the last count the watcher saw."""

    item_id: str
    store_name: str | None
    display_name: str | None
    items_available: int
    price_minor: int | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class Favorites:
    favorites: tuple[Favorite, ...]


# -- push tokens ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushToken:
    """A device's push token; only its `tail` is ever shown (a device's address is private)."""

    token: str
    platform: str | None
    valid: bool
    last_seen_at: str | None

    @property
    def tail(self) -> str:
        return self.token[-8:]


@dataclass(frozen=True, slots=True)
class PushTokens:
    tokens: tuple[PushToken, ...]


# -- subscribers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A subscriber as the subscribers mode shows and edits them; times as the API wrote them."""

    id: int
    name: str | None
    email: str | None
    phone: str | None
    channels: tuple[str, ...]
    opted_out_at: str | None
    verified_at: str | None
    # Older daemons have neither: a subscriber then watches every favourite, no price drops.
    watch_items: tuple[str, ...] = ()
    price_drop_alerts: bool = False
    reserve_by_reply: bool = False


@dataclass(frozen=True, slots=True)
class SubscriberPage:
    subscribers: tuple[Subscriber, ...]
    # Pass as ?after= for the next page; None: this was the last.
    next_after: int | None = None


@dataclass(frozen=True, slots=True)
class SubscriberAnswer:
    """One subscriber, with their TGTG login when they have one."""

    subscriber: Subscriber
    tgtg: TgtgAccount | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """A subscriber as the compose form picks them: who, the number, and whether they opted
    out (the daemon skips those)."""

    id: int
    name: str | None
    phone: str | None
    opted_out: bool


@dataclass(frozen=True, slots=True)
class RecipientPage:
    subscribers: tuple[Recipient, ...]
    next_after: int | None = None


@dataclass(frozen=True, slots=True)
class OtpSent:
    """A one-time code went out by SMS; it can be typed for this many seconds."""

    expires_in: int


# -- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    """One message of the log as the API shows it (times stay ISO text, as the API wrote them)."""

    id: int
    channel: str
    recipient: str
    body: str
    kind: str
    status: str
    attempts: int
    created_at: str
    subject: str | None = None
    provider: str | None = None
    last_error: str | None = None
    sent_at: str | None = None
    delivered_at: str | None = None
    segments: int | None = None
    encoding: str | None = None


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Which messages to list: empty text (or None) means any."""

    status: str = ""
    channel: str = ""
    kind: str = ""
    recipient: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: tuple[LoggedMessage, ...]
    # Pass as ?before= for the next (older) page; None: this was the last.
    next_before: int | None = None


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One state change: when, to what, through which provider, and why."""

    at: str
    state: str
    provider: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class MessageHistory:
    """A message and its events (also the answer to a retry or a cancel)."""

    message: LoggedMessage
    events: tuple[MessageEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageSent:
    """`created` is False when the idempotency key had been used: nothing new was queued."""

    created: bool
    message: LoggedMessage


@dataclass(frozen=True, slots=True)
class Notification:
    id: int


@dataclass(frozen=True, slots=True)
class PushOutcome:
    message_id: int


@dataclass(frozen=True, slots=True)
class PushSent:
    """A push notification and one outcome (one message) per device it went to."""

    notification: Notification
    outcomes: tuple[PushOutcome, ...]


# -- products ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Product:
    """A product as the API shows it to staff (price as text in the shop's currency)."""

    id: int
    sku: str
    name: str
    brand: str | None
    category: str | None
    price: str
    currency: str
    stock: int
    active: bool


@dataclass(frozen=True, slots=True)
class PriceChange:
    old_price_minor: int
    new_price_minor: int
    changed_at: str


@dataclass(frozen=True, slots=True)
class ProductAnswer:
    """One product, and its price history where the API tells it (GET of one product)."""

    product: Product
    price_changes: tuple[PriceChange, ...] | None = None


@dataclass(frozen=True, slots=True)
class ProductName:
    name: str


@dataclass(frozen=True, slots=True)
class NamedProduct:
    """One product read for its name only (an order's lines name their products)."""

    product: ProductName


@dataclass(frozen=True, slots=True)
class ProductPage:
    products: tuple[Product, ...]
    total: int
    pages: int


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    # How many products it has.
    products: int


@dataclass(frozen=True, slots=True)
class Categories:
    categories: tuple[Category, ...]


# -- orders and reports -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: int
    quantity: int
    unit_price: str
    line_total: str


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    status: str
    total: str
    total_minor: int
    currency: str
    created_at: str
    lines: tuple[OrderLine, ...]


@dataclass(frozen=True, slots=True)
class OrderPage:
    """Orders, newest first."""

    orders: tuple[Order, ...]


@dataclass(frozen=True, slots=True)
class StoredReport:
    id: int
    kind: str
    start: str
    end: str
    generated_at: str
    orders: int
    total: str


@dataclass(frozen=True, slots=True)
class StoredReports:
    reports: tuple[StoredReport, ...]


@dataclass(frozen=True, slots=True)
class DayTotal:
    day: str
    orders: int
    total: str
    total_minor: int


@dataclass(frozen=True, slots=True)
class DailyTotals:
    currency: str
    days: tuple[DayTotal, ...]


@dataclass(frozen=True, slots=True)
class SentReport:
    """The daemon's plain-words answer, and the ids of the messages it queued (none: stored
    only, no recipient is set)."""

    message: str
    queued: tuple[int, ...]


# -- what the forms send ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProductDetails:
    """The product form's text as typed: an empty SKU is left unset (the daemon keeps it, or
    makes one up for a new product); an empty brand or category clears it."""

    name: str
    sku: str = ""
    brand: str = ""
    category: str = ""


@dataclass(frozen=True, slots=True)
class NewProduct:
    """A product to add. The price is text in the shop's currency ("12.50"); a stock that is
    not a whole number is sent as typed, so the daemon names the rule beside the field."""

    details: ProductDetails
    price: str
    stock: int | str


@dataclass(frozen=True, slots=True)
class SubscriberDetails:
    """The subscriber form as typed: empty text clears a field when editing and is left out
    when adding. `watch_items` None: not sent (a daemon without watch lists)."""

    name: str
    phone: str
    email: str
    channels: tuple[str, ...]
    watch_items: tuple[str, ...] | None = None


# -- parsing ----------------------------------------------------------------------------------


def parse(kind: type[R], data: object, where: str = "") -> R:
    """`data` (decoded JSON) as a `kind` record; RecordError names what does not fit."""
    if not isinstance(data, dict):
        raise RecordError(where, f"should be an object, is {_kind_of(data)}")
    hints = _hints(kind)
    values: dict[str, Any] = {}
    for spec in fields(kind):  # type: ignore[arg-type]
        path = f"{where}.{spec.name}" if where else spec.name
        if spec.name in data:
            values[spec.name] = _value(hints[spec.name], data[spec.name], path)
        elif spec.default is MISSING and spec.default_factory is MISSING:
            raise RecordError(path, "is missing")
    return kind(**values)


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    return get_type_hints(kind)


# What a JSON value of each Python type is called in an error message.
_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}


def _value(hint: Any, value: object, where: str) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [arg for arg in args if arg is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"{where}: records read `X | None` only, not {hint}")
        return _value(inner[0], value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise RecordError(where, f"should be a list, is {_kind_of(value)}")
        return tuple(_value(args[0], item, f"{where}[{n}]") for n, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(where, f"should be an object, is {_kind_of(value)}")
        return {str(k): _value(args[1], item, f"{where}.{k}") for k, item in value.items()}
    if isinstance(hint, type) and is_dataclass(hint):
        return parse(hint, value, where)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in _NAMES:
        # JSON true is not a whole number, though Python's bool is an int.
        fits = isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
        if not fits:
            raise RecordError(where, f"should be {_NAMES[hint]}, is {_kind_of(value)}")
        return value
    raise TypeError(f"{where}: records cannot read {hint!r}")


def _kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return _NAMES.get(type(value), type(value).__name__)
