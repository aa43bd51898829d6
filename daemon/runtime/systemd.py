"""sd_notify for Type=notify: READY, STATUS, STOPPING and watchdog pings to systemd."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger(__name__)

# How often STATUS= is refreshed; `systemctl status` shows the latest one.
STATUS_SECONDS = 30.0
# The longest a status line may be: systemd shows it on one line of `systemctl status`.
STATUS_MAX_CHARS = 200


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between two WATCHDOG=1 pings (half of $WATCHDOG_USEC, as sd_watchdog_enabled(3)
    advises), or None when systemd asks for none or asks another process of the unit."""
    raw = environ.get("WATCHDOG_USEC", "")
    if not raw:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    if owner and owner != str(pid):
        return None
    try:
        usec = int(raw)
    except ValueError:
        log.warning("systemd: WATCHDOG_USEC=%r is not a number; no watchdog pings", raw)
        return None
    return usec / 2_000_000 if usec > 0 else None


def socket_address(value: str) -> str | bytes:
    """$NOTIFY_SOCKET as an address for sendto: '@name' is in the abstract namespace."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


class Notifier:
    """Sends sd_notify datagrams; a no-op when $NOTIFY_SOCKET is unset (not under systemd).

    Written by hand rather than with the `sdnotify` or `systemd-python` packages: the
    protocol is one datagram on a unix socket (sd_notify(3)), and the watchdog must ping
    from the daemon's own event loop, which neither helps with.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        environ = os.environ if environ is None else environ
        pid = os.getpid() if pid is None else pid
        raw = environ.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = socket_address(raw) if raw else None
        self.watchdog_seconds = watchdog_interval(environ, pid) if raw else None
        self._sock: socket.socket | None = None
        self._failed = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str) -> bool:
        """One datagram of KEY=value lines; True when systemd got it (or there is no systemd)."""
        if self.address is None:
            return True
        payload = "\n".join(f"{key.upper()}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # A full socket queue must never stall the event loop: the datagram is dropped.
                self._sock.setblocking(False)
            self._sock.sendto(payload, self.address)
        except OSError as exc:
            if not self._failed:
                # Said once: a missing systemd socket repeats on every ping.
                log.warning("systemd: cannot notify %s: %s", self.address, exc.strerror or exc)
                self._failed = True
            return False
        if self._failed:
            log.info("systemd: notifications go through again")
            self._failed = False
        return True

    def start_watchdog(self) -> None:
        """Ping WATCHDOG=1 from this event loop: a hung loop stops the pings and systemd
        restarts the service."""
        if self.watchdog_seconds is None:
            return
        log.info("systemd: watchdog ping every %.1fs", self.watchdog_seconds)
        self._spawn(self._watchdog(self.watchdog_seconds), "systemd-watchdog")

    async def ready(self, status_source: Callable[[], Awaitable[str]]) -> None:
        """READY=1 with a first STATUS now, then a fresh STATUS every STATUS_SECONDS."""
        if not self.enabled:
            return
        self.send(ready="1", status=await _status(status_source))
        self._spawn(self._status_loop(status_source), "systemd-status")

    def stopping(self, status: str = "stopping") -> None:
        """STOPPING=1: systemd shows the unit as deactivating while the stages run."""
        for task in self._tasks:
            if task.get_name() == "systemd-status":
                task.cancel()
        self.send(stopping="1", status=status)

    async def close(self) -> None:
        """Stop the pings (the very last thing before the process exits) and the socket."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=name))  # type: ignore[arg-type]

    async def _watchdog(self, every: float) -> None:
        while True:
            self.send(watchdog="1")
            await asyncio.sleep(every)

    async def _status_loop(self, source: Callable[[], Awaitable[str]]) -> None:
        while True:
            await asyncio.sleep(STATUS_SECONDS)
            self.send(status=await _status(source))


async def _status(source: Callable[[], Awaitable[str]]) -> str:
    """One line for STATUS=: a newline would end the field (and start a bogus one)."""
    try:
        text = await source()
    except Exception as exc:  # a status line is never worth a crash
        text = f"status unavailable: {exc}"
    return " ".join(text.split())[:STATUS_MAX_CHARS]
