"""Outbox dispatch: N queued messages through the real daemon, to the console or a fake Twilio.

Each scenario writes N `queued` messages into a fresh database with the storage functions
(`storage.messages.insert_message`: the message row and its `queued` event, as enqueue writes
them) *before* the daemon starts, so what is timed is dispatch alone: claim, send, record.
Then it starts `python -m daemon --config X run` as a subprocess and polls the database
read-only (its own WAL connection, every 20 ms) until every message is `sent`.

- msg/s: N / (last `sent_at` - first `sending` event), both times written by the daemon;
- CPU-s/1k: the daemon's utime + stime (all its threads, /proc/<pid>/stat) from the last poll
  before the first claim to the first poll that sees all sent (startup excluded), per 1,000
  messages; `cores` is that CPU over the window;
- peak RSS: VmHWM from /proc/<pid>/status at the end;
- others: CPU the rest of the machine used meanwhile (a test suite running beside skews it).

The fake Twilio (tests/peers/twilio.py) runs in this process, in its own threads. Its own
ceiling is measured first (16 keep-alive connections from another process), to show it is
not the limit.
"""

from __future__ import annotations

import argparse
import base64
import collections
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
# `python bench/x.py` puts bench/ first on sys.path; keep only the repository root, so a
# module in bench/ can never shadow a library's (bench/http.py once shadowed `http`).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench._daemon import (  # noqa: E402
    Daemon,
    OtherLoad,
    base_config,
    code_line,
    free_port,
    machine_line,
    wait_quiet,
)
from daemon.runtime.clock import utc_iso  # noqa: E402
from storage import migrations  # noqa: E402
from storage.connection import open_for_writing  # noqa: E402
from storage.messages import PRIORITY, NewMessage, insert_message  # noqa: E402
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, TwilioPeer  # noqa: E402

FROM_NUMBER = "+15005550006"
NO_LIMIT_RATE = 1_000_000.0
POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Scenario:
    name: str
    provider: str  # "console" or "twilio"
    concurrency: int
    latency: float = 0.0
    n: int = 0

    @property
    def ideal(self) -> float | None:
        return self.concurrency / self.latency if self.latency else None


@dataclass
class Result:
    scenario: Scenario
    rate: float
    window: float
    wall: float
    cpu: float
    hwm_mib: float
    threads: int
    sent: int
    failed: int
    peer_unique: int | None
    peer_dupes: int | None
    peer_missing: int | None
    bench_cpu: float
    others: float

    def line(self) -> str:
        s = self.scenario
        text = (
            f"{s.name:<22} {self.rate:>7,.0f} msg/s  {self.cpu / s.n * 1000:>5.2f} CPU-s/1k  "
            f"{self.cpu / self.window:>4.2f} cores  peak RSS {self.hwm_mib:>5.1f} MiB  "
            f"others {self.others:.2f} cores"
        )
        if s.ideal is not None:
            text += f"  {self.rate / s.ideal:.0%} of C/0.1s = {s.ideal:,.0f}/s"
        return text

    def check_line(self) -> str:
        s = self.scenario
        text = f"  n={s.n}: sent {self.sent}, failed {self.failed}"
        if self.peer_unique is not None:
            ok = self.peer_unique == s.n and not self.peer_dupes and not self.peer_missing
            text += (
                f"; fake Twilio got {self.peer_unique} distinct bodies, "
                f"{self.peer_dupes} duplicates, {self.peer_missing} missing "
                f"({'each exactly once' if ok else 'NOT each exactly once'})"
            )
        text += (
            f"; window {self.window:.2f}s, spawn to done {self.wall:.2f}s, "
            f"{self.threads} daemon threads, bench process {self.bench_cpu / self.wall:.2f} cores"
        )
        return text


def body(i: int) -> str:
    return f"Bench message {i:06d}: bags are in at the shop"


def prefill(database: Path, n: int) -> None:
    """N queued SMS, written as enqueue writes them (message row + its `queued` event)."""
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = open_for_writing(database)
    try:
        migrations.apply(db)
        now = utc_iso(datetime.now(UTC))
        db.conn.execute("BEGIN IMMEDIATE")
        for i in range(n):
            insert_message(
                db,
                NewMessage(
                    channel="sms",
                    recipient=f"+4474{i:08d}",
                    body=body(i),
                    kind="alert",
                    priority=PRIORITY["alert"],
                    encoding="gsm7",
                    segments=1,
                ),
                now,
            )
        db.conn.execute("COMMIT")
    finally:
        db.close()


