"""Serves the API with uvicorn inside the daemon's own event loop, on a socket we bind."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

logger = logging.getLogger(__name__)

LISTEN_BACKLOG = 128
# Part of stop()'s timeout kept for the forced phase (cancel, wait for the task to unwind),
# so that stop() as a whole returns within its timeout: at most this, at most a fifth.
FORCED_STOP_RESERVE_SECONDS = 0.5


class ApiBindError(Exception):
    """The API cannot listen where configured; the message says why and what to change."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port and listening; ApiBindError instead of sys.exit.

    Binding here rather than in uvicorn lets the daemon report a plain message
    (uvicorn logs the OSError and calls sys.exit) and lets tests use port 0.
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


class _EmbeddedServer(uvicorn.Server):
    """uvicorn.Server that leaves signals to the daemon and tells when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The daemon's lifecycle owns SIGINT/SIGTERM and stops us through ApiServer.stop;
        # uvicorn's own handlers would replace the daemon's and re-raise the signal later.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


class ApiServer:
    """One uvicorn server on an already bound socket, started and stopped by the daemon."""

    def __init__(self, app: ASGIApp, sock: socket.socket, *, access_log: bool = False) -> None:
        self._sock = sock
        self._port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            # The daemon configures logging; uvicorn must not install its own handlers.
            log_config=None,
            access_log=access_log,
            lifespan="off",
            server_header=False,
            # The API has no websocket routes; do not load a websocket implementation.
            ws="none",
            # Trust X-Forwarded-* only from this machine (a local tunnel for webhooks),
            # not from whatever FORWARDED_ALLOW_IPS says in the environment.
            forwarded_allow_ips="127.0.0.1,::1",
        )
        if access_log:
            # uvicorn.Config(access_log=False) in this process turns propagation off for
            # good; turn it back on so access lines reach the daemon's handlers.
            logging.getLogger("uvicorn.access").propagate = True
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def bound_port(self) -> int:
        """The port the socket listens on (the real one when bound to port 0)."""
        return self._port

    async def start(self) -> None:
        """Start serving; returns once connections are accepted."""
        if self._task is not None:
            raise RuntimeError("ApiServer.start() called twice")
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self._sock]), name="shopbell-api-server"
        )
        listening = asyncio.create_task(self._server.listening.wait())
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
        self._server.should_exit = True
        done, _ = await asyncio.wait({task}, timeout=max(0.0, timeout - reserve))
        if done:
            self._log_failure(task)
            self._sock.close()  # uvicorn closed it already; closing twice is harmless
            return

        state = self._server.server_state
        logger.warning(
            "API did not stop within %.1f s: cancelling %d request(s), closing %d connection(s)",
            timeout - reserve,
            len(state.tasks),
            len(state.connections),
        )
        self._server.force_exit = True
        for request_task in list(state.tasks):
            request_task.cancel()
        for connection in list(state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=reserve)
        if not done:
            logger.error("API server task did not end after cancellation")
        self._sock.close()

    @staticmethod
    def _log_failure(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("API server failed", exc_info=task.exception())
