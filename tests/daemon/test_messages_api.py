"""The outbox through a running daemon on the console provider: /smss, /api/v1/messages, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.daemon.conftest import REPO, DaemonProcess
from tests.helpers import free_port, wait_until


@pytest.fixture
def running(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], tmp_path: Path
) -> Iterator[tuple[httpx.Client, Path, DaemonProcess]]:
    port = free_port()
    config = write_config(f"[api]\nport = {port}\n[sms]\nsmss_per_minute = 3\n")
    daemon = spawn("--config", str(config), "run")
    daemon.wait_ready(port)
    token = (tmp_path / "data" / "api_token").read_text().strip()
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as client:
        yield client, config, daemon
    daemon.signal(signal.SIGTERM)
    daemon.wait()


def wait_status(client: httpx.Client, message_id: int, want: str) -> dict:
    def message() -> dict:
        return client.get(f"/api/v1/messages/{message_id}").json()

    return wait_until(
        lambda: (body := message())["message"]["status"] == want and body,
        lambda: f"message {message_id} to reach {want}; it is {message()}",
        timeout=10,
    )


def test_smss_sends_through_the_console_and_logs_every_step(running) -> None:
    client, _, daemon = running
    response = client.post(
        "/smss", json={"contact": "+201009129288", "subject": "Hi", "message": "Bags are in"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"success": True, "message_id": body["message_id"]}
    detail = wait_status(client, body["message_id"], "sent")
    message = detail["message"]
    assert message["provider"] == "console"
    assert message["encoding"] == "gsm7" and message["segments"] == 1
    assert [e["state"] for e in detail["events"]] == ["queued", "sending", "sent"]
    daemon.wait_for_line("console sms to +201009129288")
    assert "no real provider is configured" in daemon.output
    sms = client.get("/api/health").json()["components"]["sms"]
    assert sms["chain"] == ["console"]
    assert sms["providers"]["console"]["state"] == "ok"
    assert "not configured" in sms["left_out"]["twilio"]


def test_smss_refuses_bad_input_naming_the_field(running) -> None:
    client, _, _ = running
    bad = client.post("/smss", json={"contact": "12345", "message": "x"})
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("contact:")
    missing = client.post("/smss", json={"contact": "+201009129288"})
    assert missing.status_code == 400
    assert "body.message" in missing.json()["message"]
    long_text = client.post("/smss", json={"contact": "+201009129288", "message": "é" * 5000})
    assert long_text.status_code == 400
    assert "segments" in long_text.json()["message"]
    listed = client.get("/api/v1/messages").json()["messages"]
    assert listed == [], "nothing refused was written"


def test_smss_per_minute_limit_per_contact(running) -> None:
    client, _, _ = running
    for _ in range(3):
        assert client.post("/smss", json={"contact": "+201009129288", "message": "x"}).is_success
    limited = client.post("/smss", json={"contact": "+20 100 912 9288", "message": "x"})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["error"] == 429
    other = client.post("/smss", json={"contact": "+201009129289", "message": "x"})
    assert other.status_code == 200, "the limit is per contact"


def test_smss_limit_holds_under_concurrent_requests(running) -> None:
    client, _, _ = running

    def post(_: int) -> int:
        return client.post("/smss", json={"contact": "+201009129277", "message": "x"}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(post, range(16)))
    assert codes.count(200) == 3, codes
    assert codes.count(429) == 13


def test_v1_messages_idempotency_cancel_retry_and_filters(running) -> None:
    client, _, _ = running
    first = client.post(
        "/api/v1/messages", json={"to": "+201009129288", "body": "one", "idempotency_key": "k1"}
    )
    assert first.status_code == 201
    again = client.post(
        "/api/v1/messages", json={"to": "+201009129288", "body": "one", "idempotency_key": "k1"}
    )
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["message"]["id"] == first.json()["message"]["id"]
    conflict = client.post(
        "/api/v1/messages", json={"to": "+201009129288", "body": "two", "idempotency_key": "k1"}
    )
    assert conflict.status_code == 409
    message_id = first.json()["message"]["id"]
    wait_status(client, message_id, "sent")
    refused = client.post(f"/api/v1/messages/{message_id}/cancel")
    assert refused.status_code == 409
    assert "only a queued message can be cancelled" in refused.json()["message"]
    assert client.post(f"/api/v1/messages/{message_id}/retry").status_code == 409
    assert client.get("/api/v1/messages/999999").status_code == 404
    sent = client.get("/api/v1/messages", params={"status": "sent"}).json()["messages"]
    assert [m["id"] for m in sent] == [message_id]
    assert client.get("/api/v1/messages", params={"status": "failed"}).json()["messages"] == []
    by_number = client.get("/api/v1/messages", params={"recipient": "+20 100 912 9288"}).json()
    assert [m["id"] for m in by_number["messages"]] == [message_id]
    bad = client.get("/api/v1/messages", params={"status": "lost"})
    assert bad.status_code == 400


def test_cli_send_and_messages(running) -> None:
    _, config, _ = running
    env = dict(os.environ)

    def shopbell(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(config), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    sent = shopbell("send", "--to", "+201009129288", "Hello from the CLI")
    assert sent.returncode == 0, sent.stderr
    assert "queued" in sent.stdout and "+201009129288" in sent.stdout
    wait_until(
        lambda: "Hello from the CLI" in shopbell("messages", "--status", "sent").stdout,
        "`shopbell messages --status sent` to list it",
        timeout=10,
        interval=0.2,
    )
    bad = shopbell("send", "--to", "nope", "x")
    assert bad.returncode == 1
    assert "to:" in bad.stderr
