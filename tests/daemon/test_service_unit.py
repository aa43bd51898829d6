"""The systemd unit and `shopbell service install|status`, with a fake systemctl on PATH."""

from __future__ import annotations

import configparser
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from daemon.admin.cli import cli
from daemon.admin.service_unit import UnitSpec, reference_unit, render_unit
from tests.daemon.conftest import REPO, DaemonProcess
from tests.helpers import free_port

UNIT = REPO / "deploy" / "shopbell.service"
ME = pwd.getpwuid(os.getuid()).pw_name
FAKE_SYSTEMCTL = """#!/bin/sh
# A stand-in for systemctl: records its arguments, answers `show` from a file.
echo "$*" >> "{log}"
case "$*" in
  *show*) cat "{show}" ;;
esac
if [ -f "{fail}" ]; then cat "{fail}" >&2; exit 1; fi
exit 0
"""
SHOW_RUNNING = """LoadState=loaded
ActiveState=active
SubState=running
MainPID=4242
ExecMainStartTimestamp=Sun 2026-11-22 03:10:00 UTC
NRestarts=2
UnitFileState=enabled
FragmentPath=/etc/systemd/system/shopbell.service
StatusText=serving on http://127.0.0.1:8765; 3 queued
Result=success
"""


def parse_unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys keep their case
    parser.read_string(text)
    return parser


class FakeSystemctl:
    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "systemctl.log"
        self.show = root / "show.txt"
        self.fail = root / "fail.txt"
        self.show.write_text(SHOW_RUNNING)
        script = self.bin / "systemctl"
        script.write_text(FAKE_SYSTEMCTL.format(log=self.log, show=self.show, fail=self.fail))
        script.chmod(0o755)

    @property
    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSystemctl:
    fake = FakeSystemctl(tmp_path)
    monkeypatch.setenv("PATH", f"{fake.bin}{os.pathsep}{os.environ['PATH']}")
    return fake


def shopbell(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_the_shipped_unit_is_what_install_writes_and_has_what_systemd_needs() -> None:
    text = UNIT.read_text(encoding="utf-8")
    assert text == reference_unit(), (
        "deploy/shopbell.service is stale: "
        "python -m daemon.admin.service_unit > deploy/shopbell.service"
    )
    unit = parse_unit(text)
    service = unit["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["WatchdogSec"] == "30" and service["Restart"] == "on-failure"
    assert int(service["RestartSec"]) > 0
    assert service["ExecStart"] == (
        "/opt/shopbell/.venv/bin/shopbell --config /etc/shopbell/config.toml run"
    )
    assert service["User"] == "shopbell" and service["SupplementaryGroups"] == "dialout"
    for key, value in {
        "ProtectSystem": "strict",
        "ProtectHome": "true",
        "PrivateTmp": "true",
        "NoNewPrivileges": "true",
        "ReadWritePaths": "/var/lib/shopbell",
    }.items():
        assert service[key] == value, key
    # A modem plugged in after the start must stay reachable: no private /dev.
    assert "PrivateDevices" not in service and "DevicePolicy" not in service
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # Room for the default 256 API connections and the daemon's own files (1,024 at most
    # by the default soft limit, which 1,224 idle sockets once exhausted).
    assert int(service["LimitNOFILE"]) >= 256 + 1024


def test_stop_timeout_is_above_what_the_daemon_spends_stopping(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path]
) -> None:
    # The budget the daemon itself announces when it stops, every stage counted.
    port = free_port()
    daemon = spawn("--config", str(write_config(f"[api]\nport = {port}\n")), "run")
    daemon.wait_ready(port)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    found = re.search(r"stopping: \d+ stages, budget ([\d.]+)s", daemon.output)
    assert found, daemon.output
    timeout = int(parse_unit(UNIT.read_text())["Service"]["TimeoutStopSec"])
    assert timeout > float(found.group(1)) + 5


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("user_unit", [False, True], ids=["system", "user"])
def test_systemd_itself_finds_nothing_wrong_in_the_unit(tmp_path: Path, user_unit: bool) -> None:
    unit = tmp_path / "shopbell.service"
    text = render_unit(
        UnitSpec(
            exec_start=(sys.executable, "-m", "daemon", "run"),
            user_unit=user_unit,
            stop_timeout_seconds=45,
            stop_arithmetic="test",
            writable=(tmp_path,),
        )
    )
    unit.write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", *(["--user"] if user_unit else []), str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "Failed to initialize manager" in done.stderr:
        pytest.skip("systemd-analyze cannot start a user manager here")
    complaints = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if str(unit) in line or "Unknown" in line or "nvalid" in line
    ]
    assert complaints == []


