"""A fake Fast2SMS on 127.0.0.1: checks the key, records requests, answers or fails as told."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "test-fast2sms-key-0123456789"

# Fast2SMS's own answer to a wrong key (its documented code 412, with HTTP 401).
BAD_KEY_BODY = {
    "return": False,
    "status_code": 412,
    "message": "Invalid Authentication, Check Authorization Key",
}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the peer saw it; `body` is the JSON object or the form fields."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]
    content_type: str
    received_at: float  # time.monotonic() when it arrived

    @property
    def numbers(self) -> list[str]:
        return [n for n in str(self.body.get("numbers", "")).split(",") if n]


@dataclass(frozen=True, slots=True)
class Scripted:
    """An answer the test chose, built with the class methods. 200 with no body is Fast2SMS's
    success answer (a fresh request id); `delay_seconds` holds the answer back that long."""

    http_status: int
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0

    @classmethod
    def http_error(cls, status: int = 500) -> Scripted:
        return cls(status, {"message": "Internal Server Error"})

    @classmethod
    def too_many(cls, retry_after: str = "7") -> Scripted:
        return cls(429, {"message": "Too Many Requests"}, {"Retry-After": retry_after})

    @classmethod
    def refused(cls, status_code: int, message: str, *, http_status: int = 400) -> Scripted:
        """Fast2SMS's `return: false` error shape with one of its status codes."""
        return cls(http_status, {"return": False, "status_code": status_code, "message": message})

    @classmethod
    def bad_key(cls) -> Scripted:
        return cls(401, BAD_KEY_BODY)

    @classmethod
    def stall(cls, seconds: float = 30.0) -> Scripted:
        """Answer success, but only after `seconds` (cut short when the peer stops)."""
        return cls(200, delay_seconds=seconds)


@dataclass
class _Rule:
    answer: Scripted
    number: str | None
    remaining: int | None


class FakeFast2Sms:
    """Serves POST /dev/bulkV2 in a thread, so it answers while the test's event loop runs.

    `base_url` is what the provider takes. Script failures with `fail(...)`: per number (the
    request's `numbers` contains it) or for every request, forever or `times` times; the
    newest matching rule wins. Without a rule, a request with the right key gets success.
    """

    def __init__(self, *, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._rules: list[_Rule] = []
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.peer = self
        # A short poll interval: stop() waits for one, and every test stops a peer.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-fast2sms",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/dev/"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until `count` requests arrived (for a sender in another process or task);
        raises TimeoutError otherwise. From async code: `await asyncio.to_thread(...)`."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"{len(self._requests)} of {count} requests arrived")
            return list(self._requests)

    def fail(
        self, answer: Scripted, *, number: str | None = None, times: int | None = None
    ) -> None:
        """Answer requests (to `number`, or all) with `answer`, `times` times or forever."""
        with self._lock:
            self._rules.append(_Rule(answer, number, times))

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self._requests.clear()

    def start(self) -> FakeFast2Sms:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled handlers so shutdown is quick
        if self._thread.is_alive():
            self._server.shutdown()  # waits for serve_forever: never call it before start()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _scripted_for(self, numbers: list[str]) -> Scripted | None:
        with self._lock:
            for rule in reversed(self._rules):
                if rule.number is not None and rule.number not in numbers:
                    continue
                if rule.remaining is not None:
                    if rule.remaining <= 0:
                        continue
                    rule.remaining -= 1
                return rule.answer
        return None

    def _success(self) -> dict[str, Any]:
        with self._lock:
            request_id = f"fake{next(self._ids):06d}"
        return {"return": True, "request_id": request_id, "message": ["SMS sent successfully."]}


@contextmanager
def running_fast2sms(*, api_key: str = API_KEY) -> Iterator[FakeFast2Sms]:
    peer = FakeFast2Sms(api_key=api_key).start()
    try:
        yield peer
    finally:
        peer.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    peer: FakeFast2Sms

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a stalled answer closes the socket; that is the test's
        # point, not an error worth a traceback on stderr.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        peer = self.server.peer
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
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
        request = RecordedRequest(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            content_type=content_type,
            received_at=time.monotonic(),
        )
        peer._record(request)

        if url.path != "/dev/bulkV2" or self.command != "POST":
            self._answer(404, {"return": False, "message": "Not Found"})
            return
        if self.headers.get("authorization") != peer.api_key:
            self._answer(401, BAD_KEY_BODY)
            return
        scripted = peer._scripted_for(request.numbers)
        if scripted is None:
            self._answer(200, peer._success())
            return
        if scripted.delay_seconds and peer._stopping.wait(scripted.delay_seconds):
            return  # the peer is stopping: drop the connection unanswered
        if scripted.http_status == 200 and scripted.body is None:
            self._answer(200, peer._success())
        else:
            self._answer(scripted.http_status, scripted.body, scripted.headers)

    def _answer(
        self,
        status: int,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        payload = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
