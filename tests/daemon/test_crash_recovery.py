"""kill -9 mid-dispatch, then restart: every message ends sent, none lost, few duplicates."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.daemon.conftest import DaemonProcess
from tests.helpers import free_port, wait_until
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, TwilioPeer

MESSAGES = 500


def statuses(database: Path) -> Counter[str]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return Counter(dict(conn.execute("SELECT status, count(*) FROM messages GROUP BY status")))


def test_kill_9_mid_dispatch_loses_nothing(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    port = free_port()
    with TwilioPeer() as twilio:
        twilio.latency = 0.04
        config = write_config(
            f"[api]\nport = {port}\n"
            '[sms]\nchain = ["twilio"]\n'
            f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nauth_token = "{AUTH_TOKEN}"\n'
            f'from_number = "+15005550006"\nbase_url = "{twilio.base_url}"\n'
            "rate_per_second = 1000.0\nconcurrency = 4\n"
        )
        database = tmp_path / "data" / "shopbell.db"
        daemon = spawn("--config", str(config), "run")
        daemon.wait_ready(port)
        token = (tmp_path / "data" / "api_token").read_text().strip()
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ) as client:
            for n in range(MESSAGES):
                response = client.post(
                    "/api/v1/messages", json={"to": "+33612345678", "body": f"message {n}"}
                )
                assert response.status_code == 201, response.text
        # Let part of the queue go out, then pull the plug mid-dispatch.
        wait_until(lambda: len(twilio.sent) >= MESSAGES // 3, "dispatch to get going", timeout=30)
        daemon.signal(signal.SIGKILL)
        assert daemon.wait() == -signal.SIGKILL
        at_crash = statuses(database)
        in_flight = at_crash["sending"]
        assert sum(at_crash.values()) == MESSAGES, "every enqueued message was written down"
        assert at_crash["queued"] > 0, "the crash came mid-dispatch"
        time.sleep(0.3)  # requests the dead daemon had sent finish at the fake

        again = spawn("--config", str(config), "run")
        again.wait_ready(port)
        wait_until(
            lambda: statuses(database)["sent"] >= MESSAGES,
            lambda: f"all sent; got {statuses(database)}",
            timeout=60,
            interval=0.1,
        )
        again.signal(signal.SIGTERM)
        assert again.wait() == 0

        received = Counter(r.form["Body"] for r in twilio.sent)
    assert set(received) == {f"message {n}" for n in range(MESSAGES)}, "none lost"
    duplicates = sum(received.values()) - MESSAGES
    assert duplicates <= in_flight, f"{duplicates} duplicates, {in_flight} were in flight"
    if in_flight:
        assert "a duplicate is possible" in again.output
    assert statuses(database) == Counter({"sent": MESSAGES})
