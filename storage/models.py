"""Record types, one frozen dataclass per table; standard library only, as the TUI imports it."""

from __future__ import annotations

import json
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, Self, Union, get_args, get_origin, get_type_hints

# The values the schema's CHECK constraints allow (tests hold the two in step).
Channel = Literal["sms", "push", "email"]
MessageKind = Literal["otp", "alert", "manual", "report", "reply", "system"]
MessageStatus = Literal[
    "queued", "sending", "sent", "delivered", "undelivered", "failed", "cancelled"
]
SmsEncoding = Literal["gsm7", "ucs2"]
NotificationTarget = Literal["tokens", "topic"]
InboundSource = Literal["twilio", "modem", "fast2sms", "console"]
OtpPurpose = Literal["login", "signup", "verify-phone"]
TgtgState = Literal["pending", "active", "blocked", "error", "disabled"]
ReservationState = Literal["offered", "reserving", "reserved", "failed", "cancelled"]
Role = Literal["customer", "cashier", "manager", "owner"]
OrderStatus = Literal["placed", "paid", "cancelled", "refunded"]
ReportKind = Literal["daily", "weekly"]
JobOutcome = Literal["running", "ok", "error", "skipped"]


class _Record:
    """Gives every record `from_row`, decoding by field type: times, JSON, booleans."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        """Build the record from a database row, or the same keys from the API's JSON.

        Columns the record does not know are ignored, so a row from a newer schema still reads.
        """
        return cls(**{name: convert(row[name]) for name, convert in _converters(cls)})


@dataclass(frozen=True, slots=True)
class Subscriber(_Record):
    """Someone who gets alerts: by SMS, push or e-mail, unless opted out."""

    id: int
    name: str | None
    email: str | None
    phone: str | None
    channels: tuple[str, ...]
    opted_out_at: datetime | None
    verified_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # TGTG items to alert for; empty: every favourite.
    watch_items: tuple[str, ...]
    # Opt-in: an alert when an available item's price goes down.
    price_drop_alerts: bool
    # Opt-in ([tgtg] reserve_by_reply on): alert SMS offer "reply R" to reserve a bag.
    reserve_by_reply: bool = False


@dataclass(frozen=True, slots=True)
class PushToken(_Record):
    """A device's FCM registration token; `invalid_at` once FCM says it is dead."""

    id: int
    # Hidden from repr: it addresses one person's device.
    token: str = field(repr=False)
    subscriber_id: int | None
    platform: str | None
    created_at: datetime
    last_seen_at: datetime | None
    invalid_at: datetime | None
    invalid_reason: str | None


@dataclass(frozen=True, slots=True)
class TgtgAccount(_Record):
    """A subscriber's Too Good To Go login and the watcher's polling state for it."""

    id: int
    subscriber_id: int
    email: str
    access_token: str | None = field(repr=False)
    refresh_token: str | None = field(repr=False)
    user_id: str | None
    cookie: str | None = field(repr=False)
    state: TgtgState
    state_detail: str | None
    # Hidden from repr: during login, the polling id is what trades for the tokens.
    polling_id: str | None = field(repr=False)
    access_token_expires_at: datetime | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    backoff_until: datetime | None
    failures: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Favorite(_Record):
    """A TGTG item a subscriber watches, with the last count seen (for rising-edge alerts)."""

    id: int
    subscriber_id: int
    item_id: str
    store_name: str | None
    display_name: str | None
    items_available: int
    bags_available: int
    pickup_start: datetime | None
    pickup_end: datetime | None
    price_minor: int | None
    currency: str | None
    last_alerted_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Notification(_Record):
    """One push to many tokens or to a topic; its messages point back to it."""

    id: int
    target: NotificationTarget
    topic: str | None
    title: str | None
    body: str | None
    data: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Message(_Record):
    """One outgoing SMS, push or e-mail in the outbox, written before any provider sees it."""

    id: int
    channel: Channel
    recipient: str
    subject: str | None
    # Hidden from repr: an OTP message's body is the code.
    body: str = field(repr=False)
    kind: MessageKind
    priority: int
    status: MessageStatus
    idempotency_key: str | None
    subscriber_id: int | None
    notification_id: int | None
    encoding: SmsEncoding | None
    segments: int | None
    provider: str | None
    provider_message_id: str | None
    chain_position: int
    provider_attempts: int
    attempts: int
    last_error: str | None
    error_code: str | None
    validity_seconds: int | None
    created_at: datetime
    due_at: datetime
    lease_until: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MessageEvent(_Record):
    """One state change of a message: when, to what, through which provider, and why."""

    id: int
    message_id: int
    at: datetime
    state: MessageStatus
    provider: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class MessagePart(_Record):
    """One segment of a message sent by a provider that reports per segment (a modem)."""

    id: int
    message_id: int
    seq: int
    provider: str
    reference: str
    recipient: str
    sent_at: datetime
    status: Literal["sent", "delivered", "failed"]
    status_code: int | None
    reported_at: datetime | None


