"""The daemon with Twilio configured, against the fake Twilio: send, receipts, STOP, HELP."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon.conftest import DaemonProcess
from tests.helpers import free_port, wait_until
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, TwilioPeer

PUBLIC = "https://shop.example.com"
CUSTOMER = "+33612345678"


@pytest.fixture
def setup(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    tmp_path: Path,
    daemon_env: dict[str, str],
) -> Iterator[tuple[httpx.Client, TwilioPeer, str, DaemonProcess]]:
    port = free_port()
    with TwilioPeer() as twilio:
        config = write_config(
            f'[api]\nport = {port}\npublic_url = "{PUBLIC}"\n'
            f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nfrom_number = "+15005550006"\n'
            f'base_url = "{twilio.base_url}"\n'
        )
        env_daemon = spawn(
            "--config",
            str(config),
            "run",
            # The secret comes from the environment, as the README recommends.
            env={**daemon_env, "SHOPBELL_TWILIO_AUTH_TOKEN": AUTH_TOKEN},
        )
        env_daemon.wait_ready(port)
        token = (tmp_path / "data" / "api_token").read_text().strip()
        local = f"http://127.0.0.1:{port}"
        with httpx.Client(
            base_url=local, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as client:
            yield client, twilio, local, env_daemon
        env_daemon.signal(signal.SIGTERM)
        env_daemon.wait()


def test_send_then_delivery_receipt(setup) -> None:
    client, twilio, local, daemon = setup
    assert "sms chain: twilio" in daemon.output
    assert AUTH_TOKEN not in daemon.output
    created = client.post("/smss", json={"contact": CUSTOMER, "message": "Your bag is ready"})
    message_id = created.json()["message_id"]
    wait_until(lambda: twilio.sent, "the fake to receive the message")
    [request] = twilio.sent
    assert request.form["To"] == CUSTOMER
    assert request.form["StatusCallback"] == f"{PUBLIC}/twilio/status"
    assert request.auth_user == ACCOUNT_SID

    def status() -> str:
        return client.get(f"/api/v1/messages/{message_id}").json()["message"]["status"]

    wait_until(lambda: status() == "sent", "sent")
    form = twilio.status_form(request.sid, "delivered")
    code, _ = twilio.callback(f"{local}/twilio/status", form, signed_url=f"{PUBLIC}/twilio/status")
    assert code == 200
    assert status() == "delivered"
    # A late, out-of-order "sent" never moves it back.
    twilio.callback(
        f"{local}/twilio/status",
        twilio.status_form(request.sid, "sent"),
        signed_url=f"{PUBLIC}/twilio/status",
    )
    assert status() == "delivered"
    forged = twilio.callback(
        f"{local}/twilio/status",
        twilio.status_form(request.sid, "failed"),
        signed_url=f"{PUBLIC}/twilio/status",
        auth_token="not-the-real-token",
    )
    assert forged[0] == 403
    assert status() == "delivered"


def test_stop_by_sms_opts_out_and_help_answers(setup) -> None:
    client, twilio, local, _ = setup
    signed = f"{PUBLIC}/sms"
    code, body = twilio.callback(
        f"{local}/sms", twilio.inbound_form(CUSTOMER, "STOP"), signed_url=signed
    )
    assert code == 200 and "<Response" in body and "<Message>" not in body
    refused = client.post("/smss", json={"contact": CUSTOMER, "message": "Bags!"})
    assert refused.status_code == 409
    assert "opted out" in refused.json()["message"]
    code, body = twilio.callback(
        f"{local}/sms", twilio.inbound_form(CUSTOMER, "help"), signed_url=signed
    )
    assert code == 200 and "<Message>" in body and "STOP" in body
    twilio.callback(f"{local}/sms", twilio.inbound_form(CUSTOMER, "START"), signed_url=signed)
    again = client.post("/smss", json={"contact": CUSTOMER, "message": "Welcome back"})
    assert again.status_code == 200
    assert twilio.sent == [] or all(r.form["Body"] != "Bags!" for r in twilio.sent)
