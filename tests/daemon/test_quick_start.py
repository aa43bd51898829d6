"""A start does not make the shop wait for the HTTP API: what waits on the modem's SIM is
stored, and the queue is sent, while the API is still being built."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.app import lifecycle
from daemon.app.lifecycle import Daemon
from daemon.config import LoadedConfig, Settings
from providers.modem.simulator import ModemSimulator
from storage.database import Database
from storage.messages import PRIORITY, NewMessage, insert_message
from tests.helpers import free_port, wait_until_async

CUSTOMER = "+33612345678"
WAITING = "+33700000001"


@pytest.fixture
def held_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The API's import held until the test sets the event (it runs in a thread)."""
    release = threading.Event()
    real = lifecycle._api_factory

    def held() -> Callable[..., Any]:
        if not release.wait(timeout=30):
            raise AssertionError("the test never released the API")
        return real()

    monkeypatch.setattr(lifecycle, "_api_factory", held)
    yield release
    release.set()  # a failed test must not leave the thread waiting


async def queue_one(settings: Settings) -> None:
    """An SMS queued before the daemon starts (written as the outbox writes it)."""
    db = Database(settings.database_path)
    await db.open(migrate=True)
    try:
        new = NewMessage(
            channel="sms",
            recipient=CUSTOMER,
            body="Your order is ready",
            kind="alert",
            priority=PRIORITY["alert"],
        )
        await db.write(lambda conn: insert_message(conn, new, "2026-01-01T09:00:00.000000+00:00"))
    finally:
        await db.close()


async def test_the_sim_is_read_and_the_queue_sent_before_the_api_is_up(
    tmp_path: Path, held_api: threading.Event
) -> None:
    sim = ModemSimulator(link=tmp_path / "modem")
    sim.preload(WAITING, "Waiting on the SIM since yesterday")
    await sim.start()
    port = free_port()
    settings = Settings.model_validate(
        {
            "paths": {"data_dir": str(tmp_path / "data")},
            "api": {"port": port},
            "sms": {"chain": ["modem"]},
            "modem": {"port": str(tmp_path / "modem")},
        }
    )
    (tmp_path / "data").mkdir(mode=0o700)
    await queue_one(settings)
    daemon = Daemon(LoadedConfig(settings, None, ()))
    start = asyncio.create_task(daemon._start())
    try:
        await wait_until_async(lambda: daemon.services is not None, "the services")
        assert daemon.services is not None
        db = daemon.services.db

        async def stored() -> list[str]:
            rows = await db.execute(
                lambda conn: list(conn.query("SELECT sender FROM inbound_messages"))
            )
            return [row["sender"] for row in rows]

        # While the API is still held: the waiting message is stored and off the SIM, and
        # the queued SMS reached the modem.
        await wait_until_async(lambda: [s.submit.number for s in sim.sent], "the queued SMS")
        assert [s.submit.text for s in sim.sent] == ["Your order is ready"]
        for _ in range(500):
            if await stored() == [WAITING] and not sim.stored:
                break
            await asyncio.sleep(0.01)
        assert await stored() == [WAITING]
        assert not sim.stored, "the message should have left the SIM once stored"
        assert not start.done() and daemon.api_server is None

        held_api.set()
        await asyncio.wait_for(start, timeout=30)
        async with httpx.AsyncClient() as client:
            health = await client.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
        assert health.status_code == 200
    finally:
        held_api.set()
        if not start.done():
            await asyncio.wait_for(start, timeout=30)
        await daemon._shutdown()
        await sim.stop()
