"""The systemd unit: written, enabled and read back by `shopbell service install|status`."""

from __future__ import annotations

import math
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from daemon.app.lifecycle import (
    DIRECT_ALERT_SECONDS,
    HTTP_CLIENT_CLOSE_SECONDS,
    PROVIDERS_CLOSE_SECONDS,
    REPLICA_KILL_SECONDS,
)
from daemon.config import (
    ENV_CONFIG,
    ConfigError,
    Settings,
    default_config_path,
    load_config,
    reference_config_text,
)
from daemon.runtime.logs import log_file_path

UNIT_NAME = "shopbell.service"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
SYSTEM_CONFIG = Path("/etc/shopbell/config.toml")
SYSTEM_DATA_DIR = Path("/var/lib/shopbell")
ENV_FILE = Path("/etc/shopbell/env")
SERVICE_USER = "shopbell"
# The group that owns serial ports (/dev/ttyUSB*, /dev/ttyACM*, /dev/serial0) on Debian.
SERIAL_GROUP = "dialout"
WATCHDOG_SECONDS = 30
RESTART_SECONDS = 5
# Past [shutdown] and the fixed stages, before systemd sends SIGKILL.
STOP_MARGIN_SECONDS = 15
# A first start migrates the database; on an SD card that takes a while.
START_TIMEOUT_SECONDS = 120
SYSTEMCTL_TIMEOUT_SECONDS = 60
# LimitNOFILE: one file per API connection up to [api] max_connections (granian leaves the
# rest in the listen backlog, holding none of ours), plus the daemon's own: the database and
# its WAL, the log, the modem, outbound HTTPS pools, pipes; never below systemd's usual 4096.
OWN_FILES = 1024
MIN_OPEN_FILES = 4096
STATUS_PROPERTIES = (
    "LoadState",
    "ActiveState",
    "SubState",
    "MainPID",
    "ExecMainStartTimestamp",
    "NRestarts",
    "UnitFileState",
    "FragmentPath",
    "StatusText",
    "Result",
)


class ServiceError(Exception):
    """`shopbell service` cannot do what was asked; the message says why and what to do."""


@dataclass(frozen=True)
class UnitSpec:
    """What differs between one installation's unit and another's."""

    exec_start: tuple[str, ...]
    user_unit: bool
    stop_timeout_seconds: int
    stop_arithmetic: str
    writable: tuple[Path, ...] = ()
    # A file:// replica's folder (a USB disk): writable when mounted, never made by install.
    replica_folder: Path | None = None
    run_as: str = SERVICE_USER
    max_connections: int = Settings().api.max_connections


