"""`shopbell doctor`: check config, database, daemon, providers, modem, TGTG, clock, disk,
backups and the replica, and print what to fix. This module runs the checks and prints the
report; each family of checks lives in its own module beside it."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path

from daemon import __version__
from daemon.admin.doctor import (
    backups,
    clock_disk,
    database,
    modem,
    providers,
    replica,
    running,
)
from daemon.admin.doctor.check import Check, Context, Report, Status
from daemon.config import ConfigError, Settings, load_config, secret_values
from daemon.runtime.clock import Clock, SystemClock
from daemon.runtime.paths import PathError, read_api_token

__all__ = ["Check", "Report", "Status", "as_json", "as_text", "diagnose"]

# Every probe is bounded: a doctor that hangs on a dead mail server helps nobody.
PROBE_TIMEOUT_SECONDS = 15.0

Probe = Callable[[Context], Awaitable[list[Check]]]
# Every check in the report's order; each runs concurrently with the others.
PROBES: tuple[tuple[str, Probe], ...] = (
    ("data dir", database.check_data_dir),
    ("database", database.check_database_and_tgtg),
    ("daemon", running.check_daemon),
    ("twilio", providers.check_twilio),
    ("fast2sms", providers.check_fast2sms),
    ("modem", modem.check_modem),
    ("fcm", providers.check_fcm),
    ("smtp", providers.check_smtp),
    ("sms", providers.check_sms_chain),
    ("clock", clock_disk.check_clock),
    ("disk", clock_disk.check_disk),
    ("backups", backups.check_backups),
    ("replica", replica.check_replica),
)


async def diagnose(
    config_path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> Report:
    """Run every check (concurrently, each with a timeout); never changes anything."""
    clock = clock or SystemClock()
    try:
        loaded = await asyncio.to_thread(load_config, config_path, environ)
    except ConfigError as exc:
        return Report(
            (
                Check(
                    "config",
                    "FAIL",
                    f"{exc.source} has {len(exc.problems)} problem(s)",
                    "fix each key named below, then run `shopbell config check`",
                    tuple(exc.problems),
                ),
            )
        )
    settings = loaded.settings
    env = f"; from the environment: {', '.join(loaded.env_keys)}" if loaded.env_keys else ""
    config = Check("config", "OK", f"{loaded.source_label} is valid{env}")
    secrets = [*secret_values(settings), *_token_values(settings)]
    checks = await _run(settings, clock)
    return Report(tuple(_scrub(check, secrets) for check in (config, *checks)))


async def _run(settings: Settings, clock: Clock) -> list[Check]:
    # The daemon's state is read once, in the background, for every check that needs it.
    ctx = Context(settings, clock, asyncio.create_task(running.daemon_state(settings)))
    results = await asyncio.gather(
        *(_bounded(name, functools.partial(probe, ctx)) for name, probe in PROBES)
    )
    return [check for found in results for check in found]


async def _bounded(name: str, probe: Callable[[], Awaitable[list[Check]]]) -> list[Check]:
    """A probe with its timeout; a crash in one check becomes its FAIL line, not the doctor's."""
    try:
        return await asyncio.wait_for(probe(), PROBE_TIMEOUT_SECONDS)
    except TimeoutError:
        return [
            Check(
                name,
                "FAIL",
                f"no answer within {PROBE_TIMEOUT_SECONDS:g} s",
                "check the network (or the device) it needs",
            )
        ]
    except Exception as exc:
        return [
            Check(
                name,
                "FAIL",
                f"the check itself failed ({type(exc).__name__})",
                "run with the daemon's log at DEBUG, and report it as a bug",
            )
        ]


def _token_values(settings: Settings) -> list[str]:
    try:
        token = read_api_token(settings.token_path)
    except PathError:
        return []
    return [token] if token else []


def _scrub(check: Check, secrets: Iterable[str]) -> Check:
    """The last guard: no configured secret leaves the doctor, whatever a server echoed."""
    values = [s for s in secrets if s]

    def clean(text: str) -> str:
        for secret in values:
            text = text.replace(secret, "********")
        return text

    return Check(
        check.name,
        check.status,
        clean(check.found),
        clean(check.fix),
        tuple(clean(d) for d in check.details),
    )


def as_text(report: Report) -> str:
    """One line per check (`STATUS  name: found -> what to do`), problems listed under it."""
    lines: list[str] = []
    for check in report.checks:
        line = f"{check.status:<4}  {check.name}: {check.found}"
        if check.fix:
            line += f" -> {check.fix}"
        lines.append(line)
        lines += [f"        - {detail}" for detail in check.details]
    fails = sum(check.status == "FAIL" for check in report.checks)
    warns = sum(check.status == "WARN" for check in report.checks)
    lines.append(
        f"shopbell {__version__}: {fails} problem(s), {warns} warning(s)"
        if fails or warns
        else f"shopbell {__version__}: all good"
    )
    return "\n".join(lines)


def as_json(report: Report) -> str:
    """The report for machines: {"ok": bool, "checks": [{name, status, found, fix, details}]}."""
    return json.dumps(
        {"ok": report.ok, "version": __version__, "checks": [asdict(c) for c in report.checks]},
        indent=2,
        ensure_ascii=False,
    )
