"""`shopbell run` with [fcm] pointed at the fake FCM: push end to end over HTTP and the CLI,
dead tokens pruned, an unusable key file reported while the rest runs, the console fallback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon.conftest import REPO, DaemonProcess
from tests.helpers import daemon_client, free_port, wait_until
from tests.peers.fcm import PROJECT_ID, Fault, FcmPeer

TOKEN = "dyimeAKczeP3UJ8ynvI1I2:APA91bHQFAK2d28Tyfg89zqWVrPynCCEXF9eNnRW705fFxEdDE4klEBsq"
FINAL = {"sent", "delivered", "failed", "cancelled", "undelivered"}


@pytest.fixture
def peer() -> Iterator[FcmPeer]:
    with FcmPeer() as fake:
        yield fake


@pytest.fixture
def start(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], tmp_path: Path
) -> Iterator[Callable[[str], tuple[httpx.Client, DaemonProcess, Path]]]:
    clients: list[tuple[httpx.Client, DaemonProcess]] = []

    def run(extra: str) -> tuple[httpx.Client, DaemonProcess, Path]:
        port = free_port()
        config = write_config(
            f"[api]\nport = {port}\n"
            "[outbox]\nbackoff_base_seconds = 0.1\nbreaker_cooldown_seconds = 1.0\n" + extra
        )
        daemon = spawn("--config", str(config), "run")
        daemon.wait_ready(port)
        client = daemon_client(tmp_path / "data", port)
        clients.append((client, daemon))
        return client, daemon, config

    yield run
    for client, daemon in clients:
        client.close()
        daemon.signal(signal.SIGTERM)
        daemon.wait()


def outcomes(client: httpx.Client, notification_id: int) -> list[dict]:
    return client.get(f"/api/v1/notifications/{notification_id}").json()["outcomes"]


def settled(client: httpx.Client, notification_id: int) -> list[dict]:
    return wait_until(  # type: ignore[return-value]
        lambda: (
            (rows := outcomes(client, notification_id))
            and all(r["status"] in FINAL for r in rows)
            and rows
        ),
        f"notification {notification_id} to settle",
    )


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


def test_push_through_fcm_end_to_end(peer: FcmPeer, start, tmp_path: Path) -> None:
    account = peer.write_service_account(tmp_path / "firebase.json")
    client, daemon, config = start(
        f'[fcm]\nservice_account_file = "{account}"\nbase_url = "{peer.base_url}"\n'
        "timeout_seconds = 2.0\n"
    )
    assert "push chain: fcm" in daemon.output
    daemon.wait_for_line("provider fcm: ok")
    push = client.get("/api/health").json()["components"]["push"]
    assert push["state"] == "ok" and push["chain"] == ["fcm"]
    assert PROJECT_ID in push["providers"]["fcm"]["detail"]

    peer.script(Fault.dead(), match="uninstalled")
    created = client.post(
        "/notifications/tokens",
        json={"tokens": [TOKEN, "uninstalled", "second"], "title": "Fresh bread", "body": "Hi"},
    )
    assert created.status_code == 200, created.text
    notification_id = created.json()["notification_id"]
    rows = {r["recipient"]: r for r in settled(client, notification_id)}
    assert rows[TOKEN]["status"] == "sent" and rows["second"]["status"] == "sent"
    assert rows[TOKEN]["provider"] == "fcm"
    assert rows[TOKEN]["provider_message_id"].startswith(f"projects/{PROJECT_ID}/messages/")
    assert rows["uninstalled"]["status"] == "failed"
    assert rows["uninstalled"]["error_code"] == "UNREGISTERED"
    assert sorted(s.token for s in peer.accepted) == sorted([TOKEN, "second"])
    assert all(s.message["notification"]["title"] == "Fresh bread" for s in peer.accepted)

    # The daemon's opt-out hook marked the dead token; it is never sent to again.
    dead = wait_until(
        lambda: client.get("/api/v1/push-tokens", params={"valid": "false"}).json()["tokens"],
        "the dead token to be marked",
    )
    assert [t["token"] for t in dead] == ["uninstalled"]  # type: ignore[index]
    assert "UNREGISTERED" in dead[0]["invalid_reason"]  # type: ignore[index]
    again = client.post(
        "/notifications/tokens", json={"tokens": ["uninstalled"], "title": "", "body": "Again"}
    ).json()
    [cancelled] = settled(client, again["notification_id"])
    assert cancelled["status"] == "cancelled"
    assert [s.token for s in peer.received].count("uninstalled") == 1

    # The CLI, through the API: a topic, and a token with data.
    result = shopbell(config, "push", "--topic", "news", "--title", "News", "--body", "Open at 9")
    assert result.returncode == 0, result.stderr
    assert "to topic news: 1 message(s) queued" in result.stdout
    result = shopbell(config, "push", "--token", TOKEN, "--body", "Bags", "--data", "store=12")
    assert result.returncode == 0, result.stderr
    wait_until(lambda: len(peer.accepted) == 4, "the CLI's pushes to reach FCM")
    topic, with_data = peer.accepted[2:]
    if topic.topic is None:
        topic, with_data = with_data, topic
    assert topic.topic == "news" and topic.message["notification"]["title"] == "News"
    assert with_data.token == TOKEN and with_data.message["data"] == {"store": "12"}
    bad = shopbell(config, "push", "--token", TOKEN, "--topic", "news", "--body", "x")
    assert bad.returncode != 0 and "not both" in bad.stderr

    # Registering again brings the token back.
    back = client.post("/api/v1/push-tokens", json={"token": "uninstalled"})
    assert back.status_code == 200 and back.json()["token"]["valid"]

    # Neither the key nor an access token ever reaches the log.
    key_lines = [line for line in peer.private_key_pem.splitlines() if "-----" not in line]
    assert peer.issued_tokens
    leaked = [s for s in (*peer.issued_tokens, *key_lines) if s in daemon.output]
    assert leaked == []
    assert len(peer.grants) == 1


def test_an_unusable_key_file_is_reported_and_the_rest_runs(start, tmp_path: Path) -> None:
    broken = tmp_path / "firebase.json"
    broken.write_text('{"type": "service_account", "private_key": ', encoding="utf-8")
    client, daemon, _ = start(f'[fcm]\nservice_account_file = "{broken}"\n')
    line = daemon.wait_for_line("cannot use [fcm] service_account_file")
    assert "not valid JSON" in line and str(broken) in line
    push = client.get("/api/health").json()["components"]["push"]
    assert push["state"] == "down"
    assert "not valid JSON" in push["providers"]["fcm"]["detail"]
    # Pushes are taken and kept, waiting for FCM; SMS goes on as before.
    created = client.post(
        "/notifications/tokens", json={"tokens": [TOKEN], "title": "t", "body": "kept"}
    )
    assert created.status_code == 200
    notification_id = created.json()["notification_id"]
    waiting = wait_until(
        lambda: [
            r
            for r in outcomes(client, notification_id)
            if r["status"] == "queued" and "waiting for a provider" in (r["last_error"] or "")
        ],
        "the push to wait for FCM",
    )
    assert waiting
    sms = client.post("/smss", json={"contact": "+201009129288", "message": "still works"})
    message_id = sms.json()["message_id"]
    wait_until(
        lambda: client.get(f"/api/v1/messages/{message_id}").json()["message"]["status"] == "sent",
        "the SMS to go out through the console",
    )
    assert client.get("/api/health").json()["components"]["sms"]["state"] == "ok"


def test_without_fcm_the_console_prints_pushes(start) -> None:
    client, daemon, _ = start("")
    assert "push chain: console" in daemon.output
    created = client.post(
        "/notifications/tokens", json={"tokens": [TOKEN], "title": "t", "body": "Printed push"}
    )
    [row] = settled(client, created.json()["notification_id"])
    assert row["status"] == "sent" and row["provider"] == "console"
    daemon.wait_for_line("console push to")
    assert client.get("/api/health").json()["components"]["push"]["state"] == "ok"
