"""What every fake peer stands on: an HTTP server on 127.0.0.1 in its own thread, the requests
it received, and one way to script faults.

    with TwilioPeer() as peer:                                   # or start() ... stop()
        peer.script(Fault.error(21211), match="+15005550001")     # requests it matches, forever
        peer.script(Fault.server_error(503), times=2)             # every request, twice
        peer.chaos(0.3, [Fault.server_error(), Fault.connection_reset()], seed=1)
        ...
        assert peer.received[0].form["Body"] == "hello"

Each peer module defines its own `Fault` (what the real service answers when it fails) and
`Received` (one request as the peer saw it), and says what `match` is matched against: the
recipient (Twilio), the token or "/topics/<name>" (FCM), one of the numbers (Fast2SMS), a part
of the path (TGTG).

A stdlib ThreadingHTTPServer in its own thread, so it serves sync tests and tests whose event
loop is busy awaiting alike.
"""

from __future__ import annotations

import contextlib
import random
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar, cast

R = TypeVar("R")  # the peer's record of one request
F = TypeVar("F")  # the peer's scripted answer
P = TypeVar("P", bound="HttpPeer[Any, Any]")  # the peer a handler answers for


@dataclass
class _Rule(Generic[F]):
    fault: F
    match: str | None
    remaining: int | None


class HttpPeer(Generic[R, F]):
    """The server thread, `received`, `script`, `chaos` and `clear`. A peer passes its
    handler class, which answers requests, calls `_take_fault` where the real service could
    fail and `_record` for what arrived."""

    def __init__(self, handler: type[PeerHandler[Any]], *, port: int = 0) -> None:
        self._handler = handler
        self._port = port
        # Reentrant: a peer's handler may hold it while it takes a fault or records.
        self._lock = threading.RLock()
        self._received: list[R] = []
        self._rules: list[_Rule[F]] = []
        self._chaos: tuple[float, tuple[F, ...], random.Random] | None = None
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        self._stopping.clear()
        server = _Server(("127.0.0.1", self._port), self._handler)
        server.peer = self
        self._server = server
        self._port = server.server_address[1]  # a restart reuses the port
        # A short poll interval: stop() waits for one, and every test stops a peer.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering: close the listener and every kept-alive connection (so clients
        holding one see the service gone rather than a ghost still answering), and cut short
        any answer held back by a delay."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        """http://127.0.0.1:<port>; each peer's `base_url` adds what its client expects."""
        return f"http://127.0.0.1:{self._port}"

    # -- scripting and inspection ------------------------------------------------------------

    def script(self, fault: F, *, match: str | None = None, times: int | None = None) -> None:
        """Answer the requests `match` picks out (or every request, when None) with `fault`,
        `times` times (then back to what came before) or for good. A rule with a match wins
        over a rule for everyone; older rules win over newer ones."""
        with self._lock:
            self._rules.append(_Rule(fault, match, times))

    def chaos(self, rate: float, faults: Sequence[F], *, seed: int = 0) -> None:
        """Answer a random share `rate` of the requests no rule matches with one of `faults`,
        picked at random (seeded); rate 0 turns chaos off."""
        with self._lock:
            self._chaos = (rate, tuple(faults), random.Random(seed)) if rate > 0 else None

    def clear(self) -> None:
        """Forget received requests, scripted faults and chaos."""
        with self._lock:
            self._received.clear()
            self._rules.clear()
            self._chaos = None

    @property
    def received(self) -> list[R]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._received)

    # -- for the peers' handlers -------------------------------------------------------------

    def _take_fault(self, matches: Callable[[str], bool], *, everyone: bool = True) -> F | None:
        """The fault scripted for this request, if any (counting it down), else a chaos pick.
        `matches` says whether a rule's `match` picks this request; `everyone=False` leaves
        out the rules for everyone and chaos (an endpoint those do not aim at)."""
        with self._lock:
            for targeted in (True, False) if everyone else (True,):
                for rule in self._rules:
                    if (rule.match is not None) != targeted:
                        continue
                    if rule.match is not None and not matches(rule.match):
                        continue
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self._rules.remove(rule)
                    return rule.fault
            if everyone and self._chaos is not None:
                rate, faults, rng = self._chaos
                if rng.random() < rate:
                    return rng.choice(faults)
        return None

    def _record(self, record: R) -> None:
        with self._lock:
            self._received.append(record)

    def _hold(self, seconds: float) -> bool:
        """Wait `seconds` before answering; True when the peer stopped meanwhile (then the
        handler must not answer at all)."""
        return bool(seconds) and self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many clients connect at once in the concurrency tests and benchmarks.
    request_queue_size = 128
    peer: HttpPeer[Any, Any]

    def handle_error(self, request: object, client_address: object) -> None:
        # A client killed mid-request (the kill -9 tests), or one that gave up on a held-back
        # answer, is not the fake's error: no traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class PeerHandler(BaseHTTPRequestHandler, Generic[P]):
    """Keep-alive HTTP/1.1 with Nagle off; tracks its connection so stop() can close it."""

    # Keep-alive, as the real services do: clients reuse connections.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK adds
    # ~40 ms to every answer, which the real services do not.
    disable_nagle_algorithm = True
    server: _Server

    @property
    def peer(self) -> P:
        return cast(P, self.server.peer)

    def setup(self) -> None:
        super().setup()
        with self.peer._lock:
            self.peer._connections.add(self.connection)

    def finish(self) -> None:
        with self.peer._lock:
            self.peer._connections.discard(self.connection)
        with contextlib.suppress(OSError):  # the client gave up (timeout) before we answered
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests read peer.received, not stderr

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status: int, data: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Answer `status` with `headers` (in order, repeats allowed) and `data`."""
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client is gone
            self.close_connection = True
