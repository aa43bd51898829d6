"""The ASGI servers side by side, each embedded in the real daemon: limits, idle wake-ups, /smss.

For each candidate the daemon runs as a child process (`python bench/http_servers.py --daemon
NAME --config X`) with `daemon.app.lifecycle.ApiServer` swapped for a small adapter that serves the
same app on the same bound socket, so every figure is the whole daemon's, not a toy app's:

- limits: what a client sees when it sends a 64 MiB header (4 at once; the daemon's RSS growth),
  sends nothing, drips a header line every 0.5 s, or idles after one answer (seconds until the
  server closes, ">N" for never within the probe), and how many of 1,500 idle sockets the daemon
  holds open while an existing client and a new one ask /api/health;
- idle: wake-ups a second of the whole process (voluntary + involuntary context switches of
  every thread, /proc/PID/task/*/status) over 30 s with nothing happening;
- POST /smss: requests a second over 16 keep-alive connections (bench/http_smss.py's client).

"shopbell" is daemon.api.server.ApiServer (granian, embedded, with the [api] limits);
"uvicorn-httptools" is the server as it was before the limits. uvicorn and hypercorn are not
the daemon's dependencies: pip install uvicorn httptools hypercorn to run their rows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench._daemon import (  # noqa: E402
    Daemon,
    base_config,
    code_line,
    fd_kinds,
    free_port,
    machine_line,
    proc_sample,
    wait_quiet,
)
from bench.http_smss import load, smss_request  # noqa: E402

NAMES = ("shopbell", "uvicorn-httptools", "uvicorn-h11", "hypercorn")
HEADER_TIMEOUT = 3.0  # short, so that each probe takes seconds
KEEPALIVE_TIMEOUT = 2.0
MAX_CONNECTIONS = 256
PROBE_LIMIT = 12.0  # a probe that has not been closed by then says ">12"
IDLE_SOCKETS = 1500
BIG_HEADER = 64 * 1024 * 1024

# -- the adapters: ApiServer(app, sock, **limits), start(), stop(timeout), bound_port ----------


class _Adapter:
    def __init__(self, app: Any, sock: socket.socket, **limits: Any) -> None:
        self.app, self.sock, self.limits = app, sock, limits
        self.bound_port: int = sock.getsockname()[1]
        self.task: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.serve())
        await asyncio.sleep(0.5)  # a bench: the readiness probe retries anyway

    async def serve(self) -> None:
        raise NotImplementedError

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109
        self.request_stop()
        if self.task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.task, timeout)
        self.sock.close()

    def request_stop(self) -> None:
        raise NotImplementedError


class _Uvicorn(_Adapter):
    http = "httptools"

    def config_kwargs(self) -> dict[str, Any]:
        return {"forwarded_allow_ips": "127.0.0.1,::1"}  # as the daemon had it

    async def serve(self) -> None:
        import uvicorn

        class Embedded(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):  # type: ignore[no-untyped-def]
                yield

        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            ws="none",
            http=self.http,
            **self.config_kwargs(),
        )
        self.server = Embedded(config)
        await self.server.serve(sockets=[self.sock])

    def request_stop(self) -> None:
        self.server.should_exit = True


class _UvicornH11(_Uvicorn):
    http = "h11"

    def config_kwargs(self) -> dict[str, Any]:
        return {
            "proxy_headers": False,
            "h11_max_incomplete_event_size": self.limits["max_header_bytes"],
            "timeout_keep_alive": self.limits["keepalive_timeout"],
            # Answers 503 beyond it; it does not stop accepting.
            "limit_concurrency": self.limits["max_connections"],
        }


class _Hypercorn(_Adapter):
    async def serve(self) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"fd://{os.dup(self.sock.fileno())}"]
        config.h11_max_incomplete_size = self.limits["max_header_bytes"]
        config.keep_alive_timeout = self.limits["keepalive_timeout"]
        config.include_server_header = False
        config.accesslog = None
        config.errorlog = logging.getLogger("bench.hypercorn")
        self.stopping = asyncio.Event()
        await serve(self.app, config, shutdown_trigger=self.stopping.wait, mode="asgi")

    def request_stop(self) -> None:
        self.stopping.set()


def adapter(name: str) -> Callable[..., Any]:
    if name == "shopbell":
        from daemon.api.server import ApiServer

        return ApiServer
    return {
        "uvicorn-httptools": _Uvicorn,
        "uvicorn-h11": _UvicornH11,
        "hypercorn": _Hypercorn,
    }[name]


def run_daemon(name: str, config: str) -> None:
    """The child: the daemon, its API served by candidate `name`."""
    import daemon.app.lifecycle
    from daemon.admin.cli import cli

    if name != "shopbell":
        chosen = adapter(name)
        defaults = {
            "max_header_bytes": 16_384,
            "header_timeout": HEADER_TIMEOUT,
            "keepalive_timeout": KEEPALIVE_TIMEOUT,
            "max_connections": MAX_CONNECTIONS,
        }

        def make(app: Any, sock: socket.socket, **limits: Any) -> Any:
            return chosen(app, sock, **{**defaults, **limits})

        daemon.app.lifecycle.ApiServer = make  # type: ignore[assignment,misc]
    cli(["--config", config, "run"], prog_name="shopbell")


# -- the probes --------------------------------------------------------------------------------


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the peer closed (or `limit`), and the first bytes it answered."""
    began, first = time.monotonic(), b""
    sock.settimeout(0.25)
    while time.monotonic() - began < limit:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not data:
            break
        first = first or data
    return time.monotonic() - began, first


