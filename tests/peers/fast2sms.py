"""A fake Fast2SMS on 127.0.0.1: checks the key, records requests, answers or fails as told.

    with Fast2SmsPeer() as peer:
        peer.script(Fault.refused(411, "Invalid Numbers"), match="9000000001")  # one number
        peer.script(Fault.server_error(503), times=1)                           # everyone, once
        provider = Fast2SmsProvider(http=http, api_key=API_KEY, base_url=peer.base_url)
        ...
        assert peer.received[0].numbers == ["9876543210"]

`match` is one of the request's numbers (ten digits, as Fast2SMS takes them). The server
thread, `script` and `received` come from tests/peers/_http.py.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.peers._http import HttpPeer, PeerHandler

API_KEY = "test-fast2sms-key-0123456789"

# Fast2SMS's own answer to a wrong key (its documented code 412, with HTTP 401).
BAD_KEY_BODY = {
    "return": False,
    "status_code": 412,
    "message": "Invalid Authentication, Check Authorization Key",
}


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the peer saw it; `body` is the JSON object or the form fields."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]
    content_type: str
    at: float  # time.monotonic() when it arrived

    @property
    def numbers(self) -> list[str]:
        return [n for n in str(self.body.get("numbers", "")).split(",") if n]


@dataclass(frozen=True, slots=True)
class Fault:
    """An answer the test chose, built with the class methods. 200 with no body is Fast2SMS's
    success answer (a fresh request id); `delay` holds the answer back that many seconds."""

    http_status: int
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(status, {"message": "Internal Server Error"})

    @classmethod
    def too_many(cls, retry_after: str = "7") -> Fault:
        return cls(429, {"message": "Too Many Requests"}, {"Retry-After": retry_after})

    @classmethod
    def refused(cls, status_code: int, message: str, *, http_status: int = 400) -> Fault:
        """Fast2SMS's `return: false` error shape with one of its status codes."""
        return cls(http_status, {"return": False, "status_code": status_code, "message": message})

    @classmethod
    def bad_key(cls) -> Fault:
        return cls(401, BAD_KEY_BODY)

    @classmethod
    def slow(cls, seconds: float = 30.0) -> Fault:
        """Answer success, but only after `seconds` (cut short when the peer stops)."""
        return cls(200, delay=seconds)


class Fast2SmsPeer(HttpPeer[Received, Fault]):
    """Serves POST /dev/bulkV2 in a thread, so it answers while the test's event loop runs.

    `base_url` is what the provider takes. Faults script requests that reach bulkV2 with the
    right key; without one, such a request gets success.
    """

    def __init__(self, *, api_key: str = API_KEY, port: int = 0) -> None:
        super().__init__(_Handler, port=port)
        self.api_key = api_key
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"{self.origin}/dev/"

    def _success(self) -> dict[str, Any]:
        with self._lock:
            request_id = f"fake{next(self._ids):06d}"
        return {"return": True, "request_id": request_id, "message": ["SMS sent successfully."]}


class _Handler(PeerHandler[Fast2SmsPeer]):
    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        peer = self.peer
        raw = self.read_body()
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        url = urlsplit(self.path)
        body: dict[str, Any]
        if content_type == "application/json":
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"_unparsed": raw.decode("utf-8", "replace")}
        else:
            body = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        request = Received(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            content_type=content_type,
            at=time.monotonic(),
        )
        peer._record(request)

        if url.path != "/dev/bulkV2" or self.command != "POST":
            self._answer(404, {"return": False, "message": "Not Found"})
            return
        if self.headers.get("authorization") != peer.api_key:
            self._answer(401, BAD_KEY_BODY)
            return
        fault = peer._take_fault(lambda match: match in request.numbers)
        if fault is None:
            self._answer(200, peer._success())
            return
        if peer._hold(fault.delay):
            self.close_connection = True
            return  # the peer is stopping: drop the connection unanswered
        if fault.http_status == 200 and fault.body is None:
            self._answer(200, peer._success())
        else:
            self._answer(fault.http_status, fault.body, fault.headers)

    def _answer(
        self,
        status: int,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        payload = json.dumps(body).encode() if body is not None else b""
        self.send(status, payload, [("Content-Type", "application/json"), *(headers or {}).items()])
