"""Helpers every test may import: waiting for a condition, sync or async, a free TCP port, and
an HTTP client holding a daemon's API token.

    wait_until(lambda: twilio.sent, "the SMS at the fake Twilio")            # sync, polls
    await wait_until_async(lambda: len(peer.received) == 2, "two polls")    # async, polls

Both return the first truthy value `check()` gives, and raise TimeoutError naming what was
awaited when it never comes. `what` may be a callable, called only on timeout, so the message
can say what was seen instead (`lambda: f"all final; got {statuses()}"`).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")

# Generous: a failing wait only costs time, a short one turns a slow machine into a red test.
TIMEOUT_SECONDS = 20.0


def wait_until(
    check: Callable[[], T],
    what: str | Callable[[], str],
    *,
    timeout: float = TIMEOUT_SECONDS,
    interval: float = 0.05,
) -> T:
    """Call `check` every `interval` seconds until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(_message(what, timeout))
        time.sleep(interval)


async def wait_until_async(
    check: Callable[[], T],
    what: str | Callable[[], str],
    *,
    # A parameter rather than the caller's asyncio.timeout, so the error names what it awaited.
    timeout: float = TIMEOUT_SECONDS,  # noqa: ASYNC109
    interval: float = 0.01,
) -> T:
    """`wait_until` for async tests: sleeps with asyncio, so the loop's tasks run meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(_message(what, timeout))
        await asyncio.sleep(interval)


def daemon_client(data_dir: Path, port: int) -> httpx.Client:
    """An HTTP client for the daemon on 127.0.0.1:`port`, with the API token it generated in
    `data_dir`; the caller closes it."""
    token = (data_dir / "api_token").read_text().strip()
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (nor, usually, soon after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _message(what: str | Callable[[], str], timeout: float) -> str:
    described = what() if callable(what) else what
    return f"timed out after {timeout:g}s waiting for {described}"