def _shown(seconds: float) -> str:
    return f">{PROBE_LIMIT:.0f}" if seconds >= PROBE_LIMIT else f"{seconds:.1f}"


def _status(answer: bytes) -> str:
    return answer[9:12].decode() if answer.startswith(b"HTTP/1.") else "closed"


def probe_big_headers(port: int, pid: int) -> str:
    """4 clients each send a 64 MiB header at once; what they read and the daemon's growth."""
    rss0 = proc_sample(pid).rss_kib
    peak = [rss0]
    answers: list[str] = []

    def one() -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: ")
            chunk, sent = b"a" * 65536, 0
            with contextlib.suppress(OSError):
                while sent < BIG_HEADER:
                    sock.sendall(chunk)
                    sent += len(chunk)
                sock.sendall(b"\r\n\r\n")
            _, answer = _read_until_closed(sock, PROBE_LIMIT)
            answers.append(f"{_status(answer)} after {sent / 1048576:.1f} MiB")

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        peak.append(proc_sample(pid).rss_kib)
        time.sleep(0.05)
    growth = (max(peak) - rss0) / 1024
    return f"{sorted(set(answers))}, RSS +{growth:.0f} MiB"


def probe_close(port: int, first: bytes, drip: bool = False) -> float:
    """Seconds until the server closes a connection that sent `first` (and drips, if told)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(first)
        if not drip:
            return _read_until_closed(sock, PROBE_LIMIT)[0]
        began = time.monotonic()
        sock.settimeout(0.5)
        while time.monotonic() - began < PROBE_LIMIT:
            try:
                if not sock.recv(65536):
                    break
            except TimeoutError:
                try:
                    sock.sendall(b"X-Drip: 1\r\n")  # one more header line, never the end
                except OSError:
                    break
            except OSError:
                break
        return time.monotonic() - began


def _health_on(sock: socket.socket) -> float:
    """Seconds for GET /api/health on `sock`; PROBE_LIMIT when it does not answer 200."""
    began = time.monotonic()
    sock.settimeout(PROBE_LIMIT)
    try:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = sock.recv(65536)
    except OSError:
        return PROBE_LIMIT
    return time.monotonic() - began if data.startswith(b"HTTP/1.1 200") else PROBE_LIMIT


class _Watch(threading.Thread):
    """While the flood lasts: the daemon's peak of open client sockets, and an existing
    keep-alive client asking /api/health every 0.5 s (its slowest answer)."""

    def __init__(self, port: int, pid: int) -> None:
        super().__init__(daemon=True)
        self.port, self.pid = port, pid
        self.client = socket.create_connection(("127.0.0.1", port))
        self.slowest = _health_on(self.client)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.peak = max(self.peak, fd_kinds(self.pid, self.port)["inbound"])
            self.slowest = max(self.slowest, _health_on(self.client))
        self.client.close()


def probe_idle_sockets(port: int, pid: int) -> str:
    """1,500 idle sockets: how many the daemon holds; /api/health for an old and a new client."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
    watch = _Watch(port, pid)
    watch.start()
    idle = []
    for _ in range(IDLE_SOCKETS):
        idle.append(socket.create_connection(("127.0.0.1", port)))
    time.sleep(1.0)
    began = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=PROBE_LIMIT) as fresh:
            new = min(PROBE_LIMIT, _health_on(fresh) + (time.monotonic() - began))
    except OSError:
        new = PROBE_LIMIT
    watch.done.set()
    watch.join()
    for sock in idle:
        sock.close()
    return (
        f"peak held {watch.peak}; health: existing client slowest {_shown(watch.slowest)} s, "
        f"new client {_shown(new)} s"
    )