def commit_rate(folder: Path, commits: int = 3000) -> float:
    """Single-row insert transactions per second, WAL + synchronous=FULL, on the same disk."""
    path = folder / "commit-rate.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT, body TEXT)")
        for i in range(50):  # warm up
            conn.execute("INSERT INTO t (at, body) VALUES (?, ?)", [str(i), "warm"])
        start = time.perf_counter()
        for i in range(commits):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t (at, body) VALUES (?, ?)", [str(i), "x" * 40])
            conn.execute("COMMIT")
        return commits / (time.perf_counter() - start)
    finally:
        conn.close()


# -- the fake Twilio's own ceiling -----------------------------------------------------------


def peer_client(port: int, count: int) -> None:
    """16 threads of keep-alive http.client POSTs to Messages.json; prints requests/s."""
    import http.client

    auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}

    def worker(share: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(share):
            form = urlencode({"To": f"+4474{i:08d}", "From": FROM_NUMBER, "Body": body(i)})
            conn.request("POST", path, form, headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 201, response.status

    threads = [threading.Thread(target=worker, args=(count // 16,)) for _ in range(16)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(count // 16 * 16 / (time.perf_counter() - start))


def peer_ceiling(count: int = 8000) -> tuple[float, float]:
    """What the fake Twilio in this process answers at most: (requests/s, its cores)."""
    with TwilioPeer() as peer:
        port = int(peer.base_url.rsplit(":", 1)[1])
        cpu0, start = time.process_time(), time.perf_counter()
        done = subprocess.run(
            [sys.executable, __file__, "--peer-client", str(port), str(count)],
            capture_output=True,
            text=True,
            check=True,
        )
        cores = (time.process_time() - cpu0) / (time.perf_counter() - start)
    return float(done.stdout.strip()), cores


# -- one scenario ----------------------------------------------------------------------------


def config_for(folder: Path, scenario: Scenario, peer: TwilioPeer | None) -> dict:
    sections: dict[str, dict] = {}
    if scenario.provider == "console":
        sections["sms"] = {"chain": ["console"]}
        sections["console"] = {
            "rate_per_second": NO_LIMIT_RATE,
            "concurrency": scenario.concurrency,
        }
    else:
        assert peer is not None
        sections["sms"] = {"chain": ["twilio"]}
        sections["twilio"] = {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "from_number": FROM_NUMBER,
            "base_url": peer.base_url,
            "timeout_seconds": 10.0,
            "rate_per_second": NO_LIMIT_RATE,
            "concurrency": scenario.concurrency,
        }
    return base_config(folder, free_port(), **sections)


def progress(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """(queued, sent, failed) as the daemon last committed them, from the counts its triggers
    keep (migration m018): a GROUP BY over every message every 20 ms would take a core of
    this machine from the daemon at 100,000 messages."""
    counts = dict(conn.execute("SELECT status, count FROM message_counts").fetchall())
    sent = counts.get("sent", 0) + counts.get("delivered", 0)
    return counts.get("queued", 0), sent, counts.get("failed", 0)


def run(scenario: Scenario, timeout: float) -> Result:
    n = scenario.n
    peer: TwilioPeer | None = None
    with tempfile.TemporaryDirectory(prefix="shopbell-dispatch-") as tmp:
        folder = Path(tmp)
        if scenario.provider == "twilio":
            peer = TwilioPeer().start()
            peer.latency = scenario.latency
        try:
            daemon = Daemon(folder, config_for(folder, scenario, peer))
            prefill(daemon.database, n)
            conn = sqlite3.connect(f"file:{daemon.database}?mode=ro", uri=True)
            bench_cpu0 = time.process_time()
            load = OtherLoad()
            daemon.start()
            try:
                before = daemon.sample()
                queued, sent, failed = n, 0, 0
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    sample = daemon.sample()
                    queued, sent, failed = progress(conn)
                    if queued == n:
                        before = sample  # nothing claimed yet: the CPU so far is startup
                    if sent + failed >= n:
                        break
                    if daemon.proc is not None and daemon.proc.poll() is not None:
                        raise RuntimeError(f"the daemon exited:\n{daemon.tail()}")
                    time.sleep(POLL_SECONDS)
                else:
                    raise RuntimeError(
                        f"{scenario.name}: {sent} of {n} sent after {timeout:.0f}s\n{daemon.tail()}"
                    )
                after = daemon.sample()
                bench_cpu = time.process_time() - bench_cpu0
                others = load.cores(after.cpu + bench_cpu)
                wall = time.monotonic() - daemon.started_at
                first, last = conn.execute(
                    "SELECT (SELECT min(at) FROM message_events WHERE state = 'sending'), "
                    "(SELECT max(sent_at) FROM messages)"
                ).fetchone()
                window = (
                    datetime.fromisoformat(last) - datetime.fromisoformat(first)
                ).total_seconds()
            finally:
                conn.close()
                daemon.stop()
        finally:
            if peer is not None:
                peer.stop()
        unique = dupes = missing = None
        if peer is not None:
            counts = collections.Counter(r.form.get("Body", "") for r in peer.sent)
            expected = {body(i) for i in range(n)}
            unique = sum(1 for b in counts if b in expected)
            dupes = sum(c - 1 for c in counts.values() if c > 1)
            missing = len(expected - counts.keys())
        return Result(
            scenario=scenario,
            rate=n / window,
            window=window,
            wall=wall,
            cpu=after.cpu - before.cpu,
            hwm_mib=after.hwm_kib / 1024,
            threads=after.threads,
            sent=sent,
            failed=failed,
            peer_unique=unique,
            peer_dupes=dupes,
            peer_missing=missing,
            bench_cpu=bench_cpu,
            others=others,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, help="messages per zero-latency scenario")
    parser.add_argument("--n", dest="n_opt", type=int, default=10_000, help="same as n")
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=10.0,
        help="each 100 ms scenario sends C/0.1s x this many messages (its ideal run time)",
    )
    parser.add_argument(
        "--only",
        default="console,twilio,latency",
        help="comma-separated scenario groups: console, twilio, latency, scale (Twilio 0 ms "
        "c=8 with 1,000, 10,000 and 100,000 queued, one after the other)",
    )
    args = parser.parse_args()
    n = args.n if args.n is not None else args.n_opt
    groups = set(args.only.split(","))

    scenarios: list[Scenario] = []
    if "console" in groups:
        scenarios.append(Scenario("console c=16", "console", 16, n=n))
    if "twilio" in groups:
        scenarios += [Scenario(f"twilio 0 ms c={c}", "twilio", c, n=n) for c in (8, 16)]
    if "scale" in groups:
        scenarios += [
            Scenario(f"twilio 0 ms c=8, {q:,} queued", "twilio", 8, n=q)
            for q in (1_000, 10_000, 100_000)
        ]
    if "latency" in groups:
        scenarios += [
            Scenario(
                f"twilio 100 ms c={c}", "twilio", c, 0.1, n=round(c / 0.1 * args.latency_seconds)
            )
            for c in (8, 32)
        ]

    print(f"shopbell outbox dispatch: n={n} (100 ms scenarios: {args.latency_seconds:g}s of ideal)")
    print(machine_line())
    print(code_line())
    quiet = wait_quiet()
    if quiet >= 0.15:
        print(f"warning: other programs keep {quiet:.2f} cores busy; figures will be low")
    with tempfile.TemporaryDirectory(prefix="shopbell-commit-") as tmp:
        commits = commit_rate(Path(tmp))
    if groups & {"twilio", "latency", "scale"}:
        ceiling, cores = peer_ceiling()
        print(
            f"{'fake Twilio ceiling':<22} {ceiling:>7,.0f} req/s (16 keep-alive connections "
            f"from another process; the fake used {cores:.2f} cores)"
        )
    for scenario in scenarios:
        wait_quiet(patience=30.0)
        result = run(scenario, timeout=max(60.0, scenario.n / 100))
        print(result.line(), flush=True)
        if scenario.provider == "console":
            print(
                f"{'  database commits':<22} {commits:>7,.0f} /s     (single-row inserts, WAL, "
                "synchronous=FULL, same disk)"
            )
        print(result.check_line(), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--peer-client":
        peer_client(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
