"""GET /metrics: absent (and prometheus_client never loaded) by default; when on, the sends,
queue, TGTG polls and blocks in Prometheus' text format, behind the token unless public."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from daemon.config import MetricsSettings, Settings
from daemon.runtime.clock import ManualClock
from daemon.services.metrics import Metrics
from daemon.services.outbox.service import Outbox
from daemon.services.tgtg.watcher import Watcher, WatcherSettings
from providers.tgtg.client import TgtgClient
from storage import subscribers
from storage import tgtg as tgtg_rows
from storage.database import Database
from tests.daemon.api.support import bearer, client_for
from tests.daemon.conftest import DaemonProcess
from tests.daemon.test_modem_e2e import SimThread
from tests.helpers import free_port, wait_until
from tests.peers.tgtg import PIN, Fault, TgtgPeer

TOKEN = "metrics-api-token-0c4f9e2b7a"


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus' text format, or None when it is not there."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    head = f"{name}{{{wanted}}}" if labels else name
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == head:
            return float(value)
    return None


def start_daemon(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    daemon_env: dict[str, str],
    metrics: str,
) -> tuple[DaemonProcess, httpx.Client]:
    port = free_port()
    config = write_config(f'[api]\nport = {port}\ntoken = "{TOKEN}"\n\n{metrics}')
    # -X importtime as an environment variable: every module the daemon ever imports, at
    # start or later, is listed on its stderr.
    env = daemon_env | {"PYTHONPROFILEIMPORTTIME": "1"}
    daemon = spawn("--config", str(config), "run", env=env)
    daemon.wait_ready(port)
    return daemon, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)


def imported(daemon: DaemonProcess) -> set[str]:
    """Every module the daemon imported, from its -X importtime lines."""
    return {
        line.rpartition("|")[2].strip()
        for line in daemon.lines
        if line.startswith("import time:") and "|" in line
    }


def stop(daemon: DaemonProcess) -> None:
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_metrics_are_off_by_default_and_prometheus_is_never_imported(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    daemon_env: dict[str, str],
) -> None:
    daemon, client = start_daemon(spawn, write_config, daemon_env, "")
    with client:
        answer = client.get("/metrics", headers=bearer(TOKEN))
        assert answer.status_code == 404
        assert answer.json()["success"] is False
        # Some traffic first, so anything imported lazily on a send would show up too.
        client.post(
            "/api/v1/messages", headers=bearer(TOKEN), json={"to": "+33612345678", "body": "hi"}
        )
        wait_until(
            lambda: (
                client.get("/api/v1/messages", headers=bearer(TOKEN)).json()["messages"][0][
                    "status"
                ]
                == "sent"
            ),
            "the message to be sent",
        )
    stop(daemon)
    modules = imported(daemon)
    assert "daemon.app.lifecycle" in modules  # the import log is there...
    assert not {m for m in modules if m.startswith("prometheus_client")}  # ...without Prometheus
    assert "daemon.services.metrics" not in modules


def test_metrics_count_console_sends_and_need_the_token(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    daemon_env: dict[str, str],
) -> None:
    daemon, client = start_daemon(spawn, write_config, daemon_env, "[metrics]\nenabled = true\n")
    with client:
        for n in range(3):
            created = client.post(
                "/api/v1/messages",
                headers=bearer(TOKEN),
                json={"to": "+33612345678", "body": f"bags left: {n}"},
            )
            assert created.status_code == 201

        def sent() -> float | None:
            text = client.get("/metrics", headers=bearer(TOKEN)).text
            return sample(
                text, "shopbell_sends_total", provider="console", channel="sms", outcome="sent"
            )

        wait_until(lambda: sent() == 3.0, "three sends counted")
        answer = client.get("/metrics", headers=bearer(TOKEN))
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        text = answer.text
        assert sample(text, "shopbell_send_seconds_count", provider="console") == 3.0
        assert sample(text, "shopbell_queue_depth", status="sent") == 3.0
        assert sample(text, "shopbell_queue_depth", status="queued") == 0.0
        assert sample(text, "shopbell_tgtg_blocked") == 0.0
        assert (sample(text, "shopbell_up_seconds") or 0) > 0
        # No modem configured: no modem series rather than made-up ones.
        assert "shopbell_modem_registered" not in text
        assert "+33612345678" not in text and "bags left" not in text

        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.json() == {
            "success": False,
            "error": 401,
            "message": refused.json()["message"],
        }
        assert client.get("/metrics", headers=bearer("not-the-token-at-all")).status_code == 401
        # Not part of the JSON API's document.
        assert "/metrics" not in client.get("/api/openapi.json").json()["paths"]
    stop(daemon)
    assert "prometheus_client" in imported(daemon)  # the log does show it when it is used


# -- in process: public, and TGTG polls ------------------------------------------------------


def metrics_app(
    make_app: Callable[..., FastAPI], db: Database, clock: ManualClock, *, public: bool
) -> tuple[FastAPI, Metrics]:
    metrics = Metrics(db, clock)
    settings = Settings(metrics=MetricsSettings(enabled=True, public=public))
    return make_app(metrics=metrics, settings=settings), metrics


async def test_public_metrics_need_no_token(
    make_app: Callable[..., FastAPI], db: Database, clock: ManualClock
) -> None:
    app, metrics = metrics_app(make_app, db, clock, public=True)
    metrics.observe_send("twilio", "sms", "retry", 0.4)
    async with client_for(app) as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    text = answer.text
    assert (
        sample(text, "shopbell_sends_total", provider="twilio", channel="sms", outcome="retry")
        == 1.0
    )
    assert sample(text, "shopbell_send_seconds_bucket", provider="twilio", le="0.5") == 1.0
    assert sample(text, "shopbell_send_seconds_bucket", provider="twilio", le="0.25") == 0.0


async def test_private_metrics_refuse_a_missing_token(
    make_app: Callable[..., FastAPI], db: Database, clock: ManualClock
) -> None:
    app, _ = metrics_app(make_app, db, clock, public=False)
    async with client_for(app) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers=bearer())).status_code == 200


@pytest.fixture
def tgtg_peer() -> Iterator[TgtgPeer]:
    with TgtgPeer() as fake:
        fake.add_account("ana@example.com")
        fake.add_item("774625", store="Bakery Blue", count=0, favorite_of="ana@example.com")
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_tgtg_polls_and_blocks_are_counted(
    make_app: Callable[..., FastAPI],
    db: Database,
    clock: ManualClock,
    tgtg_peer: TgtgPeer,
    http: httpx.AsyncClient,
) -> None:
    app, metrics = metrics_app(make_app, db, clock, public=False)
    watcher = Watcher(
        db,
        clock,
        TgtgClient(lambda: http, base_url=tgtg_peer.base_url),
        WatcherSettings(poll_seconds=60.0, requests_per_minute=100),
        outbox=Outbox(db, clock),
    )
    metrics.count_polls(watcher)
    now = clock.now().isoformat()
    subscriber = await db.write(
        lambda c: subscribers.create(c, {"phone": "+33611111111", "channels": ["sms"]}, now)
    )
    await watcher.start_login(subscriber.id, "ana@example.com")
    await watcher.submit_pin(subscriber.id, PIN)

    async def poll() -> None:
        account = await db.execute(lambda c: tgtg_rows.account_of(c, subscriber.id))
        assert account is not None
        await watcher.poll(account)
        clock.advance(61)

    await poll()
    await poll()
    # A captcha block: one challenge is met with a fresh DataDome cookie, a second blocks.
    tgtg_peer.script(Fault.captcha(), match="discover/v1/bucket", times=2)
    await poll()
    async with client_for(app) as client:
        text = (await client.get("/metrics", headers=bearer())).text
    assert sample(text, "shopbell_tgtg_polls_total", outcome="ok") == 2.0
    assert sample(text, "shopbell_tgtg_polls_total", outcome="blocked") == 1.0
    assert sample(text, "shopbell_tgtg_blocked") == 1.0
    assert sample(text, "shopbell_tgtg_accounts", state="blocked") == 1.0


def test_modem_signal_and_registration_are_shown(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    daemon_env: dict[str, str],
    tmp_path: Path,
) -> None:
    sim = SimThread(link=tmp_path / "modem")
    try:
        metrics = (
            f'[metrics]\nenabled = true\n[sms]\nchain = ["modem"]\n[modem]\nport = "{sim.path}"\n'
        )
        daemon, client = start_daemon(spawn, write_config, daemon_env, metrics)
        with client:
            daemon.wait_for_line("is ready: Shopbell Modem Simulator")
            text = client.get("/metrics", headers=bearer(TOKEN)).text
            assert sample(text, "shopbell_modem_registered") == 1.0
            assert sample(text, "shopbell_modem_signal_dbm") == -73.0
            sim.run(sim.sim.unplug())
            wait_until(
                lambda: (
                    sample(
                        client.get("/metrics", headers=bearer(TOKEN)).text,
                        "shopbell_modem_registered",
                    )
                    == 0.0
                ),
                "the unplugged modem to count as not registered",
            )
        stop(daemon)
    finally:
        sim.close()
