"""The doctor's daemon checks: is one running (its lock), and what its /api/health says."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from daemon.admin.doctor.check import (
    HEALTH_TIMEOUT_SECONDS,
    STATE_STATUS,
    Check,
    Context,
    DaemonState,
    Status,
)
from daemon.config import Settings
from daemon.runtime.durations import human_duration
from daemon.runtime.paths import PathError, read_api_token

PROVIDER_FIX = "see the line for that provider below"
# What to do about a component that is not a provider's channel.
FIXES = {
    "outbox": (
        "a full or slow queue: check the SMS provider's line below, or cancel what need not "
        "go; a spent budget: wait for it to reset, or raise [sms] budget_per_day / "
        "budget_per_month"
    ),
    "clock": "see the clock line below",
}


async def daemon_state(settings: Settings) -> DaemonState:
    held, pid = await asyncio.to_thread(_lock_holder, settings.database_path)
    if held is False:
        return DaemonState(running=False)
    url = _api_url(settings)
    try:
        token = settings.api.token.get_secret_value() or read_api_token(settings.token_path)
    except PathError as exc:
        return DaemonState(running=True, pid=pid, error=str(exc))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_SECONDS) as http:
            answer = await http.get(f"{url}/api/health", headers=headers)
        body = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        if held is None:
            return DaemonState(running=False)  # no lock to read and no answer: stopped
        return DaemonState(
            running=True,
            pid=pid,
            error=f"it does not answer at {url}/api/health ({type(exc).__name__})",
        )
    if not isinstance(body, dict) or "components" not in body:
        return DaemonState(
            running=True, pid=pid, error=f"{url}/api/health is not shopbell's health"
        )
    return DaemonState(running=True, pid=pid, health=body)


async def check_daemon(ctx: Context) -> list[Check]:
    state = await ctx.daemon
    who = f"process {state.pid}" if state.pid else "a process"
    if not state.running:
        return [
            Check(
                "daemon",
                "WARN",
                "not running: nothing is being sent",
                "start it: `shopbell run`, or `systemctl start shopbell` as a service",
            )
        ]
    if state.health is None:
        return [
            Check(
                "daemon",
                "FAIL",
                f"{who} holds the database lock, but {state.error}",
                "check its log (journalctl -u shopbell); restart it if it is stuck, and "
                "check [api] host and port",
            )
        ]
    health = state.health
    database_ok = bool((health.get("database") or {}).get("ok"))
    found = (
        f"running ({who}, version {health.get('version', '?')}, "
        f"up {human_duration(float(health.get('uptime_seconds') or 0))})"
    )
    checks = [
        Check("daemon", "OK", found)
        if database_ok
        else Check(
            "daemon",
            "FAIL",
            f"{found}, but its database does not answer",
            "check the disk and the daemon's log; restart it",
        )
    ]
    for name, component in sorted((health.get("components") or {}).items()):
        if not isinstance(component, dict):
            continue
        status = STATE_STATUS.get(str(component.get("state")), "WARN")
        detail = str(component.get("detail") or component.get("state") or "")
        extra = _component_summary(name, component)
        found = "; ".join(part for part in (detail, extra) if part) or "ok"
        if name == "owner":
            checks.append(_owner_check(status, found, component))
            continue
        fix = "" if status == "OK" else FIXES.get(name, PROVIDER_FIX)
        checks.append(Check(f"daemon {name}", status, found, fix))
    return checks


def _owner_check(status: Status, found: str, component: Mapping[str, Any]) -> Check:
    """The owner alerts still open: each names what needs a person, and since when."""
    alerts = [a for a in component.get("open_alerts") or [] if isinstance(a, dict)]
    details = tuple(
        f"{a.get('key')}: {a.get('subject') or ''} (since {a.get('raised_at')})" for a in alerts
    )
    if alerts:
        fix = (
            "each was sent to the owner; fix its cause (the other lines say more) and it "
            'clears by itself, with a short "works again" message'
        )
    elif component.get("reachable") is False:
        status = "WARN"
        fix = "set [owner] phone and/or email, so a provider down or a full disk reaches you"
    else:
        fix = ""
    return Check("daemon owner alerts", status, found, fix, details[:10])


def _component_summary(name: str, component: Mapping[str, Any]) -> str:
    if name == "sms":
        queued = component.get("queued")
        failed = component.get("failed")
        chain = " -> ".join(component.get("chain") or [])
        return f"chain {chain or '-'}, {queued} queued, {failed} failed"
    if name == "tgtg":
        accounts = component.get("accounts") or {}
        return ", ".join(f"{n} {state}" for state, n in sorted(accounts.items())) or "no accounts"
    return ""


def _lock_holder(database: Path) -> tuple[bool | None, int | None]:
    """Whether a daemon holds `<database>.lock` (None: cannot tell), and its pid; creates and
    changes nothing.

    A shared flock taken and dropped at once: the daemon's exclusive one blocks it. A daemon
    starting in that same instant could see the lock busy and refuse; it says so plainly.
    """
    path = database.with_name(database.name + ".lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False, None
    except OSError:
        return None, None  # another user's file (the service's): ask the API instead
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return True, int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False, None
    finally:
        os.close(fd)


def _api_url(settings: Settings) -> str:
    host = settings.api.host
    if host in ("0.0.0.0", "::"):  # noqa: S104 -- a listening address, reached via loopback
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"  # noqa: S104
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{settings.api.port}"
