"""Shared by the benchmarks: the real daemon as a subprocess, and what /proc says about it."""

from __future__ import annotations

import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
API_TOKEN = "bench-token-0123456789abcdef"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_line() -> str:
    return (
        f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, {platform.machine()} {platform.system()} {platform.release()}"
    )


def code_line() -> str:
    """The commit measured, and whether the working tree differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        head = None
    if head is None or head.returncode != 0:
        return f"code: {REPO} (not a git checkout)"
    return f"code: commit {head.stdout.strip()}" + (" + uncommitted changes" if dirty else "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    lines: list[str] = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in keys.items())
        lines.append("")
    path.write_text("\n".join(lines))


def base_config(folder: Path, port: int, **sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A config with its data in `folder`, the API on `port`; `sections` are merged over it."""
    config: dict[str, dict[str, Any]] = {
        "paths": {"data_dir": str(folder / "data")},
        "api": {"host": "127.0.0.1", "port": port, "token": API_TOKEN},
        "logging": {"level": "INFO"},
    }
    for name, keys in sections.items():
        config.setdefault(name, {}).update(keys)
    return config


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


class OtherLoad:
    """How busy the machine was with work that is not ours, over a span of time.

    Other programs on a 2-core machine (a test suite, a build) take CPU from the daemon and
    the load generator, so each figure is printed with this beside it.
    """

    def __init__(self) -> None:
        self._busy = machine_busy_seconds()
        self._at = time.monotonic()

    def cores(self, own_cpu_seconds: float) -> float:
        """Cores busy with other work since this was made, given our own CPU seconds."""
        wall = time.monotonic() - self._at
        other = machine_busy_seconds() - self._busy - own_cpu_seconds
        return max(0.0, other / wall) if wall > 0 else 0.0


def wait_quiet(limit_cores: float = 0.15, patience: float = 120.0) -> float:
    """Wait (up to `patience` seconds) until other work uses under `limit_cores` for 2 s.

    Returns the load seen last; the caller says so when it never got quiet.
    """
    deadline = time.monotonic() + patience
    while True:
        load = OtherLoad()
        own = time.process_time()
        time.sleep(2.0)
        cores = load.cores(time.process_time() - own)
        if cores < limit_cores or time.monotonic() > deadline:
            return cores


@dataclass(frozen=True)
class ProcSample:
    """CPU seconds (user + system, all threads) and memory of one process."""

    cpu: float
    rss_kib: int
    hwm_kib: int
    threads: int


def proc_sample(pid: int) -> ProcSample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name (which may hold spaces) start at ") ".
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    status: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        status[key] = value.strip()
    if "VmRSS" not in status:
        # A process that has exited but is not reaped yet (a zombie) has no memory to read.
        raise RuntimeError(f"process {pid} has exited (state {status.get('State', '?')})")
    return ProcSample(
        cpu=(utime + stime) / CLOCK_TICKS,
        rss_kib=int(status["VmRSS"].split()[0]),
        hwm_kib=int(status["VmHWM"].split()[0]),
        threads=int(status["Threads"]),
    )


def context_switches(pid: int) -> dict[int, int]:
    """Each thread's context switches so far (voluntary + not), by thread id: each one is a
    wake-up of that thread."""
    found: dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        counts = [
            int(line.split(":")[1]) for line in status.splitlines() if "ctxt_switches" in line
        ]
        found[int(task.name)] = sum(counts)
    return found


def wakeups(pid: int, seconds: float) -> tuple[float, list[tuple[str, float]]]:
    """Wake-ups a second over `seconds`: in all, and by thread ("main" is the event loop's),
    busiest first, threads that slept throughout left out."""
    before = context_switches(pid)
    started = time.monotonic()
    time.sleep(seconds)
    after = context_switches(pid)
    span = time.monotonic() - started
    rates = {tid: (n - before.get(tid, 0)) / span for tid, n in after.items()}
    named = [("main" if tid == pid else f"tid {tid}", rate) for tid, rate in rates.items()]
    busy = sorted((item for item in named if item[1] > 0), key=lambda item: -item[1])
    return sum(rates.values()), busy


ARENA_KIB = 64 * 1024  # glibc's HEAP_MAX_SIZE on 64-bit: each thread arena reserves this


