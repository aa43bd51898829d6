"""Fixtures for the TUI's tests: a real daemon on a temporary database, and app factories."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon.conftest import REPO, DaemonProcess
from tests.helpers import free_port
from tui.app import ShopbellApp
from tui.client import ApiClient

TOKEN = "tui-test-token-0123456789abcdef"
# The moment canned-data tests (snapshots) live in, so their screens never change by the day.
FIXED_NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


@dataclass
class LiveDaemon:
    """A `shopbell run` child process with its API on 127.0.0.1 and a known token."""

    url: str
    token: str
    port: int
    config: Path
    env: dict[str, str]
    process: DaemonProcess | None = None

    def start(self) -> None:
        self.process = DaemonProcess(["--config", str(self.config), "run"], self.env)
        self.process.wait_ready(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None

    def api(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A request of the test's own, as another program of the shop would make it."""
        response = httpx.request(
            method,
            f"{self.url}{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
            **kwargs,
        )
        assert response.status_code < 400, response.text
        return dict(response.json())


@pytest.fixture
def daemon_config(tmp_path: Path) -> Callable[[str], tuple[Path, int]]:
    """Write a config for a test daemon; extra TOML is appended. Returns (path, port)."""

    def write(extra: str = "") -> tuple[Path, int]:
        port = free_port()
        path = tmp_path / "config.toml"
        path.write_text(
            f'[paths]\ndata_dir = "{tmp_path / "data"}"\n\n'
            f'[api]\nport = {port}\ntoken = "{TOKEN}"\n\n'
            '[shop]\nname = "Corner Shop"\ntimezone = "UTC"\n\n' + extra,
            encoding="utf-8",
        )
        return path, port

    return write


@pytest.fixture
def live_daemon(
    daemon_config: Callable[[str], tuple[Path, int]], daemon_env: dict[str, str]
) -> Iterator[LiveDaemon]:
    """A running daemon (console SMS provider), stopped after the test."""
    path, port = daemon_config("")
    live = LiveDaemon(f"http://127.0.0.1:{port}", TOKEN, port, path, daemon_env)
    live.start()
    yield live
    live.stop()


@pytest.fixture
def daemon_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(REPO)
    return env


async def until(condition: Callable[[], Any], pilot: Any, seconds: float = 15.0) -> None:
    """Let the app run until `condition()` holds; fail after `seconds`."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


def make_app(
    url: str,
    token: str = TOKEN,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], datetime] | None = None,
    start_daemon: Callable[[], str] | None = None,
) -> ShopbellApp:
    """The app as `shopbell tui` builds it, with a fast health check for tests."""
    return ShopbellApp(
        ApiClient(url, token, transport=transport),
        local=True,
        start_daemon=start_daemon,
        clock=clock,
        health_seconds=0.2,
    )


Handler = dict[str, Any] | Callable[[httpx.Request], httpx.Response]


def canned(routes: dict[str, Handler]) -> httpx.MockTransport:
    """A transport answering "METHOD /path" (query ignored) from canned JSON, for snapshots.

    Unknown routes answer 404 in the API's error format, as the daemon would.
    """

    def handle(request: httpx.Request) -> httpx.Response:
        key = f"{request.method} {request.url.path}"
        answer = routes.get(key)
        if answer is None:
            body = {"success": False, "error": 404, "message": f"no route {key}"}
            return httpx.Response(404, json=body)
        if callable(answer):
            return answer(request)
        return httpx.Response(200, content=json.dumps(answer).encode(), headers=_JSON)

    return httpx.MockTransport(handle)


_JSON = {"content-type": "application/json"}
