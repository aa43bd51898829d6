"""Fixtures for the reliability tests: the daemon as a subprocess, the fakes, database reads."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis

# The daemon subprocess and the modem simulator thread are the daemon tests' own helpers.
from tests.daemon.conftest import DaemonProcess, daemon_env, spawn  # noqa: F401
from tests.daemon.test_modem_e2e import SimThread
from tests.helpers import free_port, wait_until
from tests.peers.tgtg import TgtgPeer
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN

# httpx.Client is thread-safe; a few requests in flight keep the daemon's writer busy.
ENQUEUE_CLIENTS = 4
FINAL = frozenset({"sent", "delivered", "failed", "undelivered", "cancelled"})


def twilio_section(base_url: str, **overrides: Any) -> str:
    """A [twilio] config section pointed at the fake."""
    keys: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": "+15005550006",
        "base_url": base_url,
        "rate_per_second": 1000.0,
        "concurrency": 4,
        **overrides,
    }
    return "[twilio]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in keys.items())


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def read_db(database: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows from the daemon's database, read-only (the daemon may be writing it)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def statuses(database: Path) -> Counter[str]:
    return Counter(dict(read_db(database, "SELECT status, count(*) FROM messages GROUP BY status")))


def integrity(database: Path) -> str:
    return str(read_db(database, "PRAGMA integrity_check")[0][0])


@dataclass
class Daemon:
    """One configured daemon: start it, talk to it, stop it."""

    config: Path
    port: int
    data: Path
    spawn: Callable[..., DaemonProcess]
    process: DaemonProcess | None = None

    @property
    def database(self) -> Path:
        return self.data / "shopbell.db"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> DaemonProcess:
        self.process = self.spawn("--config", str(self.config), "run")
        if wait:
            self.process.wait_ready(self.port, timeout=30)
        return self.process

    def client(self) -> httpx.Client:
        token = (self.data / "api_token").read_text().strip()
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def stop(self) -> None:
        """SIGTERM, and the daemon must stop cleanly."""
        assert self.process is not None
        self.process.proc.terminate()
        assert self.process.wait(timeout=30) == 0, self.process.output[-3000:]

    def modem_ready(self) -> bool:
        """Whether /api/health says the modem is ready to send."""
        with self.client() as client:
            health = client.get("/api/health").json()
        return health["components"]["sms"]["providers"].get("modem", {}).get("state") == "ok"

    def wait_all_final(self, count: int, timeout: float) -> Counter[str]:
        def final() -> Counter[str] | None:
            now = statuses(self.database)
            return now if sum(n for status, n in now.items() if status in FINAL) >= count else None

        return wait_until(
            final,
            lambda: f"{count} final messages; got {statuses(self.database)}",
            timeout=timeout,
            interval=0.1,
        )


@pytest.fixture
def make_daemon(
    spawn: Callable[..., DaemonProcess],  # noqa: F811
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> Callable[[str], Daemon]:
    """A daemon with the given config text (plus its [api] port and data folder)."""

    def make(text: str) -> Daemon:
        port = free_port()
        config = write_config(f"[api]\nport = {port}\n{text}")
        return Daemon(config, port, tmp_path / "data", spawn)

    return make


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimThread]:
    """The modem simulator on a pty behind a stable link, fast (10 ms per send)."""
    thread = SimThread(link=tmp_path / "modem", send_latency=0.01, report_delay=0.05)
    yield thread
    thread.close()


def modem_section(sim: SimThread, **overrides: Any) -> str:
    keys: dict[str, Any] = {
        "port": str(sim.sim.link or sim.path),
        "segments_per_minute": 6000.0,
        "reconnect_max_seconds": 1.0,
        **overrides,
    }
    return "[modem]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in keys.items())


def enqueue(client: httpx.Client, bodies: list[tuple[str, str]]) -> list[int]:
    """POST each (recipient, body) to /api/v1/messages, a few at a time, as the shop's programs
    would; their ids, in the order of `bodies`."""

    def post(item: tuple[str, str]) -> int:
        to, body = item
        response = client.post("/api/v1/messages", json={"to": to, "body": body})
        assert response.status_code == 201, response.text
        return int(response.json()["message"]["id"])

    with ThreadPoolExecutor(max_workers=ENQUEUE_CLIENTS) as pool:
        return list(pool.map(post, bodies))


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One daemon for every generated request: SMS to the console, Twilio's webhooks signed
    with the fake's token, TGTG logins against the fake TGTG."""
    root = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    tgtg = TgtgPeer().start()
    config = root / "config.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{root / "data"}"\n'
        f"[api]\nport = {port}\n"
        '[sms]\nchain = ["console"]\nsmss_per_minute = 10000\n'
        f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nauth_token = "{AUTH_TOKEN}"\n'
        f'[tgtg]\nbase_url = "{tgtg.base_url}"\ntimeout_seconds = 2.0\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPBELL_")}
    env.update(PYTHONUNBUFFERED="1", HOME=str(root), XDG_CONFIG_HOME=str(root / "config"))
    env.update(XDG_DATA_HOME=str(root / "share"))
    env.pop("JOURNAL_STREAM", None)
    daemon = DaemonProcess(["--config", str(config), "run"], env)
    try:
        daemon.wait_ready(port, timeout=30)
        token = (root / "data" / "api_token").read_text().strip()
        with httpx.Client(timeout=10) as http:
            yield {"url": f"http://127.0.0.1:{port}", "token": token, "http": http}
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.output[-3000:]
        assert "Traceback" not in daemon.output, daemon.output
    finally:
        daemon.kill()
        tgtg.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_daemon: dict[str, Any]) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{fuzz_daemon['url']}/api/openapi.json")
    return schema
