"""The modem provider: 200 single-segment SMS through the real daemon to the modem simulator.

Each scenario writes N `queued` SMS into a fresh database (`bench.dispatch.prefill`, as
enqueue writes them) *before* the daemon starts, starts the modem simulator
(`providers.modem.simulator.ModemSimulator`, generic profile, status reports "delivered")
on a pty behind a symlink, then starts `python -m daemon --config X run` as a subprocess
with `[sms] chain = ["modem"]` and `[modem] port` = that symlink, and polls the database
read-only until every message is `sent` (or `delivered`).

The simulator runs in a thread of this process with its own event loop, so its CPU is not
the daemon's (it is printed, from /proc/self/task/<tid>/stat), and what it received can be
checked: each body exactly once.

- sends/s: what the modem (the simulator) accepted, (N - 1) / (last +CMGS answer - first),
  from its own timestamps; at 50 ms per send the ideal is 1 / 0.05 s = 20/s and the target
  is 95 % of it. "steady" is 1 / the median time between two +CMGS answers: the rate
  without the pauses (the longest one, and why sends were put back, are printed below it).
  `window` is the daemon's view: first `sending` event to last `sent_at`.
- CPU-s/1k: the daemon's utime + stime (all threads) from the last poll before the first
  segment reached the modem to the first poll that saw all sent (startup and modem init
  excluded), per 1,000 messages;
- peak RSS: the daemon's VmHWM at the end;
- start to all sent: from spawning the daemon to the last +CMGS answer (the simulator was
  already up); the figure to compare with other SMS daemons at zero latency.

Rate limits. `[modem] segments_per_minute` paces AT+CMGS in the provider; the config accepts
at most 6,000 (100/s), above the 20/s a 50 ms modem can do but not the 0 ms simulator. So
every scenario runs twice: "cfg 6000/min" with the highest value the config accepts, and
"100000/min" where the daemon is started through a launcher in this script that hands
ModemProvider 100,000 segments/minute instead of the config's value (nothing in the
repository changes; the config file still says 6,000). The router's own bucket for the modem
(`MODEM_MESSAGE_RATE`, 100/s) is left as it is. `--no-status-reports` runs with
`[modem] status_reports = false`, to show what reading the reports costs the sends.

- launch to first send: from spawning the daemon to the simulator's first +CMGS answer
  (Python start-up, the start sequence, the modem's initialisation).
- inbound (`--only inbound`): N messages are on the simulator's SIM before the daemon starts
  (`ModemSimulator.preload`, no +CMTI); launch to first stored and to all N stored, from the
  rows' own `received_at` (written in the transaction that stores each), the poll confirming
  they were committed. The check line says whether each body was stored once and the SIM was
  emptied.
- `--peer gammu`: gammu-smsd (files backend, tuned: GAMMU_TUNING) against the same simulator,
  the same N: the 0 ms outbound case (N files in its outbox before it starts; launch to its
  first and last +CMGS answer) and the inbound case (launch to its first and last inbox file,
  by the files' mtimes). Printed beside shopbell's at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# `python bench/x.py` puts bench/ first on sys.path; keep only the repository root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench._daemon import (  # noqa: E402
    CLOCK_TICKS,
    Daemon,
    OtherLoad,
    base_config,
    code_line,
    free_port,
    machine_line,
    wait_quiet,
)
from bench.dispatch import body, prefill, progress  # noqa: E402
from providers.modem.simulator import ModemSimulator  # noqa: E402

POLL_SECONDS = 0.02
CONFIG_MAX_SEGMENTS_PER_MINUTE = 6000.0  # daemon/config.py ModemSettings: le=6000
UNCAPPED_SEGMENTS_PER_MINUTE = 100_000.0

# `python -c` text that starts the daemon with ModemProvider given another segment rate.
LAUNCHER = """
import dataclasses, os, runpy, sys
# daemon/app/wiring.py imports the provider from its module when the modem is configured.
import providers.modem.provider as modem_provider
_Modem = modem_provider.ModemProvider
class _BenchModem(_Modem):
    def __init__(self, config, **kwargs):
        rate = float(os.environ["BENCH_MODEM_SEGMENTS_PER_MINUTE"])
        super().__init__(dataclasses.replace(config, segments_per_minute=rate), **kwargs)
