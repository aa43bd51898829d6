"""The doctor's records (a check's line, the report) and what every check reads."""

from __future__ import annotations

import asyncio
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from daemon.config import Settings
from daemon.runtime.clock import Clock

Status = Literal["OK", "WARN", "FAIL"]

# A daemon's /api/health and a server's Date header: each bounded, never the doctor's hang.
HEALTH_TIMEOUT_SECONDS = 5.0
STATE_STATUS: dict[str, Status] = {"ok": "OK", "degraded": "WARN", "down": "FAIL"}


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it went, what was found, what to do."""

    name: str
    status: Status
    found: str
    fix: str = ""
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    """Every check, in a fixed order."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when nothing FAILed (warnings do not fail the doctor)."""
        return all(check.status != "FAIL" for check in self.checks)


@dataclass
class DaemonState:
    """Whether a daemon holds the database's lock and, if so, what its /api/health said."""

    running: bool
    pid: int | None = None
    health: dict[str, Any] | None = None
    error: str = ""


@dataclass(frozen=True)
class Context:
    """What each check is given: the settings, the clock, and the daemon's state (read once,
    in the background, by whichever checks need it)."""

    settings: Settings
    clock: Clock
    daemon: asyncio.Task[DaemonState]


def not_configured(name: str, partly: str, needs: str) -> Check:
    if partly:
        return Check(name, "WARN", "partly configured, so not used", f"set {needs}")
    return Check(name, "OK", "not configured (not used)")


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def human_size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
