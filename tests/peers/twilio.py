"""A fake Twilio on 127.0.0.1: the Messages API subset shopbell uses, scriptable and recording.

    with TwilioPeer() as peer:
        peer.script(Fault.error(21211), match="+15005550001")      # one recipient, forever
        peer.script(Fault.server_error(503), times=2)              # everyone, twice
        peer.chaos(0.3, [Fault.server_error(), Fault.connection_reset()], seed=1)  # 30% fail
        provider = TwilioProvider(account_sid=peer.account_sid, auth_token=peer.auth_token,
                                  from_number="+15005550006", base_url=peer.base_url)
        ...
        assert peer.sent[0].form["Body"] == "hello"

`match` is a recipient (the POST's To). The server thread, `script`, `chaos` and `received`
come from tests/peers/_http.py.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import socket
import struct
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Literal
from urllib.parse import parse_qsl, urlencode

from twilio.request_validator import RequestValidator

from tests.peers._http import HttpPeer, PeerHandler

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
# Distinctive, so tests can look for it anywhere it must not be.
AUTH_TOKEN = "fake-twilio-token-5f3c9a7e1d"
API_PREFIX = "/2010-04-01/Accounts/"

# GSM 03.38: the basic set costs one septet, the extension set two (an escape first).
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = set("^{}\\[~]|€\f")


def num_segments(body: str) -> int:
    """How many SMS parts Twilio bills for this body (GSM-7 160/153, else UCS-2 70/67)."""
    if all(c in _GSM7_BASIC or c in _GSM7_EXTENSION for c in body):
        units, single, part = sum(2 if c in _GSM7_EXTENSION else 1 for c in body), 160, 153
    else:
        units, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else -(-units // part)


@dataclass(frozen=True, slots=True)
class Fault:
    """What the fake answers one Messages.json POST with (the default is success)."""

    status: int = 201
    code: int | None = None
    message: str = ""
    # "legacy": {"code","message","more_info","status"}; "problem": RFC 9457 problem details.
    shape: Literal["legacy", "problem"] = "legacy"
    html: bool = False  # an HTML error page, as a load balancer sends
    retry_after: str | None = None
    delay: float = 0.0  # seconds before answering (longer than the client's timeout: a hang)
    reset: bool = False  # drop the connection with a TCP reset instead of answering

    @classmethod
    def error(
        cls,
        code: int,
        status: int = 400,
        message: str = "",
        *,
        shape: Literal["legacy", "problem"] = "legacy",
        retry_after: str | None = None,
    ) -> Fault:
        """A Twilio error with its own code, e.g. Fault.error(21610) for an opted-out number."""
        text = message or f"Fake Twilio error {code}"
        return cls(status, code, text, shape, retry_after=retry_after)

    @classmethod
    def too_many(cls, retry_after: str | None = "1") -> Fault:
        """429 / 20429, Twilio's concurrency limit."""
        return cls.error(20429, 429, "Too Many Requests", retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500, *, retry_after: str | None = None) -> Fault:
        """A 5xx HTML page with no Twilio code."""
        return cls(status, html=True, retry_after=retry_after)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Success, after `seconds` (set it above the client's timeout for a timeout)."""
        return cls(delay=seconds)

    @classmethod
    def connection_reset(cls) -> Fault:
        """No answer: the connection is reset after the request was read, before any message
        was created (a load balancer dropping it)."""
        return cls(status=0, reset=True)


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the fake saw it, and what it answered."""

    method: str
    path: str
    form: dict[str, str]
    auth_user: str | None
    status: int  # the HTTP status the fake answered (or will, after a delay); 0: reset
    sid: str | None  # the message sid, when a message was created
    at: float  # time.monotonic() on arrival
    headers: dict[str, str] = field(repr=False, default_factory=dict)
    delay: float = 0.0  # seconds the fake waited before answering (scripted delay + latency)


class TwilioPeer(HttpPeer[Received, Fault]):
    """The fake Twilio server; use as a context manager or call start() and stop().
    Faults script Messages.json POSTs only; `match` is the recipient (To)."""

    def __init__(
        self,
        *,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        port: int = 0,
    ) -> None:
        super().__init__(_Handler, port=port)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.latency = 0.0  # seconds added before every answer (benchmarks)
        self.account_status = "active"  # what GET Accounts/{sid}.json reports

    @property
    def base_url(self) -> str:
        """What to give TwilioProvider as base_url."""
        return self.origin

    @property
    def messages_path(self) -> str:
        return f"{API_PREFIX}{self.account_sid}/Messages.json"

    # -- inspection ------------------------------------------------------------------------------

    @property
    def sent(self) -> list[Received]:
        """The requests that created a message."""
        return [r for r in self.received if r.sid is not None]

    def message(self, sid: str) -> Received:
        """The request that created message `sid`."""
        for received in self.received:
            if received.sid == sid:
                return received
        raise KeyError(sid)

    # -- calling back, as the real Twilio does ---------------------------------------------------

    def status_form(
        self, sid: str, status: str, *, error_code: str | None = None
    ) -> dict[str, str]:
        """The form Twilio posts to a message's StatusCallback when its status changes."""
        created = self.message(sid).form
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": created.get("From", ""),
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": created.get("To", ""),
        }
        if created.get("MessagingServiceSid"):
            form["MessagingServiceSid"] = created["MessagingServiceSid"]
        if error_code is not None:
            form["ErrorCode"] = error_code
        return form

    def inbound_form(
        self, from_number: str, body: str, *, to: str = "+15005550006"
    ) -> dict[str, str]:
        """The form Twilio posts to a number's webhook when someone texts it."""
        sid = "SM" + uuid.uuid4().hex
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": from_number,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": str(num_segments(body)),
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to,
        }

    def callback(
        self,
        url: str,
        form: dict[str, str],
        *,
        signed_url: str | None = None,
        auth_token: str | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, str]:
        """POST `form` to `url`, signed as Twilio signs it; (HTTP status, body text).

        `signed_url` is the URL the signature covers when it differs from where the request
        goes (the daemon's public URL behind a proxy); `auth_token` signs with another token.
        """
        token = self.auth_token if auth_token is None else auth_token
        signature = RequestValidator(token).compute_signature(signed_url or url, form)
        request = urllib.request.Request(
            url,
            data=urlencode(form).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                "User-Agent": "TwilioProxy/1.1",
                "X-Twilio-Signature": signature,
            },
        )
        # No proxies from the environment: this talks to 127.0.0.1.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")


