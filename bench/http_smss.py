"""POST /smss on loopback: 16 keep-alive connections, a new contact per request, a real daemon.

The daemon runs as `python -m daemon --config X run` on the console provider (chain =
["console"], its default limits), so each request does what production does: JSON body
validation, the phone number parsed with phonenumbers, the per-minute limit query, the write
(message + event, one fsync'd commit), and the dispatcher then prints it to the console log.

The load generator is a plain asyncio HTTP/1.1 client in this process (pre-built request bytes,
one closed loop per connection). httpx was tried first and costs about 1-2 ms of CPU per
request on this machine, more than the daemon itself, so it would have measured itself. To show
the generator is not the limit, the script first runs it against a trivial HTTP server in
another process (its ceiling), then against GET /api/health on the daemon, then the real run.
`--wrk` repeats the /smss run with wrk (if installed) as a cross-check.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# `python bench/x.py` puts bench/ first on sys.path; keep only the repository root, so a
# module in bench/ can never shadow a library's (bench/http.py once shadowed `http`).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench._daemon import (  # noqa: E402
    API_TOKEN,
    Daemon,
    OtherLoad,
    base_config,
    code_line,
    free_port,
    machine_line,
    proc_sample,
    wait_quiet,
)

CONNECTIONS = 16
MESSAGE = "Bags are in at the shop: 3 surprise bags, pick up 18:00-19:00"


def contact(i: int) -> str:
    # +44 74xx: UK mobiles, all valid for phonenumbers; one new number per request.
    return f"+4474{i:08d}"


def smss_request(port: int, i: int) -> bytes:
    body = json.dumps({"contact": contact(i), "subject": "", "message": MESSAGE}).encode()
    head = (
        f"POST /smss HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {API_TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def get_request(port: int, path: str) -> Callable[[int], bytes]:
    raw = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    return lambda i: raw


# -- the load generator ----------------------------------------------------------------------


class _Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        del self.buffer[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionError("closed by the server"))

    async def call(self, request: bytes) -> int:
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        return await self.waiter


@dataclass
class LoadResult:
    name: str
    count: int
    seconds: float
    latencies: list[float]
    statuses: Counter[int]
    cpu: float  # this process's CPU seconds during the run
    server_cpu: float  # the server's CPU seconds during the run
    server_rss_mib: float
    server_hwm_mib: float
    others: float  # cores the rest of the machine kept busy meanwhile

    def line(self) -> str:
        cuts = statistics.quantiles(self.latencies, n=100)
        bad = {s: c for s, c in self.statuses.items() if s not in (200, 201)}
        return (
            f"{self.name:<26} {self.count / self.seconds:>7,.0f} req/s  p50 "
            f"{cuts[49] * 1e3:>5.1f} ms  p95 {cuts[94] * 1e3:>5.1f} ms  p99 "
            f"{cuts[98] * 1e3:>5.1f} ms" + (f"   NOT OK: {bad}" if bad else "")
        )

    def cpu_line(self) -> str:
        return (
            f"{'':<26} server {self.server_cpu / self.seconds:.2f} cores "
            f"(RSS {self.server_rss_mib:.1f} MiB, peak {self.server_hwm_mib:.1f}), "
            f"generator {self.cpu / self.seconds:.2f} cores, others {self.others:.2f} cores"
        )


async def load(
    name: str,
    port: int,
    server_pid: int,
    make: Callable[[int], bytes],
    count: int,
    first: int = 0,
    *,
    fresh: bool = False,
) -> LoadResult:
    """`count` requests over CONNECTIONS connections, each a closed loop; index i from first.
    `fresh`: a new connection for every request (timed with it), for a server that closes
    each one after its answer (gunicorn's sync workers do)."""
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(CONNECTIONS):
        _, client = await loop.create_connection(_Client, "127.0.0.1", port)
        clients.append(client)
    requests = [make(first + i) for i in range(count)]  # built before the clock starts
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    nxt = iter(requests)

    async def worker(client: _Client) -> None:
        for request in nxt:
            began = time.perf_counter()
            if fresh:
                if client.transport is not None:
                    client.transport.close()
                _, client = await loop.create_connection(_Client, "127.0.0.1", port)
            status = await client.call(request)
            latencies.append(time.perf_counter() - began)
            statuses[status] += 1
        if fresh and client.transport is not None:
            client.transport.close()

    server0, busy = proc_sample(server_pid), OtherLoad()
    cpu0, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    server = proc_sample(server_pid)
    server_cpu = server.cpu - server0.cpu
    others = busy.cores(cpu + server_cpu)
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    return LoadResult(
        name,
        count,
        seconds,
        latencies,
        statuses,
        cpu,
        server_cpu,
        server.rss_kib / 1024,
        server.hwm_kib / 1024,
        others,
    )


# -- a trivial server, for the generator's own ceiling ---------------------------------------

_TRIVIAL_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 35\r\n\r\n"
    b'{"success": true, "message_id": 1}\n'
)


