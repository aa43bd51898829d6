"""Idle memory: the daemon's RSS on defaults and with every provider, and what each import costs.

Usage: .venv/bin/python bench/idle_memory.py [--settle 20] [--from-source]

0. Bytecode is compiled first (`compileall` on daemon/, storage/ and providers/), as `pip install`
   or the first run leaves it: compiling ~100 modules from source at each start would add
   ~1.2 MiB of parser memory that no installed daemon carries. `--from-source` skips it (and
   still measures whatever bytecode is there).
1. The real daemon (`python -m daemon --config X run`) started and left idle for `--settle`
   seconds, then its RSS, VmHWM, threads and open fds read from /proc:
   - **defaults**: console only (no provider configured, no TGTG account), on a new database,
     then started again on the same database (the daily case: no migrations to apply), then
     again with the calls of a shop's first day made before the settle (FIRST_CALLS: an SMS,
     an OTP, the message log, the dashboard's stats, subscribers, products): what the idle
     daemon keeps once its common routes and the outbox have been used;
   - **every provider**: Twilio, Fast2SMS, FCM (fake peers from tests/peers, in this process),
     the modem simulator on a pty (providers.modem.simulator, in a thread of this process),
     SMTP (a host and sender; nothing connects until a report is sent), TGTG (the fake) and
     the Prometheus /metrics endpoint.
2. A fresh interpreter imports the daemon's dependencies one at a time, in the order below,
   and prints the RSS each step adds (MiB): where the memory goes. Steps are cumulative, so
   a package shared by two steps is charged to the first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
# `python bench/x.py` puts bench/ first on sys.path; keep only the repository root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench._daemon import (  # noqa: E402
    API_TOKEN,
    Daemon,
    base_config,
    code_line,
    free_port,
    machine_line,
    proc_sample,
    wakeups,
)
from providers.modem.simulator import ModemSimulator  # noqa: E402
from tests.peers.fast2sms import API_KEY as FAST2SMS_KEY  # noqa: E402
from tests.peers.fast2sms import Fast2SmsPeer  # noqa: E402
from tests.peers.fcm import FcmPeer  # noqa: E402
from tests.peers.tgtg import TgtgPeer  # noqa: E402
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, TwilioPeer  # noqa: E402

MIB = 1024.0

# (method, path, JSON body): a shop's first day on the API, each expected to answer 2xx.
FIRST_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/v1/messages", {"to": "+447400000001", "body": "Your order is ready"}),
    ("GET", "/api/v1/messages", None),
    ("GET", "/api/v1/stats", None),
    ("GET", "/api/v1/subscribers", None),
    ("POST", "/api/send-otp", {"phone": "+447400000002"}),
    ("GET", "/api/v1/products", None),
    ("GET", "/api/products", None),
]

# (label, statement) in about the order the daemon meets them; each runs after the ones above.
IMPORT_STEPS: list[tuple[str, str]] = [
    (
        "stdlib: asyncio, ssl, email, sqlite3, ...",
        "import asyncio, ssl, email.message, json, "
        "sqlite3, logging, zoneinfo, tomllib, decimal, csv",
    ),
    ("pydantic", "import pydantic"),
    (
        "fastapi (+ starlette, opentelemetry-api)",
        "import fastapi",
    ),
    ("granian (the HTTP server)", "import granian.server.embed"),
    ("sqlite_utils (+ pluggy, dateutil)", "import sqlite_utils"),
    (
        "apscheduler (asyncio scheduler, cron)",
        "import apscheduler.schedulers.asyncio, apscheduler.triggers.cron",
    ),
    ("phonenumbers", "import phonenumbers"),
    ("click", "import click"),
    ("daemon.config (the Settings models)", "import daemon.config"),
    (
        "storage (database, migrations, tables)",
        "import storage.database, storage.migrations, "
        "storage.messages, storage.subscribers, storage.tgtg",
    ),
    ("daemon.api.app (every route and its services)", "import daemon.api.app"),
    ("daemon.app.lifecycle (scheduler, outbox, TGTG ...)", "import daemon.app.lifecycle"),
    ("daemon.admin.cli (the commands)", "import daemon.admin.cli"),
    ("-- only when configured or first used --", ""),
    (
        "httpx + TLS context (HTTP provider, TGTG login)",
        "import daemon.runtime.http_client as h; h.build_http_client()",
    ),
    ('uvloop ([api] event_loop = "uvloop")', "import uvloop; uvloop.new_event_loop()"),
    ("providers.twilio (twilio, requests, urllib3)", "import providers.twilio.provider"),
    ("providers.fcm (pyfcm, google-auth)", "import providers.fcm.provider"),
    ("providers.modem (pyserial-asyncio-fast)", "import providers.modem.provider"),
    ("prometheus_client ([metrics] enabled)", "import daemon.services.metrics"),
    ("aiosmtplib (first e-mail)", "import aiosmtplib"),
    ("twilio.twiml (first inbound SMS)", "import twilio.twiml.messaging_response"),
    ("argon2-cffi (first password)", "import argon2"),
    ("PyJWT + cryptography (first login)", "import jwt, jwt.algorithms"),
]

_MEASURE = """
import sys, json
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
out = [rss()]
for statement in json.loads(sys.argv[1]):
    if statement:
        exec(statement)
    out.append(rss())
