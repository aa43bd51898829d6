"""The daemon with a modem (the simulator on a pty, in this process): send, delivery report,
inbound STOP with its confirmation, inbound waiting on the SIM at start."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.modem.simulator import ModemSimulator
from tests.daemon.conftest import REPO, DaemonProcess
from tests.helpers import free_port, wait_until

CUSTOMER = "+33612345678"


class SimThread:
    """The simulator on its own event loop in a thread, so the test can script it while the
    daemon (another process) talks to it over the pty."""

    def __init__(self, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sim: ModemSimulator = self.call(lambda: ModemSimulator(**options))
        self.path: str = self.run(self.sim.start())

    def call(self, fn: Callable[[], Any]) -> Any:
        done: Future[Any] = Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:  # handed to the test thread
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return done.result(timeout=10)

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def close(self) -> None:
        self.run(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def modem_daemon(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], tmp_path: Path
) -> Iterator[tuple[httpx.Client, SimThread, DaemonProcess]]:
    sim = SimThread(link=tmp_path / "modem", send_latency=0.02, report_delay=0.05)
    sim.call(lambda: sim.sim.preload("+33700000001", "Waiting on the SIM since yesterday"))
    port = free_port()
    config = write_config(
        f"[api]\nport = {port}\n"
        '[sms]\nchain = ["modem"]\n'
        f'[modem]\nport = "{sim.path}"\nsegments_per_minute = 600.0\n'
    )
    daemon = spawn("--config", str(config), "run")
    try:
        daemon.wait_ready(port)
        token = (tmp_path / "data" / "api_token").read_text().strip()
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ) as client:
            wait_until(
                lambda: (
                    client.get("/api/health")
                    .json()["components"]["sms"]["providers"]
                    .get("modem", {})
                    .get("state")
                    == "ok"
                ),
                "the modem to be ready",
            )
            yield client, sim, daemon
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
        sim.close()


def status_of(client: httpx.Client, message_id: int) -> str:
    return client.get(f"/api/v1/messages/{message_id}").json()["message"]["status"]


def test_send_long_message_through_the_modem_and_get_it_delivered(modem_daemon) -> None:
    client, sim, _ = modem_daemon
    text = "Surprise bags at the bakery until 19:00, come quickly! " * 4  # 2 segments
    created = client.post("/api/v1/messages", json={"to": CUSTOMER, "body": text})
    message_id = created.json()["message"]["id"]
    assert created.json()["message"]["segments"] == 2
    wait_until(lambda: len(sim.call(lambda: list(sim.sim.sent))) == 2, "two segments at the modem")
    sent = sim.call(lambda: list(sim.sim.sent))
    assert "".join(s.submit.text for s in sent) == text
    assert all(s.submit.number == CUSTOMER for s in sent)
    wait_until(lambda: status_of(client, message_id) == "delivered", "both delivery reports")
    events = client.get(f"/api/v1/messages/{message_id}").json()["events"]
    assert [e["state"] for e in events][-2:] == ["sent", "delivered"]


def test_inbound_stop_opts_out_and_is_confirmed_then_deleted(modem_daemon) -> None:
    client, sim, daemon = modem_daemon
    # The message that waited on the SIM was read at start, stored, and then deleted.
    wait_until(lambda: "+33700000001" in daemon.output, "the preloaded message to be read")
    wait_until(lambda: not sim.call(lambda: dict(sim.sim.stored)), "the SIM to be emptied")

    sim.call(lambda: sim.sim.receive(CUSTOMER, "STOP"))
    wait_until(
        lambda: (
            client.post("/smss", json={"contact": CUSTOMER, "message": "Bags!"}).status_code == 409
        ),
        "the opt-out",
    )
    confirmation = wait_until(
        lambda: [s for s in sim.call(lambda: list(sim.sim.sent)) if s.submit.number == CUSTOMER],
        "the STOP confirmation to go out",
    )
    assert "START" in confirmation[0].submit.text
    wait_until(lambda: not sim.call(lambda: dict(sim.sim.stored)), "the STOP to be deleted")
    replies = client.get("/api/v1/messages", params={"kind": "reply"}).json()["messages"]
    assert replies and replies[0]["recipient"] == CUSTOMER


def _probe(
    daemon_env: dict[str, str], write_config: Callable[..., Path], port: str, pin: str = ""
) -> subprocess.CompletedProcess[str]:
    config = write_config(f'[modem]\nport = "{port}"\npin = "{pin}"\n', name="probe.toml")
    return subprocess.run(
        [sys.executable, "-m", "daemon", "--config", str(config), "modem", "probe", "--wait", "5"],
        cwd=REPO,
        env=daemon_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_modem_probe_reports_identity_and_network(
    daemon_env: dict[str, str], write_config: Callable[..., Path]
) -> None:
    sim = SimThread(profile="quectel")
    try:
        result = _probe(daemon_env, write_config, sim.path)
    finally:
        sim.close()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["state"] == "ready"
    assert report["modem"] == "Quectel EC25"
    assert report["operator"] and report["signal_dbm"] is not None


def test_modem_probe_with_a_wrong_pin_says_so_and_never_retries(
    daemon_env: dict[str, str], write_config: Callable[..., Path]
) -> None:
    sim = SimThread(pin="1234")
    try:
        result = _probe(daemon_env, write_config, sim.path, pin="9999")
        attempts = sim.call(lambda: sim.sim.pin_attempts)
    finally:
        sim.close()
    assert result.returncode == 1
    assert json.loads(result.stdout)["state"] == "pin rejected"
    assert attempts == 1
    assert "9999" not in result.stdout + result.stderr