class _Trivial(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end]).lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            self.transport.write(_TRIVIAL_ANSWER)  # type: ignore[attr-defined]


def trivial_server(port: int) -> None:
    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(_Trivial, "127.0.0.1", port)
        print("listening", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


# -- wrk, as a cross-check -------------------------------------------------------------------

WRK_SCRIPT = """
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"contact": "+4474%%08d", "subject": "", "message": "%s"}',
                             %d + counter)
  return wrk.format("POST", "/smss", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer %s",
  }, body)
end
done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "%%-26s %%7.0f req/s  p50 %%5.1f ms  p95 %%5.1f ms  p99 %%5.1f ms"
      .. "   (%%d requests, %%d errors)\\n",
    "wrk POST /smss", summary.requests / s, latency:percentile(50) / 1e3,
    latency:percentile(95) / 1e3, latency:percentile(99) / 1e3, summary.requests, bad))
end
"""


def run_wrk(port: int, seconds: int, first: int, folder: Path) -> str:
    script = folder / "smss.lua"
    script.write_text(WRK_SCRIPT % (MESSAGE, first, API_TOKEN))
    command = [
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}/smss",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


# -- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=5000, help="measured requests per run")
    parser.add_argument("--warmup", type=int, default=1000, help="requests before measuring")
    parser.add_argument("--runs", type=int, default=3, help="measured /smss runs on one daemon")
    parser.add_argument("--wrk", action="store_true", help="also run wrk (10 s) as a cross-check")
    parser.add_argument(
        "--event-loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the daemon's [api] event_loop (default asyncio, the daemon's default)",
    )
    parser.add_argument(
        "--peer",
        choices=("seed",),
        help="also run the seed's own stack (bench/seed_sms_peer.py: Flask, Flask-SQLAlchemy, "
        "Flask-Limiter, gunicorn with 2 sync workers, SQLite WAL) with the same client; needs "
        "pip install -e '.[bench]'",
    )
    args = parser.parse_args()
    if args.n < 100:
        sys.exit("n must be at least 100 (percentiles)")

    print(
        f"shopbell POST /smss: {CONNECTIONS} connections, n={args.n} per run after "
        f"{args.warmup} warm-up, {args.runs} runs, event loop {args.event_loop}"
    )
    print(machine_line())
    print(code_line())
    quiet = wait_quiet()
    if quiet >= 0.15:
        print(f"warning: other programs keep {quiet:.2f} cores busy; figures will be low")

    # 1. The generator's own ceiling, against a server that does nothing.
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--trivial-server", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        make = functools.partial(smss_request, port)
        asyncio.run(load("warm-up", port, server.pid, make, args.warmup))
        result = asyncio.run(load("trivial server (ceiling)", port, server.pid, make, args.n))
        print(result.line())
        print(result.cpu_line())
    finally:
        server.terminate()
        server.wait()

    smss_best = 0.0
    with tempfile.TemporaryDirectory(prefix="shopbell-http-") as tmp:
        folder = Path(tmp)
        port = free_port()
        config = base_config(
            folder, port, sms={"chain": ["console"]}, api={"event_loop": args.event_loop}
        )
        daemon = Daemon(folder, config)
        daemon.start()
        try:
            daemon.wait_ready()
            # 2. The daemon's floor: a public GET through uvicorn, FastAPI and a database read.
            health = get_request(port, "/api/health")
            asyncio.run(load("warm-up", port, daemon.pid, health, args.warmup))
            result = asyncio.run(load("GET /api/health", port, daemon.pid, health, args.n))
            print(result.line())
            print(result.cpu_line())

            # 3. The real thing: a new contact each time, so nothing is refused.
            make = functools.partial(smss_request, port)
            first = 0
            asyncio.run(load("warm-up", port, daemon.pid, make, args.warmup, first))
            first += args.warmup
            for run in range(1, args.runs + 1):
                wait_quiet(patience=30.0)
                result = asyncio.run(
                    load(f"POST /smss (run {run})", port, daemon.pid, make, args.n, first)
                )
                smss_best = max(smss_best, result.count / result.seconds)
                first += args.n
                print(result.line(), flush=True)
                print(result.cpu_line(), flush=True)

            if args.wrk:
                if shutil.which("wrk") is None:
                    print("wrk is not installed; skipped")
                else:
                    wait_quiet(patience=30.0)
                    before, busy = daemon.sample(), OtherLoad()
                    started = time.perf_counter()
                    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                    print(run_wrk(port, 10, 50_000_000, folder), flush=True)
                    children = resource.getrusage(resource.RUSAGE_CHILDREN)
                    seconds = time.perf_counter() - started
                    after = daemon.sample()
                    wrk_cpu = (children.ru_utime + children.ru_stime) - (
                        children0.ru_utime + children0.ru_stime
                    )
                    others = busy.cores(after.cpu - before.cpu + wrk_cpu)
                    print(
                        f"{'':<26} server {(after.cpu - before.cpu) / seconds:.2f} cores, "
                        f"wrk {wrk_cpu / seconds:.2f} cores, others {others:.2f} cores"
                    )
        finally:
            code = daemon.stop()
            if code != 0:
                print(f"daemon exited with {code}:\n{daemon.tail()}")
        if args.peer == "seed":
            seed_best = seed_runs(folder, args.n, args.warmup, args.runs)
            print(
                f"{'shopbell / the seed':<26} {smss_best / seed_best:7.1f}x  (best runs; the "
                "issue asks at least 4x)"
            )
    bare_runs(args.n, args.warmup, args.runs, smss_best)


def bare_runs(n: int, warmup: int, runs: int, smss_best: float) -> None:
    """A bare FastAPI route (bench/bare_fastapi.py) under granian, and shopbell's share of it."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "granian"), "--interface", "asgi",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--loop", "asyncio",
        "--log-level", "warning", "bench.bare_fastapi:app",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
    try:
        wait_port(port, timeout=30)
        make = functools.partial(smss_request, port)
        asyncio.run(load("warm-up", port, server.pid, make, warmup))
        best = 0.0
        for run in range(1, runs + 1):
            wait_quiet(patience=30.0)
            result = asyncio.run(load(f"bare FastAPI (run {run})", port, server.pid, make, n))
            best = max(best, result.count / result.seconds)
            print(result.line(), flush=True)
        print(
            f"{'shopbell / bare FastAPI':<26} {smss_best / best:7.0%}   (best runs; the issue "
            "asks at least 25 %)"
        )
    finally:
        server.terminate()
        server.wait()


def seed_runs(folder: Path, n: int, warmup: int, runs: int) -> float:
    """The seed's stack under gunicorn (2 sync workers), the same client and contacts; its
    best requests a second."""
    port = free_port()
    env = dict(os.environ, SEED_DB=str(folder / "seed.db"))
    command = [
        sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
        "--log-level", "warning", "bench.seed_sms_peer:app",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_port(port, timeout=30)
        make = functools.partial(smss_request, port)
        asyncio.run(load("warm-up", port, server.pid, make, warmup, fresh=True))
        first, best = warmup, 0.0
        for run in range(1, runs + 1):
            wait_quiet(patience=30.0)
            result = asyncio.run(
                load(f"seed POST /smss (run {run})", port, server.pid, make, n, first, fresh=True)
            )
            first += n
            best = max(best, result.count / result.seconds)
            # The server's CPU is the gunicorn master's only (its workers are its children).
            print(result.line(), flush=True)
        return best
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--trivial-server":
        trivial_server(int(sys.argv[2]))
    else:
        main()
