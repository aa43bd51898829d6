"""`shopbell doctor`: config, database, providers against local peers, the modem simulator,
the running daemon; one line per check, exit 1 on a FAIL, never a secret in the output."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner, Result

from daemon.admin.cli import cli
from daemon.admin.doctor import diagnose
from daemon.runtime.clock import ManualClock
from daemon.services.care.backups import Backups
from daemon.services.outbox.service import Outbox
from daemon.services.owner import OwnerAlerts
from storage.database import Database
from tests.daemon.conftest import DaemonProcess
from tests.daemon.test_modem_e2e import SimThread
from tests.helpers import free_port
from tests.peers.twilio import TwilioPeer

SMTP_USER = "shop@example.com"
SMTP_PASSWORD = "smtp-secret-8d1f4c2a"  # looked for in the output: it must not be there
API_TOKEN = "doctor-api-token-3e9b7d1c55"


def doctor(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "doctor", *args])


def line(result: Result, name: str) -> str:
    """The report's line for check `name` (the first one)."""
    for text in result.output.splitlines():
        status, rest = text[:4].strip(), text[6:]
        if rest.startswith(f"{name}:") and status in ("OK", "WARN", "FAIL"):
            return text
    raise AssertionError(f"no {name!r} line in:\n{result.output}")


def checks(result: Result) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in json.loads(result.output)["checks"]}


# -- config and database ----------------------------------------------------------------------


def test_fresh_config_is_ok_and_a_missing_database_is_explained(
    write_config: Callable[..., Path],
) -> None:
    config = write_config("")
    result = doctor(config)
    assert result.exit_code == 0, result.output
    assert line(result, "config").startswith("OK")
    database = line(result, "database")
    assert database.startswith("WARN")
    assert "no database yet" in database
    assert "`shopbell run` creates it" in database
    assert line(result, "daemon").startswith("WARN")
    assert "not running" in line(result, "daemon")

    assert CliRunner().invoke(cli, ["--config", str(config), "db", "migrate"]).exit_code == 0
    result = doctor(config)
    assert result.exit_code == 0, result.output
    assert line(result, "database").startswith("OK")
    assert "schema up to date" in line(result, "database")
    assert line(result, "data dir").startswith("OK")
    assert line(result, "tgtg").startswith("OK")


def test_bad_config_fails_naming_the_key(write_config: Callable[..., Path]) -> None:
    config = write_config('[api]\nport = "eighty"\n\n[smtp]\nhots = "mail"\n')
    result = doctor(config)
    assert result.exit_code == 1
    assert line(result, "config").startswith("FAIL")
    assert "api.port" in result.output
    assert "smtp.hots" in result.output
    assert "did you mean 'host'" in result.output


