"""Attacks anyone on the network can make at the HTTP door, each against a real daemon.

A 64 MiB header, 1,500 idle sockets and 300 connections that never finish their header:
each is refused or cut off by the [api] limits, and /api/health keeps answering meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon.conftest import DaemonProcess
from tests.helpers import free_port

HEALTH = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
BIG_HEADER_BYTES = 64 * 1024 * 1024
IDLE_SOCKETS = 1500
SLOW_CLIENTS = 300
HEADER_TIMEOUT = 1.5


def start_daemon(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], api: str
) -> tuple[DaemonProcess, int]:
    port = free_port()
    config = write_config(f"[api]\nport = {port}\n{api}")
    daemon = spawn("--config", str(config), "run")
    daemon.wait_ready(port)
    return daemon, port


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"process {pid} has no VmRSS")


def open_sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


def health_seconds(port: int, timeout: float = 10.0) -> float:
    """A new client's GET /api/health: seconds to its 200 (an error if it gets none)."""
    began = time.monotonic()
    response = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=timeout)
    assert response.status_code == 200, response.text
    return time.monotonic() - began


class HealthWatch(threading.Thread):
    """Asks /api/health every 0.3 s while an attack runs; keeps the slowest answer.

    `keep_alive`: on one connection opened before the attack (an existing client);
    otherwise a new connection each time (a client arriving during the attack).
    """

    def __init__(self, port: int, *, keep_alive: bool) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0)
        self.keep_alive = keep_alive
        self.slowest = 0.0
        self.answers = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        if keep_alive:
            self.ask()  # the connection exists before the attack starts

    def ask(self) -> None:
        began = time.monotonic()
        try:
            if self.keep_alive:
                status = self.client.get("/api/health").status_code
            else:
                status = httpx.get(
                    f"http://127.0.0.1:{self.port}/api/health", timeout=10
                ).status_code
        except httpx.HTTPError as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")
            return
        if status != 200:
            self.failures.append(f"status {status}")
            return
        self.answers += 1
        self.slowest = max(self.slowest, time.monotonic() - began)

    def run(self) -> None:
        self.ask()  # once at the attack's start, then every 0.3 s until its end
        while not self.stop.wait(0.3):
            self.ask()
        self.client.close()

    def __enter__(self) -> HealthWatch:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.join(timeout=20)


@pytest.fixture
def many_files() -> Iterator[None]:
    """Room for 1,500 sockets in this process (the daemon's limit is its own)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = IDLE_SOCKETS + 500
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def send_big_header(port: int, results: list[str]) -> None:
    """Send a 64 MiB header; record the status line read, or 'closed' if cut off."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sent = 0
        try:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            chunk = b"a" * 65536
            while sent < BIG_HEADER_BYTES:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass  # the server stopped reading: it refused the header
        try:
            answer = sock.recv(4096)
        except OSError:
            answer = b""
        results.append(answer[:12].decode(errors="replace") if answer else f"closed at {sent}")


def test_four_64_mib_headers_are_refused_and_memory_stays_flat(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path]
) -> None:
    daemon, port = start_daemon(spawn, write_config, "")
    pid = daemon.proc.pid
    before = rss_mib(pid)
    results: list[str] = []
    senders = [threading.Thread(target=send_big_header, args=(port, results)) for _ in range(4)]
    peak = before
    with HealthWatch(port, keep_alive=False) as watch:
        for sender in senders:
            sender.start()
        while any(sender.is_alive() for sender in senders):
            peak = max(peak, rss_mib(pid))
            time.sleep(0.05)

    # Before the limit, each 64 MiB header was read whole and answered 200 (RSS +300 MiB).
    assert len(results) == 4
    for result in results:
        assert result.startswith(("HTTP/1.1 431", "closed")), results
    assert peak - before < 16, f"RSS went from {before:.0f} to {peak:.0f} MiB"
    assert watch.failures == [] and watch.answers > 0
    assert watch.slowest < 3.0


def test_1500_idle_sockets_neither_exhaust_files_nor_block_health(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], many_files: None
) -> None:
    daemon, port = start_daemon(spawn, write_config, "header_timeout_seconds = 2\n")
    pid = daemon.proc.pid
    baseline = open_sockets(pid)
    idle: list[socket.socket] = []
    peak = 0
    try:
        with HealthWatch(port, keep_alive=True) as existing:
            for i in range(IDLE_SOCKETS):
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
                if i % 100 == 0:
                    peak = max(peak, open_sockets(pid))
            for _ in range(10):
                peak = max(peak, open_sockets(pid))
                time.sleep(0.2)
            # A client arriving now waits at most for slots freed by the header timeout.
            newcomer = health_seconds(port, timeout=15)
    finally:
        for sock in idle:
            sock.close()

    # Before the cap every idle socket was accepted and held (1,501 open in the daemon).
    assert peak - baseline <= 256 + 2, f"{peak - baseline} client sockets held by the daemon"
    assert existing.failures == [] and existing.answers > 0
    assert existing.slowest < 3.0
    assert newcomer < 10.0


def drip_headers(port: int, count: int, seconds: float) -> tuple[int, float]:
    """`count` clients that start a request and add a header line every 0.25 s, never
    ending it, for up to `seconds`: how many the server closed, and when the last was."""
    selector = selectors.DefaultSelector()
    clients = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        clients.append(sock)
    began, last, closed = time.monotonic(), 0.0, set()
    next_drip = began
    while time.monotonic() - began < seconds and len(closed) < count:
        for key, _ in selector.select(timeout=0.05):
            sock = key.fileobj
            try:
                data = sock.recv(4096)  # type: ignore[union-attr]
            except OSError:
                data = b""
            if not data:
                selector.unregister(sock)
                closed.add(sock)
                last = time.monotonic() - began
        if time.monotonic() >= next_drip:
            next_drip += 0.25
            for sock in clients:
                if sock not in closed:
                    with contextlib.suppress(OSError):
                        sock.send(b"X-Drip: 1\r\n")
    for sock in clients:
        sock.close()
    selector.close()
    return len(closed), last


def test_300_slow_headers_are_cut_off_at_the_header_timeout(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path]
) -> None:
    api = f"header_timeout_seconds = {HEADER_TIMEOUT}\nmax_connections = 512\n"
    daemon, port = start_daemon(spawn, write_config, api)
    with HealthWatch(port, keep_alive=False) as watch:
        closed, last = drip_headers(port, SLOW_CLIENTS, seconds=HEADER_TIMEOUT + 8)

    # Before the timeout a client that kept adding header lines was never disconnected.
    assert closed == SLOW_CLIENTS
    assert last < HEADER_TIMEOUT + 3
    assert watch.failures == [] and watch.answers > 0
    assert watch.slowest < 3.0
    assert daemon.proc.poll() is None