# -- wake-ups and throughput -------------------------------------------------------------------


def switches(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def wakeups(pid: int, seconds: float) -> float:
    before = switches(pid)
    time.sleep(seconds)
    return (switches(pid) - before) / seconds


def smss_rate(port: int, pid: int, n: int, runs: int) -> str:
    make = functools.partial(smss_request, port)
    asyncio.run(load("warm-up", port, pid, make, n // 5, 0))
    rates, first = [], n
    for run in range(runs):
        result = asyncio.run(load(f"run {run}", port, pid, make, n, first))
        first += n
        rates.append(result.count / result.seconds)
        if set(result.statuses) - {200, 201}:
            return f"NOT OK: {dict(result.statuses)}"
    return f"{statistics.median(rates):,.0f} req/s (median of {runs})"


class CandidateDaemon(Daemon):
    """The daemon, started through this script's --daemon mode with candidate `name`."""

    def __init__(self, folder: Path, config: dict[str, dict[str, Any]], name: str) -> None:
        super().__init__(folder, config, name=name)
        self.name = name

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPBELL_", "TWILIO_"))}
        env["PYTHONUNBUFFERED"] = "1"
        config = str(self.config_path)
        command = [sys.executable, __file__, "--daemon", self.name, "--config", config]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )


@dataclass
class Row:
    name: str
    figures: dict[str, str]


def measure(name: str, folder: Path, idle_seconds: float, n: int, runs: int) -> Row:
    port = free_port()
    api = {
        "header_timeout_seconds": HEADER_TIMEOUT,
        "keepalive_timeout_seconds": KEEPALIVE_TIMEOUT,
        "max_connections": MAX_CONNECTIONS,
    }
    config = base_config(folder, port, sms={"chain": ["console"]}, api=api)
    config["logging"]["level"] = "WARNING"
    daemon = CandidateDaemon(folder, config, name=name)
    figures: dict[str, str] = {}
    daemon.start()
    try:
        daemon.wait_ready()
        time.sleep(3.0)  # let the start's own work settle
        figures["idle wake-ups/s"] = f"{wakeups(daemon.pid, idle_seconds):.1f}"
        figures["idle RSS MiB"] = f"{proc_sample(daemon.pid).rss_kib / 1024:.1f}"
        wait_quiet(patience=20.0)
        figures["POST /smss"] = smss_rate(port, daemon.pid, n, runs)
        figures["64 MiB header x4"] = probe_big_headers(port, daemon.pid)
        figures["sends nothing: closed after s"] = _shown(probe_close(port, b""))
        drip = probe_close(port, b"GET /api/health HTTP/1.1\r\n", drip=True)
        figures["drips a header: closed after s"] = _shown(drip)
        answered = probe_close(port, b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        figures["idle after an answer: closed after s"] = _shown(answered)
        figures[f"{IDLE_SOCKETS} idle sockets"] = probe_idle_sockets(port, daemon.pid)
    except Exception as exc:  # a candidate that breaks still gets its row
        figures["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        daemon.stop()
    return Row(name, figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(NAMES), help=f"from {', '.join(NAMES)}")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle measured")
    parser.add_argument("-n", type=int, default=3000, help="POST /smss requests per run")
    parser.add_argument("--runs", type=int, default=3, help="POST /smss runs per server")
    args = parser.parse_args()
    print(
        f"HTTP servers embedded in shopbell: header timeout {HEADER_TIMEOUT:g} s, keep-alive "
        f"{KEEPALIVE_TIMEOUT:g} s, max {MAX_CONNECTIONS} connections, header cap 16 KiB"
    )
    print(machine_line())
    print(code_line())
    rows = []
    for name in args.names:
        with tempfile.TemporaryDirectory(prefix=f"shopbell-{name}-") as tmp:
            row = measure(name, Path(tmp), args.idle, args.n, args.runs)
        rows.append(row)
        print(f"\n{name}", flush=True)
        for key, value in row.figures.items():
            print(f"  {key:<38} {value}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--daemon":
        run_daemon(sys.argv[2], sys.argv[4])
    else:
        main()