def memory_parts(pid: int) -> dict[str, int]:
    """Where a process's RSS lives (KiB), from /proc/PID/smaps: `heap` (the main malloc arena,
    brk), `arenas` (glibc's per-thread malloc arenas: anonymous 64 MiB reservations),
    `stacks` (thread stacks), `anon` (other anonymous memory: pymalloc's arenas, large
    mallocs) and `files` (code and other file mappings)."""
    vmas: list[tuple[int, int, str, str, int]] = []  # start, end, perms, name, rss KiB
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            lo, hi = (int(x, 16) for x in head[0].split("-"))
            vmas.append((lo, hi, head[1], head[5] if len(head) > 5 else "", 0))
        elif head[0] == "Rss:" and vmas:
            lo, hi, perms, name, _ = vmas[-1]
            vmas[-1] = (lo, hi, perms, name, int(head[1]))
    parts = dict.fromkeys(("heap", "arenas", "stacks", "anon", "files"), 0)
    for i, (lo, _hi, _perms, name, rss) in enumerate(vmas):
        if name:
            if name == "[heap]":
                key = "heap"
            elif name == "[stack]":
                key = "stacks"
            else:
                key = "anon" if name.startswith("[") else "files"  # [vdso], [anon:...]
        elif lo % (ARENA_KIB * 1024) == 0:
            key = "arenas"  # glibc aligns each thread arena's heap to its 64 MiB size
        elif i > 0 and vmas[i - 1][1] == lo and vmas[i - 1][2] == "---p" and not vmas[i - 1][3]:
            key = "stacks" if vmas[i - 1][1] - vmas[i - 1][0] == 4096 else "anon"
        else:
            key = "anon"
        parts[key] += rss
    return parts


def fd_kinds(pid: int, inbound_port: int | None = None) -> dict[str, int]:
    """The process's open fds by kind: `inbound` (TCP connections accepted on inbound_port:
    the ones its clients hold open), `tcp` (its other sockets: listeners, its own
    connections out), `files`, `other` (pipes, eventfds, epoll, the rest)."""
    inbound_inodes: set[str] = set()
    if inbound_port is not None:
        for table in ("tcp", "tcp6"):
            path = Path(f"/proc/{pid}/net/{table}")
            if not path.exists():
                continue
            for row in path.read_text().splitlines()[1:]:
                cols = row.split()
                local_port = int(cols[1].rsplit(":", 1)[1], 16)
                listening = cols[3] == "0A"
                if local_port == inbound_port and not listening:
                    inbound_inodes.add(cols[9])
    kinds = dict.fromkeys(("inbound", "tcp", "files", "other"), 0)
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:
            continue  # closed between the listing and the look
        if target.startswith("socket:["):
            kinds["inbound" if target[8:-1] in inbound_inodes else "tcp"] += 1
        elif target.startswith("/"):
            kinds["files"] += 1
        else:
            kinds["other"] += 1
    return kinds


class Daemon:
    """`python -m daemon --config X run` in a child process; its log goes to a file."""

    def __init__(self, folder: Path, config: dict[str, dict[str, Any]], name: str = "daemon"):
        self.folder = folder
        self.config_path = folder / f"{name}.toml"
        self.log_path = folder / f"{name}.log"
        self.port = int(config["api"]["port"])
        self.database = folder / "data" / "shopbell.db"
        write_config(self.config_path, config)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        # A clean environment: no SHOPBELL_* from the caller's shell may change the config.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPBELL_", "TWILIO_"))}
        env["PYTHONUNBUFFERED"] = "1"
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--config", str(self.config_path), "run"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_path.exists() and text in self.log_path.read_text(errors="replace"):
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"daemon: no {text!r} in its log:\n{self.tail()}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until GET /api/health answers (the log's "ready:" line is INFO, maybe not shown)."""
        deadline = time.monotonic() + timeout
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                with opener.open(f"{self.url}/api/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"daemon: not ready within {timeout:.0f}s:\n{self.tail()}")

    def sample(self) -> ProcSample:
        return proc_sample(self.pid)

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(timeout=10)
        return self.proc.returncode

    def __enter__(self) -> Daemon:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
