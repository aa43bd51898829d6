"""No secret in any log: a full daemon run at DEBUG with every secret configured and used, its
stderr and every rotated log file searched for each secret value and each one-time code."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.daemon.conftest import REPO, DaemonProcess
from tests.daemon.test_modem_e2e import SimThread
from tests.helpers import free_port, wait_until
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, TwilioPeer

CUSTOMER = "+33612345678"
PUBLIC = "https://shop.example.com"
API_TOKEN = "api-token-7c1e5b9d0f2a4e68"
FAST2SMS_KEY = "f2s-key-0b8d3c6a9e1f4725"
SMTP_USER = "shop-mailer"
SMTP_PASSWORD = "smtp-pass-4e9a1c7b3d5f0826"
MODEM_PIN = "73918264"


class Mailbox:
    """An SMTP server that takes one login and keeps what it receives."""

    def __init__(self) -> None:
        self.logins: list[str] = []
        self.received: list[bytes] = []

    def authenticate(self, server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == SMTP_PASSWORD.encode()
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.received.append(envelope.content)
        return "250 Message accepted"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=box.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def test_no_secret_reaches_stderr_or_the_log_files(
    spawn: type[DaemonProcess],
    write_config,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    mailbox: tuple[Mailbox, int],
) -> None:
    box, smtp_port = mailbox
    sim = SimThread(link=tmp_path / "modem", pin=MODEM_PIN, send_latency=0.01)
    port = free_port()
    try:
        with TwilioPeer() as twilio:
            config = write_config(
                f'[api]\nport = {port}\ntoken = "{API_TOKEN}"\npublic_url = "{PUBLIC}"\n'
                # DEBUG: the most the daemon ever says; a small file, so it rotates.
                '[logging]\nlevel = "DEBUG"\nfile = "logs/shopbell.log"\n'
                "max_bytes = 4096\nbackups = 100\n"
                "[outbox]\nlease_seconds = 5.0\n"
                f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nauth_token = "{AUTH_TOKEN}"\n'
                f'from_number = "+15005550006"\nbase_url = "{twilio.base_url}"\n'
                f'[fast2sms]\napi_key = "{FAST2SMS_KEY}"\n'
                f'base_url = "http://127.0.0.1:{free_port()}/dev/"\n'
                f'[modem]\nport = "{sim.path}"\npin = "{MODEM_PIN}"\n'
                f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nusername = "{SMTP_USER}"\n'
                f'password = "{SMTP_PASSWORD}"\nstarttls = false\n'
                'from_address = "shop@example.com"\n'
                '[reports]\nrecipients = ["owner@example.com"]\n'
            )
            daemon = spawn("--config", str(config), "run")
            daemon.wait_ready(port)
            # The modem took its PIN: the secret was used, not just configured.
            wait_until(lambda: sim.call(lambda: sim.sim.pin_attempts) == 1, "the PIN entered")
            codes = exercise(daemon, twilio, port, config)
            wait_until(lambda: box.logins == [SMTP_USER] and box.received, "the report e-mail")
            daemon.signal(signal.SIGHUP)  # a reload re-reads the secrets
            daemon.wait_for_line("reload: configuration unchanged")
            daemon.signal(signal.SIGTERM)
            assert daemon.wait() == 0, daemon.output
    finally:
        sim.close()

    files = sorted((tmp_path / "data" / "logs").iterdir())
    assert len(files) >= 2, "the log file should have rotated at 4 KB"
    logs = {"stderr": daemon.output} | {f.name: f.read_text(encoding="utf-8") for f in files}
    assert "ready:" in "".join(logs.values())
    secrets = {
        "api token": API_TOKEN,
        "twilio auth token": AUTH_TOKEN,
        "fast2sms api key": FAST2SMS_KEY,
        "smtp password": SMTP_PASSWORD,
        "modem pin": MODEM_PIN,
    } | {f"one-time code {n}": code for n, code in enumerate(codes)}
    leaks = [
        f"{what} in {name}"
        for what, value in secrets.items()
        for name, text in logs.items()
        if value in text
    ]
    assert leaks == []
    # It did log the work, by number and id: the search had something to search.
    everything = "\n".join(logs.values())
    for seen in ("otp: login code", "POST Request: ", "SIM unlocked", "invalid token"):
        assert seen in everything, seen


def exercise(daemon: DaemonProcess, twilio: TwilioPeer, port: int, config: Path) -> list[str]:
    """Use every secret: an SMS and one-time codes through Twilio, a signed inbound SMS, a
    refused token, an e-mailed report; the codes the customer received."""
    local = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    with httpx.Client(base_url=local, headers=auth, timeout=10) as client:
        sent = client.post("/api/v1/messages", json={"to": CUSTOMER, "body": "Bags are in"})
        assert sent.status_code == 201, sent.text
        assert client.post("/api/send-otp", json={"phone": CUSTOMER}).status_code == 200
        twilio_forms = wait_until(
            lambda: [r.form for r in twilio.sent if "code" in r.form.get("Body", "")],
            "the code's SMS",
        )
        code = re.search(r"\b(\d{6})\b", twilio_forms[0]["Body"]).group(1)  # type: ignore[union-attr]
        guess = "000000" if code != "000000" else "111111"
        assert client.post("/api/verify-otp", json={"phone": CUSTOMER, "otp": guess}).status_code
        verified = client.post("/api/verify-otp", json={"phone": CUSTOMER, "otp": code})
        assert verified.status_code == 200, verified.text
        # A wrong token and a token that is almost right are refused.
        for wrong in ("nope", API_TOKEN + "x"):
            refused = httpx.get(
                f"{local}/api/v1/messages", headers={"Authorization": f"Bearer {wrong}"}
            )
            assert refused.status_code == 401
    status, _ = twilio.callback(
        f"{local}/sms", twilio.inbound_form(CUSTOMER, "HELP"), signed_url=f"{PUBLIC}/sms"
    )
    assert status == 200
    # The report is queued on the database file; the running daemon mails it (SMTP login).
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "--config", str(config), "report", "daily", "--send"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [code]
