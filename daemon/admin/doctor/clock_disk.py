"""The doctor's machine checks: clock sanity (against the daemon and a provider) and free disk."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx

from daemon.admin.doctor.check import HEALTH_TIMEOUT_SECONDS, Check, Context, human_size
from daemon.config import Settings
from storage.clock import newest_row

# Clock sanity: anything before this year is an unset clock (a Pi without its RTC or NTP).
EARLIEST_YEAR = 2024
CLOCK_DRIFT_SECONDS = 60.0
# Disk: below [owner] disk_free_min_mb it FAILs (the daemon alerts the owner then); below
# these it warns, before backups and the outbox run out of room.
DISK_WARN_BYTES = 1024 * 1024 * 1024
DISK_WARN_SHARE = 0.05


async def check_clock(ctx: Context) -> list[Check]:
    now = ctx.clock.now()
    if now.year < EARLIEST_YEAR:
        return [
            Check(
                "clock",
                "FAIL",
                f"this machine's clock says {now:%Y-%m-%d %H:%M} UTC",
                "set the time and keep it set: `timedatectl set-ntp true` (a Pi has no "
                "battery clock; it needs the network at boot)",
            )
        ]
    state, server = await asyncio.gather(ctx.daemon, _server_date(ctx))
    found = [f"{now:%Y-%m-%d %H:%M:%S} UTC"]
    off: list[str] = []
    # What the daemon says of its clock (behind its database, or the mobile network's time);
    # with no daemon running, the doctor looks at the database itself.
    component = ((state.health or {}).get("components") or {}).get("clock")
    if isinstance(component, dict) and component.get("state") not in (None, "ok"):
        off.append(f"the daemon says: {component.get('detail') or component.get('state')}")
    elif not state.running:
        newest = await asyncio.to_thread(_newest_row, ctx.settings)
        if newest is not None and (newest[0] - now).total_seconds() > CLOCK_DRIFT_SECONDS:
            off.append(
                f"the database holds a row from {newest[0]:%Y-%m-%d %H:%M:%S} UTC "
                f"({newest[1]}): this clock is probably behind (no real-time clock, no NTP "
                "yet)"
            )
    theirs = _parse_time(str((state.health or {}).get("time") or ""))
    if theirs is not None:
        drift = abs((theirs - now).total_seconds())
        (off if drift > CLOCK_DRIFT_SECONDS else found).append(
            f"the daemon's clock within {drift:.0f} s"
            if drift <= CLOCK_DRIFT_SECONDS
            else f"the daemon's clock is {drift:.0f} s off ours"
        )
    if server is not None:
        host, date, at = server
        drift = abs((date - at).total_seconds())
        (off if drift > CLOCK_DRIFT_SECONDS else found).append(
            f"{host}'s Date header within {drift:.0f} s"
            if drift <= CLOCK_DRIFT_SECONDS
            else f"{host}'s Date header is {drift:.0f} s off ours"
        )
    if off:
        return [
            Check(
                "clock",
                "WARN",
                "; ".join(found + off),
                "turn on NTP (`timedatectl set-ntp true`) here and where the daemon runs; "
                "a wrong clock breaks TLS, code expiry and report days",
            )
        ]
    return [Check("clock", "OK", "; ".join(found))]


def _newest_row(settings: Settings) -> tuple[datetime, str] | None:
    """The newest stamp in the database, read-only; None without a database or a row."""
    path = settings.database_path
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            found = newest_row(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # the database line says what is wrong with it
    if found is None:
        return None
    moment = _parse_time(found.at)
    return None if moment is None else (moment, found.where)


async def _server_date(ctx: Context) -> tuple[str, datetime, datetime] | None:
    """The Date header of the first configured HTTP provider, and our time when it came.

    A HEAD of the base URL: nothing is sent, no credentials go out; any answer (even a
    404) carries the server's clock. None when no provider is configured or it is down
    (its own line says so).
    """
    s = ctx.settings
    urls = [
        url
        for url, used in (
            (s.twilio.base_url, s.twilio.configured),
            (s.fast2sms.base_url, s.fast2sms.configured),
            (s.fcm.base_url, s.fcm.configured),
        )
        if used
    ]
    if not urls:
        return None
    try:
        async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_SECONDS) as http:
            answer = await http.head(urls[0])
    except httpx.HTTPError:
        return None
    at = ctx.clock.now()
    try:
        date = parsedate_to_datetime(answer.headers.get("date", ""))
    except (TypeError, ValueError):
        return None
    if date.tzinfo is None:
        return None
    return httpx.URL(urls[0]).host, date, at


async def check_disk(ctx: Context) -> list[Check]:
    return [await asyncio.to_thread(_disk_sync, ctx.settings)]


def _disk_sync(settings: Settings) -> Check:
    folder = settings.data_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    share = usage.free / usage.total if usage.total else 0.0
    found = f"{human_size(usage.free)} free of {human_size(usage.total)} ({share:.0%}) at {folder}"
    minimum = settings.owner.disk_free_min_mb * 1024 * 1024
    if usage.free < minimum:
        return Check(
            "disk",
            "FAIL",
            f"{found}, below [owner] disk_free_min_mb",
            "free space now (old backups, logs): the outbox cannot write down messages on a "
            "full disk",
        )
    if usage.free < max(DISK_WARN_BYTES, 2 * minimum) and share < DISK_WARN_SHARE:
        return Check("disk", "WARN", found, "free some space (old backups, logs)")
    return Check("disk", "OK", found)


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
