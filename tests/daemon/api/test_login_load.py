"""30 clients hammering /login must leave the rest of a real daemon answering (issue 16).

argon2 costs about 30 ms a check with the daemon's real parameters. On the event loop, 30
clients guessing passwords put every other request 2-3 s behind them; in the hashing threads
(bounded, refused past the bound with 503) health checks and sends keep answering. This test
checks that they answer, within a generous timeout; the latency figures are measured by
bench/login_load.py, not asserted here.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.daemon.conftest import DaemonProcess
from tests.helpers import free_port

TOKEN = "login-load-token-0123456789abcdef"
PASSWORD = "correct horse battery"
HAMMERS = 30
SECONDS = 4.0
# A probe answer slower than this fails the test: "a couple of seconds", not a latency goal.
PROBE_TIMEOUT = 3.0


async def _hammer(client: httpx.AsyncClient, number: int, stop: asyncio.Event) -> Counter[int]:
    """Wrong passwords for a new name each time, so every try reaches the hasher."""
    statuses: Counter[int] = Counter()
    i = 0
    while not stop.is_set():
        i += 1
        body = {"username": f"ghost-{number}-{i}", "password": "wrong-password"}
        response = await client.post("/login", json=body)
        statuses[response.status_code] += 1
    return statuses


async def _probe(client: httpx.AsyncClient, stop: asyncio.Event) -> list[tuple[str, int, float]]:
    """Health checks and sends, one after the other, while the hammers run."""
    answers: list[tuple[str, int, float]] = []
    i = 0
    while not stop.is_set():
        i += 1
        began = time.perf_counter()
        health = await client.get("/api/health")
        answers.append(("health", health.status_code, time.perf_counter() - began))
        began = time.perf_counter()
        sent = await client.post(
            "/smss",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"contact": f"+4474{i:08d}", "subject": "", "message": "bags are in"},
        )
        answers.append(("smss", sent.status_code, time.perf_counter() - began))
        await asyncio.sleep(0.1)
    return answers


async def _load(base: str) -> tuple[Counter[int], list[tuple[str, int, float]]]:
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=HAMMERS, max_keepalive_connections=HAMMERS)
    async with (
        httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as hammers,
        httpx.AsyncClient(base_url=base, timeout=PROBE_TIMEOUT) as probes,
    ):
        tasks = [asyncio.create_task(_hammer(hammers, n, stop)) for n in range(HAMMERS)]
        # Let the hammers fill the hasher before the first probe.
        await asyncio.sleep(0.5)
        probing = asyncio.create_task(_probe(probes, stop))
        await asyncio.sleep(SECONDS)
        stop.set()
        answers = await probing
        totals: Counter[int] = Counter()
        for counted in await asyncio.gather(*tasks):
            totals.update(counted)
    return totals, answers


def test_health_and_sends_answer_while_30_clients_hammer_login(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path]
) -> None:
    port = free_port()
    config = write_config(
        f'[api]\nport = {port}\ntoken = "{TOKEN}"\n\n'
        '[sms]\nchain = ["console"]\n\n'
        # High enough that the per-client login limit never turns the load away before it
        # reaches the hasher: this test is about the hasher.
        "[limits]\nlogins = 10000\n"
    )
    daemon = spawn("--config", str(config), "run")
    daemon.wait_ready(port)
    base = f"http://127.0.0.1:{port}"
    signup = httpx.post(f"{base}/signup", json={"username": "asha", "password": PASSWORD})
    assert signup.status_code == 201, signup.text

    totals, answers = asyncio.run(_load(base))

    # The load reached the hasher (401s), and whatever it refused past its bound got the
    # busy answer, never an error or a hang.
    assert totals[401] >= HAMMERS, totals
    assert set(totals) <= {401, 503}, totals
    kinds = Counter(kind for kind, _, _ in answers)
    assert kinds["health"] >= 3 and kinds["smss"] >= 3, answers
    # Each answered (httpx would have raised past PROBE_TIMEOUT), and answered well.
    assert all(status == 200 for _, status, _ in answers), answers
    # The hammered door still opens for the right password: nobody locked asha out.
    logged = httpx.post(f"{base}/login", json={"username": "asha", "password": PASSWORD})
    assert logged.status_code == 200, logged.text
