"""Twilio calling us back: signature checks, the inbound-SMS and status-callback forms, TwiML."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"
# MessageStatus values after which nothing more happens to a message.
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "canceled"})
# Characters XML 1.0 cannot hold at all, not even escaped; ElementTree writes them raw.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

FormData = Mapping[str, str] | Iterable[tuple[str, str]]


class _Pairs(dict[str, list[str]]):
    """Form fields with every value kept, in the `getall` shape RequestValidator reads."""

    def getall(self, key: str) -> list[str]:
        return self[key]


def _pairs(form: Any) -> list[tuple[str, str]]:
    """(name, value) for every field, repeated names included, from any form-like object."""
    if hasattr(form, "multi_items"):  # starlette's FormData / ImmutableMultiDict
        items = form.multi_items()
    elif isinstance(form, Mapping):  # a dict; multidict's items() already yields every pair
        items = form.items()
    else:
        items = form
    return [(str(name), str(value)) for name, value in items]


def is_valid_signature(
    auth_token: str,
    url: str,
    params: FormData,
    signature: str | None,
) -> bool:
    """Whether X-Twilio-Signature matches the URL Twilio requested and every field it posted.

    `url` must be the public URL (see public_request_url), `params` every form field received
    (Twilio adds fields without notice: never filter them), repeated names included.
    """
    # RequestValidator raises TypeError on None; an absent header is simply not valid.
    if not signature or not auth_token:
        return False
    grouped = _Pairs()
    for name, value in _pairs(params):
        grouped.setdefault(name, []).append(value)
    try:
        return bool(RequestValidator(auth_token).validate(url, grouped, signature))
    except (TypeError, ValueError):  # a URL or header too malformed to even compare
        return False


def public_request_url(public_url: str | None, request_url: str) -> str:
    """The URL Twilio signed: the configured public base + the local request's path and query.

    Behind a proxy or tunnel, the URL the daemon sees (http://127.0.0.1:8765/...) is not the
    one Twilio requested, and the signature covers the exact URL. The query string is kept
    byte for byte (the signature covers it). Without a public URL, the request URL is used.
    """
    if not public_url:
        return request_url
    local = urlsplit(request_url)
    url = public_url.rstrip("/") + (local.path or "/")
    if local.query:
        url += "?" + local.query
    return url


def _text(form: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = form.get(name)
        if value:
            return str(value)
    return ""


def _count(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _first_values(form: FormData) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in _pairs(form):
        values.setdefault(name, value)
    return values


@dataclass(frozen=True, slots=True)
class InboundSms:
    """An SMS someone sent to our Twilio number (the inbound webhook's form)."""

    message_sid: str
    from_number: str
    to_number: str
    body: str = field(repr=False)  # may hold a code or anything personal
    num_segments: int | None = None
    num_media: int = 0
    account_sid: str = ""
    messaging_service_sid: str | None = None

    @classmethod
    def from_form(cls, form: FormData) -> InboundSms:
        """Parse the posted fields; ValueError when MessageSid or From is missing."""
        fields = _first_values(form)
        # SmsMessageSid and SmsSid are Twilio's deprecated duplicates of MessageSid.
        sid = _text(fields, "MessageSid", "SmsMessageSid", "SmsSid")
        sender = _text(fields, "From")
        if not sid or not sender:
            raise ValueError("not a Twilio inbound SMS: MessageSid or From is missing")
        return cls(
            message_sid=sid,
            from_number=sender,
            to_number=_text(fields, "To"),
            body=fields.get("Body", ""),
            num_segments=_count(fields.get("NumSegments")),
            num_media=_count(fields.get("NumMedia")) or 0,
            account_sid=_text(fields, "AccountSid"),
            messaging_service_sid=_text(fields, "MessagingServiceSid") or None,
        )


@dataclass(frozen=True, slots=True)
class StatusCallback:
    """A delivery update for a message we sent (the StatusCallback webhook's form).

    Callbacks may come twice or out of order: apply them idempotently, never backwards.
    """

    message_sid: str
    status: str
    error_code: str | None = None
    to_number: str = ""
    from_number: str = ""
    account_sid: str = ""

    @property
    def final(self) -> bool:
        """Whether this status ends the message's life at Twilio."""
        return self.status in FINAL_STATUSES

    @classmethod
    def from_form(cls, form: FormData) -> StatusCallback:
        """Parse the posted fields; ValueError when MessageSid or MessageStatus is missing."""
        fields = _first_values(form)
        sid = _text(fields, "MessageSid", "SmsSid")
        status = _text(fields, "MessageStatus", "SmsStatus").lower()
        if not sid or not status:
            raise ValueError("not a Twilio status callback: MessageSid or MessageStatus is missing")
        return cls(
            message_sid=sid,
            status=status,
            # Absent on success, sometimes sent empty: both mean "no error".
            error_code=_text(fields, "ErrorCode") or None,
            to_number=_text(fields, "To"),
            from_number=_text(fields, "From"),
            account_sid=_text(fields, "AccountSid"),
        )


def twiml(message: str | None) -> str:
    """The TwiML answer to an inbound SMS: no reply (`<Response />`) or one `<Message>`."""
    # Here, not at the top: twilio.twiml brings xml.etree into every daemon, and only an
    # inbound SMS needs it (bench/idle_memory.py says what it costs).
    from twilio.twiml.messaging_response import MessagingResponse

    response = MessagingResponse()
    if message:
        response.message(_NOT_XML.sub("", message))
    return str(response)