@dataclass(frozen=True, slots=True)
class InboundMessage(_Record):
    """An SMS received from Twilio's webhook or the modem."""

    id: int
    source: InboundSource
    sender: str
    recipient: str | None
    body: str
    provider_message_id: str | None
    received_at: datetime
    keyword: str | None
    subscriber_id: int | None
    handled_at: datetime | None


@dataclass(frozen=True, slots=True)
class OtpCode(_Record):
    """A one-time code, stored only as an HMAC, with its expiry and counters."""

    id: int
    phone: str
    purpose: OtpPurpose
    code_hmac: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    attempts: int
    sends: int
    last_sent_at: datetime | None
    consumed_at: datetime | None
    message_id: int | None


@dataclass(frozen=True, slots=True)
class Account(_Record):
    """A customer or member of staff who logs in; the role decides what they may do."""

    id: int
    username: str
    email: str | None
    phone: str | None
    full_name: str | None
    password_hash: str = field(repr=False)
    role: Role
    failed_logins: int
    locked_until: datetime | None
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Product(_Record):
    """Something the shop sells; price in minor units."""

    id: int
    sku: str
    name: str
    brand: str | None
    category: str | None
    price_minor: int
    stock: int
    active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PriceChange(_Record):
    """One price update of a product, and who made it."""

    id: int
    product_id: int
    old_price_minor: int
    new_price_minor: int
    account_id: int | None
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class Order(_Record):
    """A purchase: its lines are OrderLine records."""

    id: int
    account_id: int | None
    status: OrderStatus
    total_minor: int
    note: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderLine(_Record):
    """One product in an order, at the price it sold for."""

    id: int
    order_id: int
    product_id: int
    quantity: int
    unit_price_minor: int
    line_total_minor: int


@dataclass(frozen=True, slots=True)
class Report(_Record):
    """A daily or weekly sales report, as generated, and when it was sent."""

    id: int
    kind: ReportKind
    period_start: datetime
    period_end: datetime
    generated_at: datetime
    content: dict[str, Any]
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobRun(_Record):
    """One run of a scheduled job and how it ended."""

    id: int
    job_id: str
    started_at: datetime
    finished_at: datetime | None
    outcome: JobOutcome
    detail: str | None


@dataclass(frozen=True, slots=True)
class OwnerAlert(_Record):
    """One time the owner was (or is being) told that `key` needs them."""

    id: int
    key: str
    text: str
    subject: str | None
    raised_at: datetime
    # None until its messages are in the outbox (a crash may come in between).
    queued_at: datetime | None
    cleared_at: datetime | None


def parse_time(value: str | datetime) -> datetime:
    """A stored time as an aware UTC datetime (times without an offset are UTC by contract)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _json_tuple(value: str | list[Any] | tuple[Any, ...]) -> tuple[Any, ...]:
    # From the database a JSON string; from the API's JSON already a list.
    return tuple(json.loads(value) if isinstance(value, str) else value)


def _json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _identity(value: Any) -> Any:
    return value


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def _converter(hint: Any) -> Callable[[Any], Any]:
    args = get_args(hint)
    if get_origin(hint) in (Union, types.UnionType) and type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        return _optional(_converter(inner))
    if hint is datetime:
        return parse_time
    if hint is bool:
        return bool
    if get_origin(hint) is tuple:
        return _json_tuple
    if get_origin(hint) is dict:
        return _json_value
    return _identity


_CONVERTERS: dict[type, tuple[tuple[str, Callable[[Any], Any]], ...]] = {}


def _converters(cls: type) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    # Worked out once per class from its annotations, then reused for every row.
    if cls not in _CONVERTERS:
        hints = get_type_hints(cls)
        _CONVERTERS[cls] = tuple((f.name, _converter(hints[f.name])) for f in fields(cls))
    return _CONVERTERS[cls]


@dataclass(frozen=True, slots=True)
class Reservation(_Record):
    """An alert that offered "reply R", and what became of it (one row per alert)."""

    id: int
    subscriber_id: int
    item_id: str
    item_name: str
    alert_key: str
    pickup_end: datetime | None
    offered_at: datetime
    state: ReservationState
    order_id: str | None
    detail: str | None
    reserved_at: datetime | None
    hold_until: datetime | None
    cancelled_at: datetime | None
    updated_at: datetime