def test_dry_run_prints_the_unit_and_the_commands_and_changes_nothing(
    systemctl: FakeSystemctl, tmp_path: Path
) -> None:
    result = shopbell(
        "service", "install", "--user", "--dry-run", "--unit-dir", str(tmp_path / "u")
    )
    assert result.exit_code == 0, result.output
    assert f"would write {tmp_path / 'u' / 'shopbell.service'}:" in result.output
    assert "Type=notify" in result.output
    assert "would run: systemctl --user daemon-reload" in result.output
    assert "would run: systemctl --user enable --now shopbell.service" in result.output
    assert not (tmp_path / "u").exists()
    assert systemctl.calls == []


def test_user_install_writes_reloads_enables_and_starts(
    systemctl: FakeSystemctl, tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    config = write_config("")
    units = tmp_path / "units"
    result = shopbell(
        "--config", str(config), "service", "install", "--user", "--unit-dir", str(units)
    )
    assert result.exit_code == 0, result.output
    unit = parse_unit((units / "shopbell.service").read_text())
    command = unit["Service"]["ExecStart"].split()
    # This installation's own command, with the config it was installed with.
    assert command[0] == str(Path(sys.prefix) / "bin" / "shopbell")
    assert command[1:] == ["--config", str(config), "run"]
    # A user unit runs as you, in your home: no User=, no ProtectHome.
    assert "User" not in unit["Service"] and "ProtectHome" not in unit["Service"]
    assert unit["Install"]["WantedBy"] == "default.target"
    assert systemctl.calls == ["--user daemon-reload", "--user enable --now shopbell.service"]
    assert "ran: systemctl --user enable --now shopbell.service" in result.output
    assert "shopbell is enabled and started" in result.output


def test_system_install_runs_as_the_service_user_with_its_data_dir_writable(
    systemctl: FakeSystemctl, tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    log_dir = tmp_path / "logs"
    config = write_config(f'[logging]\nfile = "{log_dir / "shopbell.log"}"\n')
    units = tmp_path / "units"
    args = ["--config", str(config), "service", "install", "--unit-dir", str(units)]
    result = shopbell(*args, "--run-as", ME)
    assert result.exit_code == 0, result.output
    service = parse_unit((units / "shopbell.service").read_text())["Service"]
    assert service["User"] == ME
    assert service["ReadWritePaths"].split() == [str(tmp_path / "data"), str(log_dir)]
    assert service["ProtectHome"] == "true"
    # The folders exist before the start (systemd refuses a missing ReadWritePaths).
    assert (tmp_path / "data").is_dir() and log_dir.is_dir()
    assert systemctl.calls == ["daemon-reload", "enable --now shopbell.service"]


def test_a_usb_replica_folder_is_writable_without_being_made_and_its_stop_is_counted(
    systemctl: FakeSystemctl, tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    usb = tmp_path / "usb" / "shopbell"  # not mounted yet
    config = write_config(f'[replica]\nurl = "file://{usb}"\nstop_seconds = 20\n')
    units = tmp_path / "units"
    args = ["--config", str(config), "service", "install", "--unit-dir", str(units)]
    result = shopbell(*args, "--run-as", ME)
    assert result.exit_code == 0, result.output
    lines = (units / "shopbell.service").read_text().splitlines()
    assert f"ReadWritePaths=-{usb}" in lines
    assert not usb.exists(), "install never makes the replica's folder on the root disk"
    [timeout] = [line for line in lines if line.startswith("TimeoutStopSec=")]
    # The stages without a replica, then the replica's 20 s and the 2 s to kill it.
    assert int(timeout.split("=")[1]) == 40 + 22 + 15


def test_open_files_limit_follows_the_configured_connection_cap(
    systemctl: FakeSystemctl, tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    config = write_config("[api]\nmax_connections = 10000\n")
    units = tmp_path / "units"
    args = ["--config", str(config), "service", "install", "--user", "--unit-dir", str(units)]
    result = shopbell(*args)
    assert result.exit_code == 0, result.output
    service = parse_unit((units / "shopbell.service").read_text())["Service"]
    assert int(service["LimitNOFILE"]) >= 10000 + 1024


def test_system_install_says_what_is_missing(
    systemctl: FakeSystemctl,
    tmp_path: Path,
    write_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    units = ["--unit-dir", str(tmp_path / "units")]
    config = write_config("")

    nobody = shopbell(
        "--config", str(config), "service", "install", *units, "--run-as", "nosuchuser"
    )
    assert nobody.exit_code == 1
    assert "there is no user 'nosuchuser'" in nobody.output and "useradd --system" in nobody.output

    empty = write_config('[paths]\ndata_dir = ""\n', name="empty.toml")
    homeless = shopbell("--config", str(empty), "service", "install", *units)
    assert homeless.exit_code == 1
    assert "[paths] data_dir is empty" in homeless.output and "/var/lib/shopbell" in homeless.output

    # A missing config is written at install, with the service's data folder.
    fresh = shopbell(
        "--config", str(tmp_path / "etc" / "c.toml"), "service", "install", *units, "--dry-run"
    )
    assert fresh.exit_code == 0, fresh.output
    assert "would write" in fresh.output and "data_dir /var/lib/shopbell" in fresh.output
    assert "ReadWritePaths=/var/lib/shopbell" in fresh.output

    # A config the service's user could not read would fail every start: refused now.
    config.chmod(0o600)
    unreadable = shopbell(
        "--config", str(config), "service", "install", *units, "--run-as", "nobody"
    )
    assert unreadable.exit_code == 1
    assert f"the service's user nobody cannot read {config}" in unreadable.output
    assert "chmod 0640" in unreadable.output

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    not_root = shopbell("--config", str(config), "service", "install", *units)
    assert not_root.exit_code == 1
    assert "needs root: run it with sudo" in not_root.output and "--user" in not_root.output
    assert systemctl.calls == []
    assert not (tmp_path / "units").exists()


def test_no_systemctl_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_config: Callable[..., Path]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    config = write_config("")
    result = shopbell("--config", str(config), "service", "install", "--user")
    assert result.exit_code == 1
    assert "systemctl is not on PATH" in result.output
    status = shopbell("service", "status")
    assert status.exit_code == 1 and "systemctl is not on PATH" in status.output


def test_a_failing_systemctl_is_reported_with_its_words(
    systemctl: FakeSystemctl, tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    systemctl.fail.write_text("Failed to connect to bus: No medium found\n")
    config = write_config("")
    args = ["--config", str(config), "service", "install", "--user", "--unit-dir", str(tmp_path)]
    result = shopbell(*args)
    assert result.exit_code == 1
    assert "`systemctl --user daemon-reload` failed: Failed to connect to bus" in result.output


def test_status_reads_back_what_systemd_shows(systemctl: FakeSystemctl) -> None:
    result = shopbell("service", "status")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "shopbell.service (system): active (running), pid 4242",
        "  unit file: /etc/systemd/system/shopbell.service (enabled)",
        "  started: Sun 2026-11-22 03:10:00 UTC",
        "  restarts: 2",
        "  status: serving on http://127.0.0.1:8765; 3 queued",
    ]
    assert systemctl.calls[0].startswith("show shopbell.service --property=")
    for prop in ("ActiveState", "SubState", "MainPID", "ExecMainStartTimestamp", "NRestarts"):
        assert prop in systemctl.calls[0]


def test_status_of_a_stopped_or_missing_service(systemctl: FakeSystemctl) -> None:
    systemctl.show.write_text(
        "LoadState=loaded\nActiveState=failed\nSubState=failed\nMainPID=0\n"
        "ExecMainStartTimestamp=\nNRestarts=5\nUnitFileState=enabled\nResult=watchdog\n"
    )
    failed = shopbell("service", "status", "--user")
    assert failed.exit_code == 3
    assert failed.output.splitlines()[0] == "shopbell.service (user): failed (failed)"
    assert "  started: never" in failed.output and "  restarts: 5" in failed.output
    assert "  last result: watchdog" in failed.output
    assert systemctl.calls[0].startswith("--user show")

    systemctl.show.write_text("LoadState=not-found\nActiveState=inactive\n")
    missing = shopbell("service", "status")
    assert missing.exit_code == 3
    assert "not installed; `sudo shopbell service install` installs it" in missing.output