class _Handler(PeerHandler[TwilioPeer]):
    # Keep-alive, as api.twilio.com does: requests' sessions reuse connections (PeerHandler).

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        peer = self.peer
        arrived = time.monotonic()
        raw = self.read_body().decode("utf-8")
        form = dict(parse_qsl(raw, keep_blank_values=True))
        user, password = _basic_auth(self.headers.get("Authorization"))
        path = self.path.split("?", 1)[0]
        status, body, headers, sid, delay = self._answer(method, path, form, user, password)
        wait = delay + peer.latency
        peer._record(
            Received(
                method, path, form, user, status, sid, arrived, dict(self.headers.items()), wait
            )
        )
        if status == 0:
            self._reset()
            return
        if peer._hold(wait):
            self.close_connection = True
            return  # stopped while "thinking": never answer
        self._write(status, body, headers)

    def _answer(
        self, method: str, path: str, form: dict[str, str], user: str | None, password: str | None
    ) -> tuple[int, str, dict[str, str], str | None, float]:
        peer = self.peer
        if user != peer.account_sid or password != peer.auth_token:
            return (*_legacy_error(401, 20003, "Authenticate"), None, 0.0)
        if method == "GET" and path == f"{API_PREFIX}{peer.account_sid}.json":
            account = {
                "sid": peer.account_sid,
                "friendly_name": "Fake account",
                "status": peer.account_status,
                "type": "Full",
            }
            return 200, json.dumps(account), {}, None, 0.0
        if method != "POST" or path != peer.messages_path:
            return (
                *_legacy_error(404, 20404, f"The requested resource {path} was not found"),
                None,
                0.0,
            )
        to = form.get("To", "")
        fault = peer._take_fault(lambda match: match == to)
        if fault is not None and fault.reset:
            return 0, "", {}, None, 0.0
        if fault is not None and fault.status >= 300:
            status, body, headers = _scripted_error(fault, path)
            return status, body, headers, None, fault.delay
        delay = fault.delay if fault is not None else 0.0
        missing = _missing_field(form)
        if missing is not None:
            return (*_legacy_error(400, *missing), None, delay)
        sid = "SM" + uuid.uuid4().hex
        return 201, json.dumps(_message(peer.account_sid, sid, form)), {}, sid, delay

    def _reset(self) -> None:
        # Linger 0: closing sends RST rather than FIN, so the client sees "connection reset".
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _write(self, status: int, body: str, headers: dict[str, str]) -> None:
        content_type = headers.pop("Content-Type", "application/json; charset=utf-8")
        self.send(status, body.encode("utf-8"), [("Content-Type", content_type), *headers.items()])


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, password


def _missing_field(form: dict[str, str]) -> tuple[int, str] | None:
    # The same checks, codes and order as Twilio's.
    if not form.get("To"):
        return 21604, "A 'To' phone number is required."
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message"
    if not form.get("Body"):
        return 21602, "Message body is required."
    return None


def _legacy_error(status: int, code: int, message: str) -> tuple[int, str, dict[str, str]]:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return status, json.dumps(body), {}


def _scripted_error(fault: Fault, path: str) -> tuple[int, str, dict[str, str]]:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.html:
        page = f"<html><body><h1>{fault.status} Service Unavailable</h1></body></html>"
        return fault.status, page, {"Content-Type": "text/html", **headers}
    if fault.code is None:
        return fault.status, json.dumps({"status": fault.status}), headers
    if fault.shape == "problem":
        problem = {
            "type": f"https://www.twilio.com/docs/errors/{fault.code}",
            "title": fault.message,
            "status": fault.status,
            "code": fault.code,
            "detail": fault.message,
            "instance": path,
        }
        return (
            fault.status,
            json.dumps(problem),
            {"Content-Type": "application/problem+json", **headers},
        )
    status, body, _ = _legacy_error(fault.status, fault.code, fault.message)
    return status, body, headers


def _message(account_sid: str, sid: str, form: dict[str, str]) -> dict[str, object]:
    """A Message resource shaped like Twilio's answer to a create."""
    now = format_datetime(datetime.now(UTC), usegmt=True)
    body = form.get("Body", "")
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From") or None,
        "messaging_service_sid": form.get("MessagingServiceSid") or None,
        "num_media": "0",
        # "0" until a Messaging Service has picked the sender, as Twilio does.
        "num_segments": "0" if not form.get("From") else str(num_segments(body)),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if not form.get("From") else "queued",
        "subresource_uris": {"media": f"{API_PREFIX}{account_sid}/Messages/{sid}/Media.json"},
        "to": form.get("To"),
        "uri": f"{API_PREFIX}{account_sid}/Messages/{sid}.json",
    }