modem_provider.ModemProvider = _BenchModem
sys.argv = ["daemon", *sys.argv[1:]]
runpy.run_module("daemon", run_name="__main__", alter_sys=True)
"""


class LaunchedDaemon(Daemon):
    """The daemon started through LAUNCHER (when `segments_per_minute` is given)."""

    def __init__(
        self,
        folder: Path,
        config: dict[str, dict[str, Any]],
        *,
        segments_per_minute: float | None = None,
    ) -> None:
        super().__init__(folder, config)
        self.segments_per_minute = segments_per_minute

    def start(self) -> None:
        if self.segments_per_minute is None:
            super().start()
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPBELL_", "TWILIO_"))}
        env["PYTHONUNBUFFERED"] = "1"
        env["BENCH_MODEM_SEGMENTS_PER_MINUTE"] = repr(self.segments_per_minute)
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, "--config", str(self.config_path), "run"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()


class SimulatorThread:
    """A ModemSimulator on its own event loop in its own thread."""

    def __init__(self, link: Path, latency: float, storage_slots: int = 30) -> None:
        self.sim = ModemSimulator(
            link=link,
            send_latency=latency,
            status_reports="delivered",
            storage_slots=storage_slots,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="modem-simulator", daemon=True)
        self.tid = 0
        self._ready = threading.Event()

    def _run(self) -> None:
        self.tid = threading.get_native_id()
        asyncio.set_event_loop(self.loop)
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> str:
        self.thread.start()
        self._ready.wait()
        return asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)

    def cpu(self) -> float:
        stat = Path(f"/proc/self/task/{self.tid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass(frozen=True)
class Scenario:
    name: str
    latency: float
    segments_per_minute: float
    uncapped: bool  # started through LAUNCHER with this rate instead of the config's
    n: int

    @property
    def ideal(self) -> float | None:
        return 1.0 / self.latency if self.latency else None


@dataclass
class Result:
    scenario: Scenario
    modem_rate: float
    window: float
    start_to_done: float
    start_to_first: float
    cpu: float
    cpu_window: float
    hwm_mib: float
    sent: int
    failed: int
    retried: int
    unique: int
    dupes: int
    missing: int
    sim_cpu: float
    others: float
    median_gap: float
    longest_gap: float
    longest_gap_at: float
    requeued: int
    requeue_reasons: list[tuple[str, int]]

    def line(self) -> str:
        s = self.scenario
        text = (
            f"{s.name:<24} {self.modem_rate:>6.1f} sends/s  "
            f"{self.cpu / s.n * 1000:>5.2f} CPU-s/1k  {self.cpu / self.cpu_window:>4.2f} cores  "
            f"peak RSS {self.hwm_mib:>5.1f} MiB  start to all sent {self.start_to_done:>6.2f}s"
            f"  launch to first send {self.start_to_first:.2f}s"
        )
        if s.ideal is not None:
            steady = 1.0 / self.median_gap
            text += (
                f"  {self.modem_rate / s.ideal:.1%} of {s.ideal:.0f}/s"
                f" (steady {steady:.1f}/s = {steady / s.ideal:.1%})"
            )
        return text

    def check_line(self) -> str:
        s = self.scenario
        ok = self.unique == s.n and not self.dupes and not self.missing
        return (
            f"  n={s.n}: sent {self.sent}, failed {self.failed}, retried {self.retried}; "
            f"simulator got {self.unique} distinct bodies, {self.dupes} duplicates, "
            f"{self.missing} missing ({'each exactly once' if ok else 'NOT each exactly once'}); "
            f"daemon window {self.window:.2f}s ({s.n / self.window:.1f} msg/s), "
            f"start to first send {self.start_to_first:.2f}s, simulator "
            f"{self.sim_cpu / self.start_to_done:.2f} cores, others {self.others:.2f} cores"
            f"\n  between +CMGS answers: median {self.median_gap * 1000:.1f} ms, longest "
            f"{self.longest_gap:.3f}s ({self.longest_gap_at:.2f}s after the first); "
            f"{self.requeued} sends put back in the queue"
            + "".join(f"\n    {count} x {reason}" for reason, count in self.requeue_reasons)
        )


def config_for(
    folder: Path, link: Path, segments_per_minute: float, event_loop: str, reports: bool
) -> dict[str, dict[str, Any]]:
    return base_config(
        folder,
        free_port(),
        sms={"chain": ["modem"]},
        modem={
            "port": str(link),
            "segments_per_minute": segments_per_minute,
            "status_reports": reports,
        },
        api={"event_loop": event_loop},
    )


def run(scenario: Scenario, timeout: float, event_loop: str, reports: bool = True) -> Result:
    n = scenario.n
    with tempfile.TemporaryDirectory(prefix="shopbell-modem-") as tmp:
        folder = Path(tmp)
        link = folder / "modem"
        simulator = SimulatorThread(link, scenario.latency)
        simulator.start()
        sim = simulator.sim
        try:
            configured = min(scenario.segments_per_minute, CONFIG_MAX_SEGMENTS_PER_MINUTE)
            daemon = LaunchedDaemon(
                folder,
                config_for(folder, link, configured, event_loop, reports),
                segments_per_minute=scenario.segments_per_minute if scenario.uncapped else None,
            )
            prefill(daemon.database, n)
            conn = sqlite3.connect(f"file:{daemon.database}?mode=ro", uri=True)
            sim_cpu0 = simulator.cpu()
            bench_cpu0 = time.process_time()
            load = OtherLoad()
            wall_start = datetime.now(UTC)
            daemon.start()
            try:
                before = daemon.sample()
                before_at = time.monotonic()
                sent = failed = 0
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    if daemon.proc is not None and daemon.proc.poll() is not None:
                        raise RuntimeError(f"the daemon exited:\n{daemon.tail()}")
                    sample, at = daemon.sample(), time.monotonic()
                    if not sim.sent:
                        before, before_at = sample, at  # nothing reached the modem yet
                    _, sent, failed = progress(conn)
                    if sent + failed >= n:
                        break
                    time.sleep(POLL_SECONDS)
                else:
                    raise RuntimeError(
                        f"{scenario.name}: {sent} of {n} sent after {timeout:.0f}s\n{daemon.tail()}"
                    )
                after, after_at = daemon.sample(), time.monotonic()
                sim_cpu = simulator.cpu() - sim_cpu0
                bench_cpu = time.process_time() - bench_cpu0
                others = load.cores(after.cpu + bench_cpu)
                first, last = conn.execute(
                    "SELECT (SELECT min(at) FROM message_events WHERE state = 'sending'), "
                    "(SELECT max(sent_at) FROM messages)"
                ).fetchone()
                window = (
                    datetime.fromisoformat(last) - datetime.fromisoformat(first)
                ).total_seconds()
                retried = conn.execute(
                    "SELECT count(*) FROM messages WHERE attempts > 1"
                ).fetchone()[0]
                # Every `queued` event after the first of each message: a send put back.
                reasons = conn.execute(
                    "SELECT substr(coalesce(detail, ''), 1, 110) AS d, count(*) "
                    "FROM message_events WHERE state = 'queued' AND id NOT IN "
                    "(SELECT min(id) FROM message_events GROUP BY message_id) "
                    "GROUP BY d ORDER BY count(*) DESC LIMIT 3"
                ).fetchall()
            finally:
                conn.close()
                daemon.stop()
        finally:
            simulator.stop()
        accepted = sorted(m.at for m in sim.sent)
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(accepted)]
        longest = max(range(len(gaps)), key=gaps.__getitem__)
        counts = collections.Counter(m.submit.text for m in sim.sent)
        expected = {body(i) for i in range(n)}
        return Result(
            scenario=scenario,
            modem_rate=(len(accepted) - 1) / (accepted[-1] - accepted[0]).total_seconds(),
            window=window,
            start_to_done=(accepted[-1] - wall_start).total_seconds(),
            start_to_first=(accepted[0] - wall_start).total_seconds(),
            cpu=after.cpu - before.cpu,
            cpu_window=after_at - before_at,
            hwm_mib=after.hwm_kib / 1024,
            sent=sent,
            failed=failed,
            retried=retried,
            unique=sum(1 for b in counts if b in expected),
            dupes=sum(c - 1 for c in counts.values() if c > 1),
            missing=len(expected - counts.keys()),
            sim_cpu=sim_cpu,
            others=others,
            median_gap=statistics.median(gaps),
            longest_gap=gaps[longest],
            longest_gap_at=(accepted[longest] - accepted[0]).total_seconds(),
            requeued=sum(count for _, count in reasons),
            requeue_reasons=[(reason, count) for reason, count in reasons],
        )


def inbound_sender(i: int) -> str:
    return f"+4915100{i:06d}"


def inbound_body(i: int) -> str:
    return f"Inbound bench {i:06d}: see you at the shop"


@dataclass
class InboundResult:
    n: int
    first: float  # launch to the first row stored
    last: float  # launch to the N-th row stored
    stored: int
    unique: int
    left_on_sim: int
    others: float

    def line(self) -> str:
        return (
            f"{'inbound, 0 ms':<24} {self.n} on the SIM at start: launch to first stored "
            f"{self.first:.2f}s, to all {self.n} stored {self.last:.2f}s"
        )

    def check_line(self) -> str:
        ok = self.stored == self.n and self.unique == self.n and not self.left_on_sim
        return (
            f"  n={self.n}: {self.stored} rows, {self.unique} distinct bodies, "
            f"{self.left_on_sim} left on the SIM ({'each once, SIM emptied' if ok else 'NOT OK'}); "
            f"others {self.others:.2f} cores"
        )


def _stored(database: Path) -> int:
    """Rows in inbound_messages as last committed; 0 while the daemon has not made them."""
    if not database.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT count(*) FROM inbound_messages").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0  # the schema is still being made


def preloaded_simulator(link: Path, n: int) -> SimulatorThread:
    """A zero-latency simulator with N messages waiting on its SIM, started."""
    simulator = SimulatorThread(link, 0.0, storage_slots=n + 10)
    for i in range(n):
        simulator.sim.preload(inbound_sender(i), inbound_body(i))
    simulator.start()
    return simulator


def run_inbound(n: int, timeout: float, event_loop: str) -> InboundResult:
    """N messages on the SIM before the daemon starts; launch to first and all N stored."""
    with tempfile.TemporaryDirectory(prefix="shopbell-modem-in-") as tmp:
        folder = Path(tmp)
        link = folder / "modem"
        simulator = preloaded_simulator(link, n)
        try:
            daemon = Daemon(
                folder, config_for(folder, link, CONFIG_MAX_SEGMENTS_PER_MINUTE, event_loop, True)
            )
            load = OtherLoad()
            bench_cpu0 = time.process_time()
            wall_start = datetime.now(UTC)
            daemon.start()
            try:
                deadline = time.monotonic() + timeout
                while _stored(daemon.database) < n:
                    if daemon.proc is not None and daemon.proc.poll() is not None:
                        raise RuntimeError(f"the daemon exited:\n{daemon.tail()}")
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"inbound: not all {n} stored\n{daemon.tail()}")
                    time.sleep(POLL_SECONDS / 2)
                cpu = daemon.sample().cpu
                others = load.cores(cpu + time.process_time() - bench_cpu0)
                # Each message leaves the SIM after it is stored: give the deletes a moment.
                settle = time.monotonic() + 5.0
                while simulator.sim.stored and time.monotonic() < settle:
                    time.sleep(POLL_SECONDS)
                conn = sqlite3.connect(f"file:{daemon.database}?mode=ro", uri=True)
                try:
                    first, last, stored, unique = conn.execute(
                        "SELECT min(received_at), max(received_at), count(*), "
                        "count(DISTINCT body) FROM inbound_messages"
                    ).fetchone()
                finally:
                    conn.close()
            finally:
                daemon.stop()
            left = len(simulator.sim.stored)
        finally:
            simulator.stop()
    return InboundResult(
        n=n,
        first=(datetime.fromisoformat(first) - wall_start).total_seconds(),
        last=(datetime.fromisoformat(last) - wall_start).total_seconds(),
        stored=stored,
        unique=unique,
        left_on_sim=left,
        others=others,
    )


# gammu-smsd at its quickest against a modem that answers at once: no sleep between loops,
# no wait on an empty outbox, no periodic phone checks (security, battery, signal, network,
# status). For the outbound case the SIM is not read between sends (ReceiveFrequency 60);
# for the inbound case it is read on every loop (0). Delivery reports off (its default).
GAMMU_TUNING = {
    "LoopSleep": 0,
    "CommTimeout": 0,
    "StatusFrequency": 0,
    "CheckSecurity": 0,
    "CheckBattery": 0,
    "CheckSignal": 0,
    "CheckNetwork": 0,
    "DeliveryReport": "no",
}


@dataclass
class PeerResult:
    first: float
    last: float
    count: int
    ok: bool


def _gammu(folder: Path, link: Path, receive_frequency: int) -> subprocess.Popen[bytes]:
    for name in ("inbox", "outbox", "sent", "error"):
        (folder / name).mkdir(exist_ok=True)
    tuning = {**GAMMU_TUNING, "ReceiveFrequency": receive_frequency}
    config = folder / "smsdrc"
    config.write_text(
        f"[gammu]\ndevice = {link}\nconnection = at\n\n[smsd]\nservice = files\n"
        f"inboxpath = {folder}/inbox/\noutboxpath = {folder}/outbox/\n"
        f"sentsmspath = {folder}/sent/\nerrorsmspath = {folder}/error/\n"
        f"logfile = {folder}/smsd.log\n" + "".join(f"{k} = {v}\n" for k, v in tuning.items())
    )
    return subprocess.Popen(
        ["gammu-smsd", "-c", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def _stop_gammu(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def gammu_outbound(n: int, timeout: float) -> PeerResult:
    """N files in gammu-smsd's outbox before it starts; launch to its first and N-th +CMGS."""
    with tempfile.TemporaryDirectory(prefix="shopbell-gammu-out-") as tmp:
        folder = Path(tmp)
        link = folder / "modem"
        simulator = SimulatorThread(link, 0.0)
        simulator.start()
        sim = simulator.sim
        (folder / "outbox").mkdir()
        for i in range(n):
            # OUT<priority><date>_<time>_<serial>_<number>_<anything>.txt (gammu-smsd-files)
            name = f"OUTA20260101_000000_{i:03d}_+4474{i:08d}_sms0.txt"
            (folder / "outbox" / name).write_text(body(i))
        wall_start = datetime.now(UTC)
        proc = _gammu(folder, link, receive_frequency=60)
        try:
            deadline = time.monotonic() + timeout
            while len(sim.sent) < n and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(POLL_SECONDS)
        finally:
            _stop_gammu(proc)
            simulator.stop()
        accepted = sorted(m.at for m in sim.sent)
        counts = collections.Counter(m.submit.text for m in sim.sent)
    if not accepted:
        raise RuntimeError(f"gammu-smsd sent nothing within {timeout:.0f}s")
    return PeerResult(
        first=(accepted[0] - wall_start).total_seconds(),
        last=(accepted[-1] - wall_start).total_seconds(),
        count=len(accepted),
        ok=set(counts) == {body(i) for i in range(n)} and all(c == 1 for c in counts.values()),
    )