print(json.dumps(out))
"""


def _rss_steps(statements: list[str]) -> list[int]:
    """VmRSS (KiB) of a fresh interpreter at its start and after each statement."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps(statements)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(done.stdout))


def import_costs() -> list[tuple[str, float, float]]:
    """(label, MiB this step added, MiB in all) for IMPORT_STEPS in one fresh interpreter."""
    kib = _rss_steps([statement for _, statement in IMPORT_STEPS])
    rows = [("python itself (after site)", kib[0] / MIB, kib[0] / MIB)]
    for (label, _), before, after in zip(IMPORT_STEPS, kib[:-1], kib[1:], strict=True):
        rows.append((label, (after - before) / MIB, after / MIB))
    return rows


def compile_bytecode() -> None:
    """What `pip install` (or a first run without PYTHONDONTWRITEBYTECODE) leaves on disk."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "daemon", "storage", "providers"],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


class SimulatorThread:
    """The modem simulator on its own event loop in a thread of this process."""

    def __init__(self, link: Path) -> None:
        self.sim = ModemSimulator(link=link)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> SimulatorThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def first_calls(url: str) -> None:
    """FIRST_CALLS against the daemon at `url`; raises on an answer that is not 2xx."""
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {API_TOKEN}"}, trust_env=False
    ) as client:
        for method, path, body in FIRST_CALLS:
            answer = client.request(method, path, json=body)
            if not answer.is_success:
                raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:200]}")


# Wake-ups a second are counted over this long, after the settle (target: at most 2 a second
# in all when nothing happens; issue 20).
WAKE_WINDOW_SECONDS = 10.0


def idle_figures(
    folder: Path, config: dict[str, dict[str, Any]], settle: float, calls: bool = False
) -> str:
    daemon = Daemon(folder, config)
    with daemon:
        daemon.wait_ready(timeout=60)
        if calls:
            first_calls(daemon.url)
        time.sleep(settle)
        if daemon.proc is not None and daemon.proc.poll() is not None:
            raise RuntimeError(f"the daemon exited:\n{daemon.tail()}")
        s = proc_sample(daemon.pid)
        fds = len(os.listdir(f"/proc/{daemon.pid}/fd"))
        total, by_thread = wakeups(daemon.pid, WAKE_WINDOW_SECONDS)
    threads = ", ".join(f"{name} {rate:.1f}" for name, rate in by_thread[:4])
    return (
        f"RSS {s.rss_kib / MIB:6.1f} MiB   VmHWM {s.hwm_kib / MIB:6.1f} MiB   "
        f"threads {s.threads:2d}   fds {fds:3d}   wake-ups {total:4.1f}/s ({threads})"
    )


def every_provider(folder: Path, settle: float) -> str:
    link = folder / "modem"
    with (
        TwilioPeer() as twilio,
        FcmPeer() as fcm,
        TgtgPeer() as tgtg,
        Fast2SmsPeer() as fast2sms,
        SimulatorThread(link),
    ):
        account = fcm.write_service_account(folder / "fcm.json")
        config = base_config(
            folder,
            free_port(),
            sms={"chain": ["twilio", "fast2sms", "modem", "console"]},
            twilio={
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "from_number": "+15005550006",
                "base_url": twilio.base_url,
            },
            fast2sms={"api_key": FAST2SMS_KEY, "base_url": fast2sms.base_url},
            modem={"port": str(link)},
            fcm={"service_account_file": str(account), "base_url": fcm.base_url},
            smtp={"host": "127.0.0.1", "port": free_port(), "from_address": "shop@example.com"},
            tgtg={"base_url": tgtg.base_url},
            metrics={"enabled": True},
        )
        return idle_figures(folder, config, settle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--settle", type=float, default=20.0, help="seconds idle before reading (default 20)"
    )
    parser.add_argument("--from-source", action="store_true", help="do not compile bytecode first")
    args = parser.parse_args()
    if not args.from_source:
        compile_bytecode()
    print("shopbell idle memory")
    print(machine_line())
    print(code_line())
    print("bytecode: " + ("as found" if args.from_source else "compiled first, as installed"))
    print(f"\nthe daemon, idle {args.settle:g} s after ready:")
    with tempfile.TemporaryDirectory(prefix="shopbell-idle-") as tmp:
        folder = Path(tmp) / "defaults"
        folder.mkdir()
        config = base_config(folder, free_port())
        print(f"  defaults (console only)   {idle_figures(folder, config, args.settle)}")
        print(f"  the same, started again   {idle_figures(folder, config, args.settle)}")
        print(f"  again, after first calls  {idle_figures(folder, config, args.settle, True)}")
        folder = Path(tmp) / "every"
        folder.mkdir()
        print(f"  every provider configured {every_provider(folder, args.settle)}")
    print("\nwhat each import adds, in a fresh interpreter (cumulative, in this order):")
    print(f"  {'step':<48} {'adds MiB':>8} {'total MiB':>9}")
    for label, added, total in import_costs():
        if label.startswith("--"):
            print(f"  {label}")
            continue
        print(f"  {label:<48} {added:8.1f} {total:9.1f}")


if __name__ == "__main__":
    main()