def open_files_limit(max_connections: int) -> int:
    """LimitNOFILE for a connection cap: the cap plus the daemon's own, in whole KiB."""
    return max(MIN_OPEN_FILES, -(-(max_connections + OWN_FILES) // 1024) * 1024)


def stop_timeout(settings: Settings) -> tuple[int, str]:
    """TimeoutStopSec: the daemon's whole stop budget plus a margin, and how it adds up."""
    s = settings.shutdown
    parts = [
        ("scheduler", s.scheduler_seconds),
        ("outbox", s.outbox_seconds),
        ("api", s.api_seconds),
        ("storage", s.storage_seconds),
        ("providers", PROVIDERS_CLOSE_SECONDS),
        ("http client", HTTP_CLIENT_CLOSE_SECONDS),
        ("direct alert", DIRECT_ALERT_SECONDS),
    ]
    if settings.replica.url:
        # Litestream's last upload, and the kill after it (daemon/app/lifecycle.py).
        parts.append(("replica", settings.replica.stop_seconds + REPLICA_KILL_SECONDS))
    budget = sum(seconds for _, seconds in parts)
    total = math.ceil(budget) + STOP_MARGIN_SECONDS
    sums = " + ".join(f"{name} {seconds:g}" for name, seconds in parts)
    return total, f"Stop stages: {sums} = {budget:g} s; + {STOP_MARGIN_SECONDS} s margin"


def render_unit(spec: UnitSpec) -> str:
    """The unit file's text."""
    command = " ".join(_quote(arg) for arg in spec.exec_start)
    lines = [
        "# shopbell as a systemd service, written by `shopbell service install`.",
        "# Change settings in the config file, not here; re-run the install after an upgrade.",
        "[Unit]",
        "Description=shopbell, the shop's local messaging hub (SMS, push, one-time codes)",
        "Wants=network-online.target",
        "After=network-online.target time-sync.target",
        "# Never stop trying: the box runs unattended, and a modem or network comes back.",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "# The daemon says READY=1 once it serves, STATUS= now and then, STOPPING=1 on stop.",
        "Type=notify",
        "NotifyAccess=main",
        "# Secrets as SHOPBELL_* lines (SHOPBELL_TWILIO_AUTH_TOKEN=...), if the file exists,"
        + (
            " mode 0600."
            if spec.user_unit
            else "\n# root's, 0600: systemd reads it before it drops to the service's user."
        ),
        f"EnvironmentFile=-{'%h/.config/shopbell/env' if spec.user_unit else ENV_FILE}",
        f"ExecStart={command}",
        "# SIGHUP re-reads the config ([logging] level applies live).",
        "ExecReload=/bin/kill -HUP $MAINPID",
        f"# WATCHDOG=1 comes from the event loop every {WATCHDOG_SECONDS // 2} s: a loop stuck",
        f"# for {WATCHDOG_SECONDS} s is killed and restarted.",
        f"WatchdogSec={WATCHDOG_SECONDS}",
        "Restart=on-failure",
        f"RestartSec={RESTART_SECONDS}",
        f"TimeoutStartSec={START_TIMEOUT_SECONDS}",
        f"# {spec.stop_arithmetic}.",
        f"TimeoutStopSec={spec.stop_timeout_seconds}",
        f"# Files: up to [api] max_connections ({spec.max_connections}) client sockets, the",
        f"# rest wait in the listen backlog; plus {OWN_FILES} for the daemon's own files.",
        f"LimitNOFILE={open_files_limit(spec.max_connections)}",
        "UMask=0077",
        "NoNewPrivileges=true",
    ]
    if spec.user_unit:
        lines += [
            "# In a user unit the mount sandbox (ProtectSystem=, ProtectHome=, PrivateTmp=) needs",
            "# unprivileged user namespaces and would hide the data folder in your home, so it",
            f"# is left out. The modem needs you in the {SERIAL_GROUP} group. To start at boot",
            "# without a login: loginctl enable-linger $USER",
            "",
            "[Install]",
            "WantedBy=default.target",
        ]
        return "\n".join(lines) + "\n"
    lines += [
        "# Its primary group too (no Group=): the config is root's, readable by that group.",
        f"User={spec.run_as}",
        f"# The modem's serial port belongs to the {SERIAL_GROUP} group.",
        f"SupplementaryGroups={SERIAL_GROUP}",
        f"StateDirectory={SYSTEM_DATA_DIR.name}",
        "StateDirectoryMode=0700",
        "ProtectSystem=strict",
    ]
    if spec.writable:
        lines.append("# The database, the API token, backups and the log file.")
        lines.append("ReadWritePaths=" + " ".join(_quote(str(p)) for p in spec.writable))
    if spec.replica_folder is not None:
        # "-": the unit starts even while the disk is not mounted (Litestream then fails,
        # and health says so).
        lines.append("# The [replica] folder Litestream writes to.")
        lines.append(f"ReadWritePaths=-{_quote(str(spec.replica_folder))}")
    lines += [
        "ProtectHome=true",
        "PrivateTmp=true",
        "# No PrivateDevices= or DevicePolicy=: either would shut out a modem plugged in (or",
        f"# replugged) after the start. Serial ports are reached through the {SERIAL_GROUP} group.",
        "ProtectKernelTunables=true",
        "ProtectKernelModules=true",
        "ProtectKernelLogs=true",
        "ProtectControlGroups=true",
        "ProtectClock=true",
        "ProtectHostname=true",
        "RestrictSUIDSGID=true",
        "RestrictRealtime=true",
        "RestrictNamespaces=true",
        "LockPersonality=true",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "SystemCallArchitectures=native",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def reference_unit() -> str:
    """deploy/shopbell.service: a venv in /opt/shopbell, config in /etc/shopbell, defaults."""
    timeout, arithmetic = stop_timeout(Settings())
    return render_unit(
        UnitSpec(
            exec_start=(
                "/opt/shopbell/.venv/bin/shopbell",
                "--config",
                str(SYSTEM_CONFIG),
                "run",
            ),
            user_unit=False,
            stop_timeout_seconds=timeout,
            stop_arithmetic=arithmetic,
            writable=(SYSTEM_DATA_DIR,),
        )
    )


def shopbell_command() -> tuple[str, ...]:
    """How systemd starts this installation: its venv's `shopbell` script, absolute."""
    script = Path(sys.prefix) / "bin" / "shopbell"
    if script.is_file() and os.access(script, os.X_OK):
        return (str(script),)
    return (sys.executable, "-m", "daemon")


@dataclass(frozen=True)
class Systemctl:
    """Runs `systemctl [--user] ...`; `say` is told each command before it runs."""

    user_unit: bool
    say: Callable[[str], None]

    def base(self) -> list[str]:
        found = shutil.which("systemctl")
        if found is None:
            raise ServiceError(
                "systemctl is not on PATH: this machine does not run systemd; start the daemon "
                "with `shopbell run` instead"
            )
        return [found, "--user"] if self.user_unit else [found]

    def shown(self, args: Sequence[str]) -> str:
        return " ".join(["systemctl", *(["--user"] if self.user_unit else []), *args])

    def run(self, args: Sequence[str], *, quiet: bool = False) -> str:
        command = [*self.base(), *args]
        if not quiet:
            self.say(f"ran: {self.shown(args)}")
        try:
            done = subprocess.run(  # noqa: S603 -- systemctl by its full path, no shell
                command,
                capture_output=True,
                text=True,
                timeout=SYSTEMCTL_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ServiceError(
                f"`{self.shown(args)}` did not finish within {SYSTEMCTL_TIMEOUT_SECONDS} s"
            ) from None
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
            raise ServiceError(f"`{self.shown(args)}` failed: {why}")
        return done.stdout


@dataclass(frozen=True)
class InstallPlan:
    """Where the unit goes and what it says."""

    unit_path: Path
    text: str
    config: Path | None
    writable: tuple[Path, ...]


def plan_install(
    *,
    user_unit: bool,
    config: Path | None,
    unit_dir: Path | None,
    run_as: str = SERVICE_USER,
) -> InstallPlan:
    """Work out the unit from the config it will run with; nothing is written yet."""
    if user_unit:
        directory = unit_dir or Path.home() / ".config" / "systemd" / "user"
        settings = _load(config)
    else:
        directory = unit_dir or SYSTEM_UNIT_DIR
        config = config or SYSTEM_CONFIG
        settings = _load(config) if config.exists() else _system_defaults()
        if not settings.paths.data_dir:
            raise ServiceError(
                f"{config}: [paths] data_dir is empty, which means the home of whoever runs it; "
                f'for the service set data_dir = "{SYSTEM_DATA_DIR}"'
            )
    timeout, arithmetic = stop_timeout(settings)
    command = [*shopbell_command()]
    if config is not None:
        command += ["--config", str(config.absolute())]
    command.append("run")
    writable = _writable_paths(settings)
    text = render_unit(
        UnitSpec(
            exec_start=tuple(command),
            user_unit=user_unit,
            stop_timeout_seconds=timeout,
            stop_arithmetic=arithmetic,
            writable=writable,
            replica_folder=settings.replica.folder,
            run_as=run_as,
            max_connections=settings.api.max_connections,
        )
    )
    return InstallPlan(directory / UNIT_NAME, text, config, writable)


def install(
    *,
    user_unit: bool,
    config: Path | None,
    unit_dir: Path | None,
    dry_run: bool,
    say: Callable[[str], None],
    run_as: str = SERVICE_USER,
) -> InstallPlan:
    """Write the unit, reload systemd, enable and start it; `say` tells each step."""
    systemctl = Systemctl(user_unit, say)
    if user_unit and config is None:
        # The unit does not carry this shell's $SHOPBELL_CONFIG: name the file in ExecStart.
        found = Path(os.environ.get(ENV_CONFIG) or default_config_path())
        config = found if found.exists() else None
    plan = plan_install(user_unit=user_unit, config=config, unit_dir=unit_dir, run_as=run_as)
    if dry_run:
        say(f"would write {plan.unit_path}:")
        say(plan.text.rstrip())
        if not user_unit and plan.config is not None and not plan.config.exists():
            say(f"would write {plan.config} (the reference config, data_dir {SYSTEM_DATA_DIR})")
        for args in (["daemon-reload"], ["enable", "--now", UNIT_NAME]):
            say(f"would run: {systemctl.shown(args)}")
        return plan
    systemctl.base()  # no systemctl: say so before anything is written
    if not user_unit:
        if os.geteuid() != 0:
            raise ServiceError(
                "installing the system service needs root: run it with sudo, or use "
                "`shopbell service install --user` for a service of your own user"
            )
        owner = _service_user(run_as)
        assert plan.config is not None
        if not plan.config.exists():
            _write_system_config(plan.config, owner)
            say(f"wrote {plan.config} (the reference config, data_dir {SYSTEM_DATA_DIR})")
        _check_readable(plan.config, owner)
        for path in plan.writable:
            _private_dir_for(path, owner)
    plan.unit_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = plan.unit_path.with_name(f".{UNIT_NAME}.tmp")
    tmp.write_text(plan.text, encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(plan.unit_path)
    say(f"wrote {plan.unit_path}")
    systemctl.run(["daemon-reload"])
    systemctl.run(["enable", "--now", UNIT_NAME])
    follow = "journalctl --user -u shopbell -f" if user_unit else "journalctl -u shopbell -f"
    status = "shopbell service status" + (" --user" if user_unit else "")
    say(f"shopbell is enabled and started; `{status}` shows it, `{follow}` its log")
    return plan


@dataclass(frozen=True)
class ServiceStatus:
    """What `systemctl show` says about the unit."""

    properties: dict[str, str]

    @property
    def running(self) -> bool:
        return self.properties.get("ActiveState") == "active"

    @property
    def installed(self) -> bool:
        return self.properties.get("LoadState", "not-found") != "not-found"

    def lines(self, user_unit: bool) -> list[str]:
        p = self.properties
        scope = "user" if user_unit else "system"
        if not self.installed:
            hint = (
                "shopbell service install --user" if user_unit else "sudo shopbell service install"
            )
            return [f"{UNIT_NAME} ({scope}): not installed; `{hint}` installs it"]
        state = f"{p.get('ActiveState', '?')} ({p.get('SubState', '?')})"
        pid = p.get("MainPID", "0")
        out = [f"{UNIT_NAME} ({scope}): {state}" + (f", pid {pid}" if pid != "0" else "")]
        out.append(f"  unit file: {p.get('FragmentPath') or '?'} ({p.get('UnitFileState') or '?'})")
        started = p.get("ExecMainStartTimestamp") or "never"
        out.append(f"  started: {started}")
        out.append(f"  restarts: {p.get('NRestarts') or '0'}")
        if p.get("StatusText"):
            out.append(f"  status: {p['StatusText']}")
        if p.get("Result") and p["Result"] != "success":
            out.append(f"  last result: {p['Result']}")
        return out


def status(*, user_unit: bool, say: Callable[[str], None]) -> ServiceStatus:
    """Read the unit's state back from `systemctl show`."""
    systemctl = Systemctl(user_unit, say)
    text = systemctl.run(
        ["show", UNIT_NAME, "--property=" + ",".join(STATUS_PROPERTIES)], quiet=True
    )
    properties: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            properties[key.strip()] = value.strip()
    return ServiceStatus(properties)


def _load(config: Path | None) -> Settings:
    try:
        return load_config(config).settings
    except ConfigError as exc:
        raise ServiceError(str(exc)) from None


def _system_defaults() -> Settings:
    """The settings of the config install writes when /etc/shopbell has none."""
    return Settings.model_validate({"paths": {"data_dir": str(SYSTEM_DATA_DIR)}})


def _writable_paths(settings: Settings) -> tuple[Path, ...]:
    """The folders the service writes: data, the database's, the backups', the log file's."""
    folders = [settings.data_dir, settings.database_path.parent, settings.backup_dir]
    log_file = log_file_path(settings)
    if log_file is not None:
        folders.append(log_file.parent)
    unique: list[Path] = []
    for folder in folders:
        folder = folder.absolute()
        if not any(folder == kept or folder.is_relative_to(kept) for kept in unique):
            unique.append(folder)
    return tuple(unique)


def _service_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ServiceError(
            f"there is no user {name!r} to run the service as; create it with: sudo useradd "
            f"--system --home-dir {SYSTEM_DATA_DIR} --shell /usr/sbin/nologin "
            f"--groups {SERIAL_GROUP} {name}"
        ) from None


def _write_system_config(path: Path, owner: pwd.struct_passwd) -> None:
    """The reference config with the service's data folder; root writes it, the service
    reads it (mode 0640, its group)."""
    text = reference_config_text().replace('data_dir = ""', f'data_dir = "{SYSTEM_DATA_DIR}"', 1)
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chown(tmp, 0, owner.pw_gid)
    tmp.replace(path)


def _check_readable(path: Path, owner: pwd.struct_passwd) -> None:
    """The service's user must read its config, or the service fails at every start."""
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    readable = (
        (info.st_uid == owner.pw_uid and mode & stat.S_IRUSR)
        or (info.st_gid == owner.pw_gid and mode & stat.S_IRGRP)
        or mode & stat.S_IROTH
    )
    if not readable:
        raise ServiceError(
            f"the service's user {owner.pw_name} cannot read {path}; let its group read it: "
            f"sudo chgrp {owner.pw_gid} {path} && sudo chmod 0640 {path}"
        )


def _private_dir_for(path: Path, owner: pwd.struct_passwd) -> None:
    """The service's writable folders exist (ReadWritePaths= refuses a missing one) and are
    its own, mode 0700."""
    if path.exists():
        return
    path.mkdir(mode=0o700, parents=True)
    os.chown(path, owner.pw_uid, owner.pw_gid)


def _quote(arg: str) -> str:
    """systemd's quoting for one ExecStart= word (and one ReadWritePaths= path)."""
    if arg and not any(c in arg for c in " \t\"'\\;$%"):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%")
    return f'"{escaped}"'


if __name__ == "__main__":
    # Regenerates deploy/shopbell.service:
    #   python -m daemon.admin.service_unit > deploy/shopbell.service
    sys.stdout.write(reference_unit())