def gammu_inbound(n: int, timeout: float) -> PeerResult:
    """N messages on the SIM before gammu-smsd starts; launch to its first and N-th file."""
    with tempfile.TemporaryDirectory(prefix="shopbell-gammu-in-") as tmp:
        folder = Path(tmp)
        link = folder / "modem"
        simulator = preloaded_simulator(link, n)
        inbox = folder / "inbox"
        start = time.time()
        proc = _gammu(folder, link, receive_frequency=0)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                if inbox.exists() and sum(1 for _ in inbox.glob("IN*")) >= n:
                    break
                time.sleep(POLL_SECONDS / 2)
        finally:
            _stop_gammu(proc)
            simulator.stop()
        files = sorted(inbox.glob("IN*"), key=lambda f: f.stat().st_mtime)
        texts = collections.Counter(f.read_text(errors="replace").strip() for f in files)
        if not files:
            raise RuntimeError(f"gammu-smsd stored nothing within {timeout:.0f}s")
        return PeerResult(
            first=files[0].stat().st_mtime - start,
            last=files[-1].stat().st_mtime - start,
            count=len(files),
            ok=set(texts) == {inbound_body(i) for i in range(n)},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=200, help="messages per scenario")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per send")
    parser.add_argument(
        "--only",
        default="cfg,uncapped,inbound",
        help="comma-separated: cfg (segments_per_minute = 6000, the config's maximum), "
        "uncapped (100,000 through the launcher), inbound (N waiting on the SIM at start)",
    )
    parser.add_argument(
        "--peer",
        choices=("gammu",),
        default=None,
        help="also run gammu-smsd (files backend, tuned) for the 0 ms and inbound cases",
    )
    parser.add_argument(
        "--event-loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the daemon's [api] event_loop (default asyncio, the daemon's default)",
    )
    parser.add_argument(
        "--no-status-reports",
        action="store_true",
        help="[modem] status_reports = false: what reading the reports costs the sends",
    )
    args = parser.parse_args()
    groups = set(args.only.split(","))
    n = args.n

    if args.peer == "gammu" and shutil.which("gammu-smsd") is None:
        parser.error("--peer gammu: gammu-smsd is not installed (apt-get install gammu-smsd)")

    scenarios: list[Scenario] = []
    for latency in dict.fromkeys((args.latency, 0.0)):
        label = f"{latency * 1000:g} ms"
        if "cfg" in groups:
            scenarios.append(
                Scenario(f"{label} cfg 6000/min", latency, CONFIG_MAX_SEGMENTS_PER_MINUTE, False, n)
            )
        if "uncapped" in groups:
            scenarios.append(
                Scenario(f"{label} 100000/min", latency, UNCAPPED_SEGMENTS_PER_MINUTE, True, n)
            )

    print(
        f"shopbell modem: n={n} single-segment SMS, "
        f"simulator latency {args.latency * 1000:g} ms and 0 ms, event loop {args.event_loop}"
    )
    print(machine_line())
    print(code_line())
    quiet = wait_quiet()
    if quiet >= 0.15:
        print(f"warning: other programs keep {quiet:.2f} cores busy; figures will be low")
    outbound: list[Result] = []
    for scenario in scenarios:
        wait_quiet(patience=30.0)
        result = run(
            scenario,
            timeout=max(60.0, scenario.n * 0.2),
            event_loop=args.event_loop,
            reports=not args.no_status_reports,
        )
        print(result.line(), flush=True)
        print(result.check_line(), flush=True)
        if scenario.latency == 0.0:
            outbound.append(result)
    inbound: InboundResult | None = None
    if "inbound" in groups:
        wait_quiet(patience=30.0)
        inbound = run_inbound(n, timeout=max(60.0, n * 0.2), event_loop=args.event_loop)
        print(inbound.line(), flush=True)
        print(inbound.check_line(), flush=True)
    if args.peer != "gammu":
        return
    # gammu's AT driver sleeps 0.7 s around every segment it sends: give it the time.
    wait_quiet(patience=30.0)
    peer_out = gammu_outbound(n, timeout=60.0 + n * 1.0)
    print(
        f"{'gammu-smsd 0 ms':<24} launch to first send {peer_out.first:.2f}s, to all sent "
        f"{peer_out.last:.2f}s ({peer_out.count} sent, "
        f"{'each body once' if peer_out.ok else 'NOT each body once'})",
        flush=True,
    )
    peer_in: PeerResult | None = None
    if "inbound" in groups:
        wait_quiet(patience=30.0)
        peer_in = gammu_inbound(n, timeout=60.0)
        print(
            f"{'gammu-smsd inbound':<24} launch to first stored {peer_in.first:.2f}s, to all "
            f"stored {peer_in.last:.2f}s ({peer_in.count} files, "
            f"{'each body' if peer_in.ok else 'NOT each body'})",
            flush=True,
        )
    print(f"\nside by side, n={n}, 0 ms simulator (launch = spawning the process):")
    print(f"  {'':<34}{'first':>9}{'all ' + str(n):>10}")
    for result in outbound:
        label = f"shopbell out, {result.scenario.name.removeprefix('0 ms ')}"
        print(f"  {label:<34}{result.start_to_first:>8.2f}s{result.start_to_done:>9.2f}s")
    print(f"  {'gammu-smsd out (files, tuned)':<34}{peer_out.first:>8.2f}s{peer_out.last:>9.2f}s")
    if inbound is not None and peer_in is not None:
        print(f"  {'shopbell in, stored':<34}{inbound.first:>8.2f}s{inbound.last:>9.2f}s")
        print(f"  {'gammu-smsd in (files, tuned)':<34}{peer_in.first:>8.2f}s{peer_in.last:>9.2f}s")


if __name__ == "__main__":
    main()
