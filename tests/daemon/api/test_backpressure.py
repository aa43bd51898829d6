"""The red-team cases of issue 19 against a real daemon: one client with the token tries to
queue 3,000 messages (it queued all of them in 19 s before); a budget meets a flood.

Now the queue stops at [outbox] max_queued with 503, Retry-After and a sentence naming the
depth; every message answered 201 is stored and goes out; health shows the queue and its ETA;
one-time codes still go; at the spending cap the API is refused while codes go on."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.daemon.conftest import DaemonProcess
from tests.helpers import daemon_client, free_port, wait_until

ATTEMPTS = 3000
MAX_QUEUED = 200


def start(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    tmp_path: Path,
    toml: str,
) -> tuple[DaemonProcess, httpx.Client]:
    port = free_port()
    config = write_config(f"[api]\nport = {port}\n" + toml)
    daemon = spawn("--config", str(config), "run")
    daemon.wait_ready(port)
    client = daemon_client(tmp_path / "data", port)
    return daemon, client


def test_3000_from_one_client_stop_at_the_limit_and_every_acknowledged_one_goes_out(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # The console "sends" 30 a second: the queue fills faster than it drains.
    daemon, client = start(
        spawn,
        write_config,
        tmp_path,
        f'[sms]\nchain = ["console"]\n[console]\nrate_per_second = 30.0\n'
        f'[outbox]\nmax_queued = {MAX_QUEUED}\n[otp]\ncountries = ["33"]\n',
    )
    with client:

        def send(n: int) -> httpx.Response:
            return client.post("/api/v1/messages", json={"to": "+33612345678", "body": f"#{n}"})

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(send, range(ATTEMPTS)))
        accepted = [a.json()["message"]["id"] for a in answers if a.status_code == 201]
        refused = [a for a in answers if a.status_code == 503]
        assert len(accepted) + len(refused) == ATTEMPTS, {a.status_code for a in answers}
        assert MAX_QUEUED <= len(accepted) < ATTEMPTS
        first = refused[0]
        assert int(first.headers["Retry-After"]) >= 1
        body = first.json()
        assert body["success"] is False and body["error"] == 503
        assert body["message"].startswith("the sms queue is full: ")
        assert f"([outbox] max_queued = {MAX_QUEUED})" in body["message"]

        # The seeds' route is held to the same limit: a burst of them while the queue is
        # full is refused but for the odd one a send just made room for.
        seeds = [
            client.post("/smss", json={"contact": f"+336123457{n:02d}", "message": "x"})
            for n in range(20)
        ]
        seed_refused = [a for a in seeds if a.status_code == 503]
        assert len(seed_refused) >= 15, [a.status_code for a in seeds]
        assert "queue is full" in seed_refused[0].json()["message"]
        accepted += [a.json()["message_id"] for a in seeds if a.status_code == 200]

        sms = client.get("/api/health").json()["components"]["outbox"]["queues"]["sms"]
        assert sms["max_queued"] == MAX_QUEUED
        assert sms["waiting"] >= MAX_QUEUED - 20
        # About the console's 30 a second (its first second is a burst of 30 more).
        assert 2 <= sms["eta_seconds"] <= 10
        assert 20 <= sms["rate_per_second"] <= 70

        # A one-time code is the daemon's own: never refused by the queue's limit.
        code = client.post("/api/send-otp", json={"phone": "+33612345670"})
        assert code.status_code == 200, code.text

        def drained() -> bool:
            queue = client.get("/api/health").json()["components"]["outbox"]["queues"]["sms"]
            return queue["waiting"] == 0

        wait_until(drained, "the queue to drain", timeout=60)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.output[-3000:]
    conn = sqlite3.connect(tmp_path / "data" / "shopbell.db")
    try:
        states = dict(
            conn.execute(
                f"SELECT id, status FROM messages WHERE id IN ({','.join('?' * len(accepted))})",
                accepted,
            ).fetchall()
        )
    finally:
        conn.close()
    assert sorted(states) == sorted(accepted), "every acknowledged message is stored"
    assert set(states.values()) == {"sent"}, "and went out"


def test_at_the_spending_cap_the_api_stops_and_codes_go_on(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    daemon, client = start(
        spawn,
        write_config,
        tmp_path,
        '[shop]\ncurrency = "EUR"\n'
        '[sms]\nchain = ["console"]\nbudget_per_day = 20\nprice_per_segment = 0.05\n'
        '[otp]\ncountries = ["33"]\n',
    )
    with client:
        statuses = [
            client.post(
                "/api/v1/messages", json={"to": f"+336123456{n:02d}", "body": "Offer!"}
            ).status_code
            for n in range(25)
        ]
        assert statuses == [201] * 20 + [503] * 5
        refused = client.post("/smss", json={"contact": "+33612345600", "message": "Offer!"})
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.json()["message"].startswith(
            "the SMS budget is spent: 20 of 20 segments today (100 %, 1.00 EUR)"
        )
        code = client.post("/api/send-otp", json={"phone": "+33612345670"})
        assert code.status_code == 200, code.text
        budget = client.get("/api/health").json()["components"]["outbox"]["budget"]
        assert budget["state"] == "spent"
        assert budget["day"]["segments"] == 21 and budget["day"]["money"] == "1.05 EUR"
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.output[-3000:]
