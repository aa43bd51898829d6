"""sd_notify: a real daemon tells a real notify socket READY, STATUS, WATCHDOG and STOPPING."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.runtime.systemd import Notifier, socket_address, watchdog_interval
from tests.daemon.conftest import DaemonProcess
from tests.helpers import free_port, wait_until

Spawn = Callable[..., DaemonProcess]


class NotifySocket:
    """What systemd listens on: a unix datagram socket; every datagram received is kept."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.1)
        self.messages: list[dict[str, str]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._done.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append(fields)

    def first_with(self, key: str) -> dict[str, str]:
        """The first datagram that carries `key`, waiting for it to arrive."""
        return wait_until(
            lambda: next((message for message in list(self.messages) if key in message), None),
            lambda: f"{key} on the notify socket; got {self.messages}",
            interval=0.02,
        )

    def count(self, key: str) -> int:
        return sum(1 for message in list(self.messages) if key in message)

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def notify_path(tmp_path: Path) -> Iterator[tuple[str, NotifySocket]]:
    path = str(tmp_path / "notify")
    listener = NotifySocket(path)
    yield path, listener
    listener.close()


def _daemon(
    spawn: Spawn, write_config: Callable[..., Path], env: dict[str, str]
) -> tuple[DaemonProcess, int]:
    port = free_port()
    config = write_config(f"[api]\nport = {port}\n")
    process = spawn("--config", str(config), "run", env=env)
    process.wait_ready(port)
    return process, port


def test_daemon_tells_systemd_ready_status_watchdog_and_stopping(
    spawn: Spawn,
    write_config: Callable[..., Path],
    daemon_env: dict[str, str],
    notify_path: tuple[str, NotifySocket],
) -> None:
    path, systemd = notify_path
    env = daemon_env | {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    daemon, port = _daemon(spawn, write_config, env)

    ready = systemd.first_with("READY")
    assert ready["READY"] == "1"
    # `systemctl status shopbell` shows where it serves and what waits.
    assert ready["STATUS"] == f"serving on http://127.0.0.1:{port}; 0 queued"
    assert "watchdog ping every 0.1s" in daemon.output
    # Pings keep coming from the running loop (every 0.1 s here).
    seen = systemd.count("WATCHDOG")
    wait_until(lambda: systemd.count("WATCHDOG") >= seen + 3, "3 more pings", timeout=10)
    assert all(m["WATCHDOG"] == "1" for m in systemd.messages if "WATCHDOG" in m)

    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.output
    stopping = systemd.first_with("STOPPING")
    assert stopping == {"STOPPING": "1", "STATUS": "stopping"}
    # READY came once, before STOPPING.
    keys = [key for m in systemd.messages for key in m if key in ("READY", "STOPPING")]
    assert keys == ["READY", "STOPPING"]


def test_abstract_socket_and_no_watchdog_for_another_pid(
    spawn: Spawn, write_config: Callable[..., Path], daemon_env: dict[str, str]
) -> None:
    name = f"@shopbell-test-{secrets.token_hex(6)}"
    systemd = NotifySocket(socket_address(name))
    try:
        # WATCHDOG_PID names another process of the unit: this one must not ping.
        env = daemon_env | {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}
        daemon, _ = _daemon(spawn, write_config, env)
        assert systemd.first_with("READY")["READY"] == "1"
        time.sleep(0.5)
        assert systemd.count("WATCHDOG") == 0
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.output
        systemd.first_with("STOPPING")
    finally:
        systemd.close()


def test_without_systemd_nothing_is_sent_and_nothing_fails(
    spawn: Spawn, write_config: Callable[..., Path], daemon_env: dict[str, str]
) -> None:
    env = {k: v for k, v in daemon_env.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    daemon, _ = _daemon(spawn, write_config, env)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert "daemon.runtime.systemd" not in daemon.output


async def test_a_hung_loop_stops_the_pings(notify_path: tuple[str, NotifySocket]) -> None:
    path, systemd = notify_path
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"}, pid=os.getpid())
    notifier.start_watchdog()
    await asyncio.sleep(0.2)
    systemd.first_with("WATCHDOG")
    # The loop blocks (a stuck call in the loop thread): no pings while it is stuck, so
    # systemd's WatchdogSec runs out and it restarts the service.
    time.sleep(0.3)  # noqa: ASYNC251 - the stuck loop is the point; the last ping lands
    before = systemd.count("WATCHDOG")
    time.sleep(0.4)  # noqa: ASYNC251 - 20 ping intervals with the loop stuck
    assert systemd.count("WATCHDOG") == before
    await asyncio.sleep(0.2)  # unstuck: the pings resume
    await notifier.close()
    assert systemd.count("WATCHDOG") > before


async def test_a_vanished_socket_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}, pid=os.getpid())
    assert notifier.send(status="a") is False
    assert notifier.send(status="b") is False
    warnings = [r for r in caplog.records if "cannot notify" in r.getMessage()]
    assert len(warnings) == 1
    await notifier.close()


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 42) is None
    assert watchdog_interval({}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, 42) is None
    assert Notifier({}, pid=42).enabled is False
    assert Notifier({}, pid=42).send(ready="1") is True
    assert socket_address("@x") == b"\0x"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