def test_damaged_database_fails_with_what_to_do(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config("")
    assert CliRunner().invoke(cli, ["--config", str(config), "db", "migrate"]).exit_code == 0
    database = tmp_path / "data" / "shopbell.db"
    data = bytearray(database.read_bytes())
    # Keep the header (so it is still "SQLite"), trash every page after the first.
    for offset in range(4096 + 16, len(data), 7):
        data[offset] = 0xA5
    database.write_bytes(bytes(data))
    before = database.read_bytes()

    result = doctor(config)
    assert result.exit_code == 1
    found = line(result, "database")
    assert found.startswith("FAIL")
    assert "damaged" in found or "malformed" in found
    assert "backup" in found
    assert database.read_bytes() == before  # the doctor changed nothing


def test_pending_and_unknown_schema_changes(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config("")
    assert CliRunner().invoke(cli, ["--config", str(config), "db", "migrate"]).exit_code == 0
    database = tmp_path / "data" / "shopbell.db"
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        last = conn.execute("SELECT max(id) FROM _sqlite_migrations").fetchone()[0]
        conn.execute("DELETE FROM _sqlite_migrations WHERE id = ?", [last])
    result = doctor(config)
    assert result.exit_code == 0
    found = line(result, "database")
    assert found.startswith("WARN")
    assert "1 schema change(s) pending" in found and "`shopbell db migrate`" in found

    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('shopbell', 'm999_from_the_future', '2030-01-01')"
        )
    result = doctor(config)
    assert result.exit_code == 1
    found = line(result, "database")
    assert found.startswith("FAIL")
    assert "newer shopbell (m999_from_the_future)" in found


def test_a_file_that_is_not_a_database_fails(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config("")
    (tmp_path / "data").mkdir(mode=0o700)
    (tmp_path / "data" / "shopbell.db").write_text("shopping list: eggs, milk\n")
    result = doctor(config)
    assert result.exit_code == 1
    assert "not an SQLite file" in line(result, "database")


def test_loose_permissions_are_a_warning(write_config: Callable[..., Path], tmp_path: Path) -> None:
    config = write_config("")
    assert CliRunner().invoke(cli, ["--config", str(config), "db", "migrate"]).exit_code == 0
    (tmp_path / "data").chmod(0o755)
    (tmp_path / "data" / "shopbell.db").chmod(0o644)
    result = doctor(config)
    found = line(result, "data dir")
    assert found.startswith("WARN")
    assert "chmod 700" in found
    assert "shopbell.db is mode 644" in found


async def test_backups_missing_or_stale_are_a_warning_with_what_to_do(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config('[backup]\nat = "03:30"\n')
    assert CliRunner().invoke(cli, ["--config", str(config), "db", "migrate"]).exit_code == 0
    night = datetime(2026, 3, 2, 2, 30, tzinfo=UTC)

    async def backups_line(clock: ManualClock) -> Any:
        report = await diagnose(config, clock=clock)
        [found] = [check for check in report.checks if check.name == "backups"]
        return found

    none = await backups_line(ManualClock(night))
    assert none.status == "WARN"
    assert "no backup in" in none.found and str(tmp_path / "data" / "backups") in none.found
    assert "every night at [backup] at 03:30" in none.fix

    # The daemon's own nightly backup, made by its backup job's code.
    clock = ManualClock(night)
    database = Database(tmp_path / "data" / "shopbell.db")
    await database.open()
    try:
        owner = OwnerAlerts(database, clock, Outbox(database, clock))
        await Backups(database.path, tmp_path / "data" / "backups", 7, clock, owner).run()
    finally:
        await database.close()

    fresh = await backups_line(ManualClock(night + timedelta(hours=20)))
    assert fresh.status == "OK"
    assert "shopbell-20260302T023000Z.db" in fresh.found and "20 h ago" in fresh.found

    stale = await backups_line(ManualClock(night + timedelta(hours=40)))
    assert stale.status == "WARN"
    assert "the nightly backup has not run since 2026-03-02 02:30 UTC (40 h ago" in stale.found
    assert "journalctl -u shopbell" in stale.fix
    assert (await diagnose(config, clock=ManualClock(night + timedelta(hours=40)))).ok


# -- providers --------------------------------------------------------------------------------


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    with TwilioPeer() as peer:
        yield peer


def twilio_config(peer: TwilioPeer, token: str) -> str:
    return (
        f'[twilio]\naccount_sid = "{peer.account_sid}"\nauth_token = "{token}"\n'
        f'from_number = "+15005550006"\nbase_url = "{peer.base_url}"\ntimeout_seconds = 5.0\n'
    )


def test_twilio_probe_ok_with_good_credentials_and_sends_nothing(
    write_config: Callable[..., Path], twilio: TwilioPeer
) -> None:
    result = doctor(write_config(twilio_config(twilio, twilio.auth_token)))
    found = line(result, "twilio")
    assert found.startswith("OK"), result.output
    assert "sending as +15005550006" in found
    assert twilio.sent == []
    assert [(r.method, r.path) for r in twilio.received] == [
        ("GET", f"/2010-04-01/Accounts/{twilio.account_sid}.json")
    ]
    assert line(result, "sms").startswith("OK")
    assert twilio.auth_token not in result.output
    # The clock compared with the Date header of Twilio's answer to a HEAD (no credentials).
    clock = line(result, "clock")
    assert clock.startswith("OK")
    assert "127.0.0.1's Date header within" in clock


async def test_a_clock_that_is_off_is_named(
    write_config: Callable[..., Path], twilio: TwilioPeer
) -> None:
    config = write_config(twilio_config(twilio, twilio.auth_token))
    unset = await diagnose(config, clock=ManualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    [clock] = [check for check in unset.checks if check.name == "clock"]
    assert clock.status == "FAIL"
    assert "2000-01-01" in clock.found and "timedatectl set-ntp true" in clock.fix

    ahead = ManualClock(datetime.now(UTC) + timedelta(minutes=5))
    report = await diagnose(config, clock=ahead)
    [clock] = [check for check in report.checks if check.name == "clock"]
    assert clock.status == "WARN"
    # Date has whole seconds: 300 or 301.
    assert re.search(r"127\.0\.0\.1's Date header is 30[01] s off ours", clock.found)


def test_twilio_probe_fails_with_bad_credentials_and_says_which(
    write_config: Callable[..., Path], twilio: TwilioPeer
) -> None:
    wrong = "wrong-token-0a9b8c7d6e5f"
    result = doctor(write_config(twilio_config(twilio, wrong)))
    assert result.exit_code == 1
    found = line(result, "twilio")
    assert found.startswith("FAIL")
    assert "401" in found
    assert "SHOPBELL_TWILIO_AUTH_TOKEN" in found
    assert twilio.sent == []
    assert wrong not in result.output


def test_twilio_unreachable_fails_in_plain_words(write_config: Callable[..., Path]) -> None:
    port = free_port()
    config = write_config(
        '[twilio]\naccount_sid = "AC1"\nauth_token = "tok-unreachable-1234"\n'
        f'from_number = "+15005550006"\nbase_url = "http://127.0.0.1:{port}"\n'
    )
    result = doctor(config)
    found = line(result, "twilio")
    assert found.startswith(("FAIL", "WARN"))
    assert "connection refused" in found
    assert "internet connection" in found


FAST2SMS_KEY = "f2s-key-9a8b7c6d5e4f3a2b1c"


class _Wallet(BaseHTTPRequestHandler):
    """Fast2SMS's wallet endpoint as its API documentation describes it: the key in the query."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        key = dict(parse_qsl(url.query)).get("authorization")
        if url.path == "/dev/wallet" and key == FAST2SMS_KEY:
            status, body = 200, {"return": True, "wallet": "152.50", "sms_count": 30}
        else:
            status, body = 401, {"return": False, "status_code": 412, "message": "Invalid Auth"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def wallet() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Wallet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dev/"
    finally:
        server.shutdown()
        server.server_close()


def test_fast2sms_wallet_probe(
    write_config: Callable[..., Path], wallet: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = doctor(write_config(f'[fast2sms]\napi_key = "{FAST2SMS_KEY}"\nbase_url = "{wallet}"\n'))
    found = line(good, "fast2sms")
    assert found.startswith("OK"), good.output
    assert "wallet balance 152.50" in found
    assert FAST2SMS_KEY not in good.output

    wrong = "f2s-wrong-key-000111222333"
    bad = doctor(write_config(f'[fast2sms]\napi_key = "{wrong}"\nbase_url = "{wallet}"\n'))
    assert bad.exit_code == 1
    found = line(bad, "fast2sms")
    assert found.startswith("FAIL")
    assert "Invalid Auth (code 412)" in found
    assert wrong not in bad.output
    # The key travels in the query string; httpx's request lines holding it are dropped.
    assert "HTTP Request: HEAD" in caplog.text  # httpx's lines were captured (the clock's)
    assert FAST2SMS_KEY not in caplog.text and wrong not in caplog.text
    assert logging.getLogger("httpx").filters == []


class Mailbox:
    """Accepts one login (SMTP_USER / SMTP_PASSWORD) and records whether mail came."""

    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages += 1
        return "250 OK"


def _authenticate(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == SMTP_USER
        and auth_data.password.decode() == SMTP_PASSWORD
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def smtp_config(port: int, password: str, *, starttls: bool = False) -> str:
    return (
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nfrom_address = "{SMTP_USER}"\n'
        f'username = "{SMTP_USER}"\npassword = "{password}"\n'
        f"starttls = {'true' if starttls else 'false'}\ntimeout_seconds = 5.0\n"
    )


def test_smtp_probe_logs_in_and_sends_nothing(
    write_config: Callable[..., Path], smtp_server: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp_server
    result = doctor(write_config(smtp_config(port, SMTP_PASSWORD)))
    found = line(result, "smtp")
    assert found.startswith("OK"), result.output
    assert f"logged in as {SMTP_USER}" in found
    assert mailbox.messages == 0
    assert SMTP_PASSWORD not in result.output


def test_smtp_probe_fails_on_a_refused_login_or_missing_starttls(
    write_config: Callable[..., Path], smtp_server: tuple[Mailbox, int]
) -> None:
    _, port = smtp_server
    wrong = "not-the-password-77c1"
    result = doctor(write_config(smtp_config(port, wrong)))
    assert result.exit_code == 1
    found = line(result, "smtp")
    assert found.startswith("FAIL")
    assert "refused the login" in found
    assert "SHOPBELL_SMTP_PASSWORD" in found
    assert wrong not in result.output

    result = doctor(write_config(smtp_config(port, SMTP_PASSWORD, starttls=True)))
    assert "does not offer STARTTLS" in line(result, "smtp")


def test_fcm_file_is_checked_without_sending(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    key = tmp_path / "firebase.json"
    key.write_text('{"type": "authorized_user"}')
    result = doctor(write_config(f'[fcm]\nservice_account_file = "{key}"\n'))
    found = line(result, "fcm")
    assert found.startswith("FAIL")
    assert "not a service-account key" in found
    assert "Firebase console" in found


# -- the modem ------------------------------------------------------------------------------


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[Callable[..., SimThread]]:
    made: list[SimThread] = []

    def make(**options: Any) -> SimThread:
        sim = SimThread(link=tmp_path / "modem", **options)
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()


def test_modem_probe_reads_sim_network_and_signal(
    write_config: Callable[..., Path], make_sim: Callable[..., SimThread]
) -> None:
    sim = make_sim()
    result = doctor(write_config(f'[modem]\nport = "{sim.path}"\n'))
    found = line(result, "modem")
    assert found.startswith("OK"), result.output
    assert "SIM ready" in found
    assert "registered on Sim Telecom" in found
    assert "signal -73 dBm" in found
    assert line(result, "sms").startswith("OK")


def test_modem_with_a_locked_sim_fails_and_no_pin_is_tried(
    write_config: Callable[..., Path], make_sim: Callable[..., SimThread]
) -> None:
    sim = make_sim(pin="4321")
    result = doctor(write_config(f'[modem]\nport = "{sim.path}"\n'))
    assert result.exit_code == 1
    found = line(result, "modem")
    assert found.startswith("FAIL")
    assert "SIM sim pin" in found
    assert "[modem] pin" in found

    # With a PIN configured the daemon will enter it; the doctor still never types it, so a
    # wrong one cannot use up the SIM's tries. ZTE refuses even a bare AT until then.
    zte = make_sim(pin="4321", profile="zte")
    result = doctor(write_config(f'[modem]\nport = "{zte.path}"\npin = "9999"\n'))
    found = line(result, "modem")
    assert found.startswith("WARN"), result.output
    assert "the daemon enters [modem] pin" in found
    assert "9999" not in result.output
    assert zte.call(lambda: zte.sim._pin_tries) == sim.call(lambda: sim.sim._pin_tries)


def test_modem_port_that_does_not_exist_fails(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    result = doctor(write_config(f'[modem]\nport = "{tmp_path / "ttyUSB9"}"\n'))
    found = line(result, "modem")
    assert found.startswith("FAIL")
    assert "dialout" in found


# -- with the daemon running ------------------------------------------------------------------


def test_with_the_daemon_running_doctor_reads_its_health(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    make_sim: Callable[..., SimThread],
    twilio: TwilioPeer,
) -> None:
    sim = make_sim()
    port = free_port()
    config = write_config(
        f'[api]\nport = {port}\ntoken = "{API_TOKEN}"\n'
        '[sms]\nchain = ["twilio", "modem"]\n'
        f'[modem]\nport = "{sim.path}"\n' + twilio_config(twilio, twilio.auth_token)
    )
    daemon = spawn("--config", str(config), "run")
    try:
        daemon.wait_ready(port)
        daemon.wait_for_line("is ready: Shopbell Modem Simulator", timeout=20)
        result = doctor(config, "--json")
        found = checks(result)
        assert found["daemon"]["status"] == "OK", result.output
        assert f"process {daemon.proc.pid}" in found["daemon"]["found"]
        assert found["daemon sms"]["status"] == "OK"
        assert "chain twilio -> modem" in found["daemon sms"]["found"]
        # The daemon owns the port: the modem's state comes from it, not from the port.
        assert found["modem"]["status"] == "OK"
        assert found["modem"]["found"].startswith("(from the daemon) ready")
        assert "within" in found["clock"]["found"]
        # Open owner alerts come from the daemon's health; here nobody is set to be told.
        owner = found["daemon owner alerts"]
        assert owner["status"] == "WARN" and "set [owner] phone and/or email" in owner["fix"]
        assert found["database"]["status"] == "OK"
        for secret in (API_TOKEN, twilio.auth_token):
            assert secret not in result.output
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()


def test_a_daemon_holding_the_lock_but_not_answering_fails(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    from daemon.runtime.lock import InstanceLock

    config = write_config(f"[api]\nport = {free_port()}\n")
    (tmp_path / "data").mkdir(mode=0o700)
    with InstanceLock(tmp_path / "data" / "shopbell.db"):
        result = doctor(config)
    assert result.exit_code == 1
    found = line(result, "daemon")
    assert found.startswith("FAIL")
    assert "does not answer" in found


def test_json_report_has_every_check(write_config: Callable[..., Path]) -> None:
    result = doctor(write_config(""), "--json")
    body = json.loads(result.output)
    assert body["ok"] is True
    names = [check["name"] for check in body["checks"]]
    for name in ("config", "data dir", "database", "daemon", "twilio", "modem", "clock", "disk"):
        assert name in names
    assert all(check["status"] in ("OK", "WARN", "FAIL") for check in body["checks"])
