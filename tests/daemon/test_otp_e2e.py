"""One-time codes through the real daemon: the code read from what the fake Twilio received,
verified over HTTP, never in the log or the status; the sweep in job_runs; the CLI."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.daemon.conftest import REPO, DaemonProcess
from tests.helpers import free_port, wait_until
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, Fault, TwilioPeer

CUSTOMER = "+33612345678"
SECOND = "+33612345679"
BROKEN = "+33612345670"


@dataclass
class Running:
    client: httpx.Client
    twilio: TwilioPeer
    daemon: DaemonProcess
    config: Path
    database: Path


@pytest.fixture
def running(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    tmp_path: Path,
    daemon_env: dict[str, str],
) -> Iterator[Running]:
    port = free_port()
    with TwilioPeer() as twilio:
        config = write_config(
            f"[api]\nport = {port}\n"
            # DEBUG: the most the daemon ever logs; the code must not be in it.
            '[logging]\nlevel = "DEBUG"\n'
            f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nfrom_number = "+15005550006"\n'
            f'base_url = "{twilio.base_url}"\n'
            "[otp]\nsweep_seconds = 1\n"
        )
        daemon = spawn(
            "--config",
            str(config),
            "run",
            env={**daemon_env, "SHOPBELL_TWILIO_AUTH_TOKEN": AUTH_TOKEN},
        )
        daemon.wait_ready(port)
        token = (tmp_path / "data" / "api_token").read_text().strip()
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ) as client:
            yield Running(client, twilio, daemon, config, tmp_path / "data" / "shopbell.db")
        daemon.signal(signal.SIGTERM)
        daemon.wait()


def received_code(twilio: TwilioPeer, to: str, count: int = 1) -> tuple[str, dict[str, str]]:
    """The code in the latest SMS the fake Twilio received for `to`: what the customer reads."""
    sent = wait_until(
        lambda: [r for r in twilio.sent if r.form.get("To") == to][count - 1 :],
        f"SMS number {count} to {to}",
    )
    form = sent[-1].form  # type: ignore[index]
    found = re.search(r"\b(\d{6})\b", form["Body"])
    assert found, form["Body"]
    return found.group(1), form


def query(database: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return conn.execute(sql, params).fetchall()


def shopbell(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", "--config", str(config), *args],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_whole_flow_against_the_fake_twilio(running: Running) -> None:
    client, twilio, daemon = running.client, running.twilio, running.daemon
    assert "otp-sweep" in daemon.wait_for_line("scheduler:")
    assert "sms provider console left out: a real SMS provider is configured" in daemon.output
    key = running.database.parent / "otp_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    sent = client.post("/api/send-otp", json={"phone": CUSTOMER})
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "queued"
    code, form = received_code(twilio, CUSTOMER)
    assert form["To"] == CUSTOMER
    # The SMS lives no longer than the code: the network drops it rather than deliver it late.
    assert 290 <= int(form["ValidityPeriod"]) <= 300

    status = client.get(f"/api/otp-status/{CUSTOMER}")
    assert status.json()["pending"] is True
    assert code not in status.text
    wait_until(
        lambda: client.get(f"/api/otp-status/{CUSTOMER}").json()["delivery"] == "sent",
        "the status to show the SMS sent",
    )

    guess = "000000" if code != "000000" else "111111"
    wrong = client.post("/api/verify-otp", json={"phone": CUSTOMER, "otp": guess})
    assert wrong.status_code == 400 and wrong.json()["attempts_left"] == 4
    right = client.post("/api/verify-otp", json={"phone": CUSTOMER, "otp": code})
    assert right.status_code == 200 and right.json()["verified"] is True
    replay = client.post("/api/verify-otp", json={"phone": CUSTOMER, "otp": code})
    assert replay.status_code == 400 and replay.json()["reason"] == "used"

    # Too soon for another code to the same number: 429 and how long to wait.
    again = client.post("/api/send-otp", json={"phone": CUSTOMER})
    assert again.status_code == 429
    assert 1 <= int(again.headers["Retry-After"]) <= 30

    # Exactly one of many verifies of one code, arriving together on separate connections.
    client.post("/api/send-otp", json={"phone": SECOND}).raise_for_status()
    second_code, _ = received_code(twilio, SECOND)

    def verify(_: int) -> int:
        with httpx.Client(base_url=client.base_url, headers=client.headers, timeout=10) as own:
            return own.post(
                "/api/verify-otp", json={"phone": SECOND, "otp": second_code}
            ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = sorted(pool.map(verify, range(8)))
    assert results == [200] + [400] * 7

    # The sweep runs on its schedule, is recorded, and blanks the codes' sent texts.
    wait_until(
        lambda: query(
            running.database,
            "SELECT count(*) FROM job_runs WHERE job_id = 'otp-sweep' AND outcome = 'ok'",
        )[0][0],
        "an otp-sweep run in job_runs",
    )
    wait_until(
        lambda: (
            not any(
                code in body or second_code in body
                for (body,) in query(running.database, "SELECT body FROM messages")
            )
        ),
        "the sent texts to be blanked",
    )
    stored = query(running.database, "SELECT * FROM otp_codes")
    assert stored and not any(code in str(row) or second_code in str(row) for row in stored)

    daemon.signal(signal.SIGTERM)
    daemon.wait()
    output = daemon.output
    assert "otp: login code" in output  # it did log the sends, by number and id
    for secret in (code, second_code, guess):
        assert secret not in output, f"{secret} is in the daemon's log"


def test_a_failing_provider_is_reported_as_failed_not_delivered(running: Running) -> None:
    client, twilio = running.client, running.twilio
    twilio.script(Fault.error(21211, message="Invalid 'To' Phone Number"), match=BROKEN)
    sent = client.post("/api/send-otp", json={"phone": BROKEN})
    assert sent.status_code == 200
    assert sent.json()["status"] == "queued"
    status = wait_until(
        lambda: (
            (body := client.get(f"/api/otp-status/{BROKEN}").json())["delivery"] == "failed"
            and body
        ),
        "the status to show the SMS failed",
    )
    assert status["pending"] is True  # type: ignore[index]


def test_cli_otp_send_and_status(running: Running) -> None:
    sent = shopbell(running.config, "otp", "send", "+33 6 12 34 56 78", "--purpose", "signup")
    assert sent.returncode == 0, sent.stderr
    assert "signup code for +33612345678" in sent.stdout and "queued" in sent.stdout
    code, _ = received_code(running.twilio, CUSTOMER)
    status = shopbell(running.config, "otp", "status", CUSTOMER, "--purpose", "signup")
    assert status.returncode == 0, status.stderr
    assert "a code is pending" in status.stdout and "5 tries left" in status.stdout
    assert code not in status.stdout
    other = shopbell(running.config, "otp", "status", CUSTOMER)
    assert "no code pending" in other.stdout
    limited = shopbell(running.config, "otp", "send", CUSTOMER)
    assert limited.returncode == 1
    assert "try again in" in limited.stderr
    bad = shopbell(running.config, "otp", "send", "12345")
    assert bad.returncode == 1 and "phone:" in bad.stderr


def test_with_no_real_provider_the_console_prints_codes_and_says_so(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    port = free_port()
    config = write_config(f"[api]\nport = {port}\n")
    daemon = spawn("--config", str(config), "run")
    daemon.wait_ready(port)
    warning = daemon.wait_for_line("no real provider is configured")
    assert "one-time codes included" in warning and "printed to this log" in warning
    token = (tmp_path / "data" / "api_token").read_text().strip()
    response = httpx.post(
        f"http://127.0.0.1:{port}/api/send-otp",
        json={"phone": CUSTOMER},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200
    line = daemon.wait_for_line(f"console sms to {CUSTOMER}")
    assert re.search(r"code is \d{6}\.", line), line
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_no_code_is_readable_at_rest_live_or_swept(running: Running, tmp_path: Path) -> None:
    """Issue 19: the database, its WAL and a backup hold no code in clear, neither one
    waiting to be sent (sealed) nor one sent and swept (blanked, and zeroed on disk)."""
    # SECOND's codes never get through: they wait in the outbox, retried.
    running.twilio.script(Fault.server_error(503), match=SECOND)
    assert running.client.post("/api/send-otp", json={"phone": CUSTOMER}).status_code == 200
    sent, _ = received_code(running.twilio, CUSTOMER)
    assert running.client.post("/api/send-otp", json={"phone": SECOND}).status_code == 200
    tried = wait_until(
        lambda: [r for r in running.twilio.received if r.form.get("To") == SECOND],
        "a first try to send SECOND's code",
    )
    waiting = re.search(r"\b(\d{6})\b", tried[0].form["Body"])
    assert waiting, tried[0].form["Body"]
    # The sweep (every second here) blanks the sent code's text.
    wait_until(
        lambda: (
            query(
                running.database,
                "SELECT body FROM messages WHERE recipient = ? AND kind = 'otp'",
                (CUSTOMER,),
            )
            == [("(one-time code removed)",)]
        ),
        "the sweep to blank the sent code's text",
    )
    backup = tmp_path / "backup.db"
    made = shopbell(running.config, "db", "backup", str(backup))
    assert made.returncode == 0, made.stderr

    [(stored,)] = query(
        running.database, "SELECT body FROM messages WHERE recipient = ?", (SECOND,)
    )
    assert stored.startswith("sealed:v1:"), "the waiting code is kept, sealed"
    wal = running.database.with_name(running.database.name + "-wal")
    at_rest = {
        "database": running.database.read_bytes(),
        "WAL": wal.read_bytes() if wal.exists() else b"",
        "backup": backup.read_bytes(),
    }
    for code in (sent, waiting.group(1)):
        clear = f"code is {code}".encode()
        assert [where for where, data in at_rest.items() if clear in data] == []
