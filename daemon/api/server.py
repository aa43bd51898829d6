"""Serves the API with granian inside the daemon's own event loop, with limits for strangers.

granian was chosen by measurement (docs/http-server.md, bench/http_servers.py): of the
maintained ASGI servers it is the one that caps header size (431), header-read time and
concurrent connections itself, through its public settings, and it adds no periodic wake-up.
Its HTTP parsing runs on one Rust thread; the app runs on the daemon's loop.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.embed import Server
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

LISTEN_BACKLOG = 128
# Part of stop()'s timeout kept for the forced phase (cancel, wait for the task to unwind),
# so that stop() as a whole returns within its timeout: at most this, at most a fifth.
FORCED_STOP_RESERVE_SECONDS = 0.5
# hyper (granian's HTTP/1 parser) refuses a read buffer smaller than this.
MIN_HEADER_BUFFER_BYTES = 8192
# granian configures logging with dictConfig at construction; incremental, with no handlers,
# it only sets its loggers' levels and lets their records reach the daemon's handlers
# (a full dictConfig would close every handler the daemon installed).
GRANIAN_LOGGING: dict[str, Any] = {
    "incremental": True,
    "handlers": {},
    "loggers": {"_granian": {"propagate": True}, "granian.access": {"propagate": True}},
}


class ApiBindError(Exception):
    """The API cannot listen where configured; the message says why and what to change."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port and listening; ApiBindError instead of sys.exit.

    Binding here lets the daemon report a plain message before anything starts and lets
    tests use port 0; ApiServer then hands the address it got to granian.
    """
    bare = host.strip().removeprefix("[").removesuffix("]")
    shown = _show(bare, port)
    if not 0 <= port <= 65535:
        raise ApiBindError(f"cannot listen on {shown}: the port must be between 1 and 65535")
    try:
        infos = socket.getaddrinfo(
            bare or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ApiBindError(
            f"cannot listen on {shown}: unknown host ({exc.strerror}); change [api] host"
        ) from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":
            # Restart right after a stop despite TIME_WAIT; on Windows the same flag would
            # let two processes share the port, so it stays off there (as asyncio does).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ApiBindError(_bind_failure(shown, exc)) from exc
    return sock


def _show(host: str, port: int) -> str:
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    return f"[{host}]:{port}" if is_v6 else f"{host or '*'}:{port}"


def _bind_failure(shown: str, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        reason = "address already in use; is another shopbell running? change [api] port or stop it"
    elif exc.errno == errno.EADDRNOTAVAIL:
        reason = "this machine has no such address; change [api] host"
    elif exc.errno == errno.EACCES:
        reason = "permission denied (ports below 1024 need privileges); change [api] port"
    else:
        reason = exc.strerror or str(exc)
    return f"cannot listen on {shown}: {reason}"


def _tracking(app: ASGIApp, requests: set[asyncio.Task[None]]) -> ASGIApp:
    """The app, each request in an asyncio task of its own that stop() can cancel.

    granian drives each request through a stand-in task whose cancel() does nothing, so a
    request that never finishes could not be forced, and anyio's cancel scopes inside
    Starlette would not work; a real task gives both back.
    """

    async def tracked(scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.ensure_future(app(scope, receive, send))
        requests.add(task)
        task.add_done_callback(requests.discard)
        await task

    return tracked


def _http1(max_header_bytes: int, header_timeout: float, keepalive_timeout: float) -> HTTP1Settings:
    """granian's HTTP/1 limits from the daemon's [api] settings.

    hyper has one timer for "waiting for a request head": it runs from the connection's start
    and again after each answer, until the head is complete. So the shorter of the two
    settings bounds both a slow first header and an idle keep-alive connection.
    """
    return HTTP1Settings(
        header_read_timeout=max(1, round(min(header_timeout, keepalive_timeout) * 1000)),
        keep_alive=True,
        # The buffer the head must fit in: beyond it the client gets 431.
        max_buffer_size=max(MIN_HEADER_BUFFER_BYTES, max_header_bytes),
    )


class ApiServer:
    """One granian server on the address of an already bound socket, started and stopped by
    the daemon, with the [api] HTTP limits."""

    def __init__(
        self,
        app: ASGIApp,
        sock: socket.socket,
        *,
        access_log: bool = False,
        max_header_bytes: int = 16_384,
        header_timeout: float = 10.0,
        keepalive_timeout: float = 5.0,
        max_connections: int = 256,
    ) -> None:
        self._sock = sock
        host, self._port = sock.getsockname()[:2]
        self._requests: set[asyncio.Task[None]] = set()
        self._server = Server(
            _tracking(app, self._requests),
            address=host,
            port=self._port,
            # No lifespan (the daemon starts and stops its own parts), no websockets.
            interface=Interfaces.ASGINL,
            http=HTTPModes.http1,
            websockets=False,
            backlog=LISTEN_BACKLOG,
            # Connections granian accepts at once; the rest wait in the listen backlog, so
            # idle sockets can neither exhaust file descriptors nor starve other clients.
            backpressure=max_connections,
            http1_settings=_http1(max_header_bytes, header_timeout, keepalive_timeout),
            # Errors only: each start would otherwise log that embedding is experimental.
            log_level=LogLevels.error,
            log_dictconfig=GRANIAN_LOGGING,
            log_access=access_log,
        )
        self._listening = asyncio.Event()
        self._server.on_startup(self._listening.set)
        self._task: asyncio.Task[None] | None = None

    @property
    def bound_port(self) -> int:
        """The port the socket listens on (the real one when bound to port 0)."""
        return self._port

    async def start(self) -> None:
        """Start serving; returns once the address listens (connections queue until accepted)."""
        if self._task is not None:
            raise RuntimeError("ApiServer.start() called twice")
        # granian binds the address itself (it cannot take a socket): give it back first.
        self._sock.close()
        self._task = asyncio.create_task(self._server.serve(), name="shopbell-api-server")
        listening = asyncio.create_task(self._listening.wait())
        await asyncio.wait({self._task, listening}, return_when=asyncio.FIRST_COMPLETED)
        if not listening.done():
            listening.cancel()
            # serve() ended before listening: surface its error, or say it stopped.
            self._task.result()
            raise RuntimeError("the API server stopped before it started listening")
        logger.debug("API server accepting connections on port %d", self._port)

    # A timeout argument, not asyncio.timeout(): the split between the graceful and the
    # forced phase needs the number, and the daemon's shutdown stages pass their budget.
    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109
        """Stop accepting, let requests in flight finish, force after; returns within `timeout`."""
        task = self._task
        if task is None or task.done():
            if task is not None:
                self._log_failure(task)  # it ended on its own: say why, if it failed
            self._sock.close()
            return
        reserve = min(FORCED_STOP_RESERVE_SECONDS, timeout / 5)
        self._server.stop()
        pending = {task, *self._requests}
        _, pending = await asyncio.wait(pending, timeout=max(0.0, timeout - reserve))
        if not pending:
            self._log_failure(task)
            return
        requests = [t for t in pending if t is not task]
        logger.warning(
            "API did not stop within %.1f s: cancelling %d request(s)",
            timeout - reserve,
            len(requests),
        )
        for request in requests:
            request.cancel()
        # granian ends once its connections have: give it the reserve, then cancel it too.
        done, _ = await asyncio.wait({task}, timeout=reserve / 2)
        if not done:
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=reserve / 2)
        if not done:
            logger.error("API server task did not end after cancellation")

    @staticmethod
    def _log_failure(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("API server failed", exc_info=task.exception())
