"""The doctor's backup check: has the nightly backup run lately (its newest file's age)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.admin.doctor.check import Check, Context
from daemon.services.care.backups import BACKUP_NAME, BACKUP_PREFIX, BACKUP_SUFFIX

# A nightly job that missed one night (the machine off, a failed run) is not yet a problem;
# two missed nights are.
STALE_AFTER = timedelta(hours=36)


async def check_backups(ctx: Context) -> list[Check]:
    settings = ctx.settings
    folder = settings.backup_dir
    if not settings.database_path.exists():
        return [Check("backups", "OK", "no database yet, so nothing to back up")]
    try:
        newest = await asyncio.to_thread(_newest_backup, folder)
    except OSError as exc:
        return [
            Check(
                "backups",
                "WARN",
                f"cannot read {folder}: {exc.strerror or type(exc).__name__}",
                "run the doctor as the daemon's user (sudo -u shopbell shopbell doctor)",
            )
        ]
    at = f"[backup] at {settings.backup.at} ({settings.shop.timezone})"
    if newest is None:
        return [
            Check(
                "backups",
                "WARN",
                f"no backup in {folder} yet",
                f"the running daemon makes one every night at {at}; keep it running past that "
                "time and check its `backup` job in the log (journalctl -u shopbell); "
                "`shopbell db backup PATH` makes a copy now",
            )
        ]
    name, made = newest
    age = ctx.clock.now() - made
    when = f"{made:%Y-%m-%d %H:%M} UTC"
    if age > STALE_AFTER:
        return [
            Check(
                "backups",
                "WARN",
                f"the nightly backup has not run since {when} ({_hours(age)} ago; {name})",
                f"is the daemon running at {at}? its log (journalctl -u shopbell) says why "
                "the `backup` job failed; the owner is alerted when it does",
            )
        ]
    return [Check("backups", "OK", f"newest {name}, made {when} ({_hours(age)} ago)")]


def _newest_backup(folder: Path) -> tuple[str, datetime] | None:
    """The newest nightly backup's name and when it was made (the UTC time in its name)."""
    if not folder.is_dir():
        return None
    names = sorted(p.name for p in folder.iterdir() if BACKUP_NAME.fullmatch(p.name))
    if not names:
        return None
    stamp = names[-1].removeprefix(BACKUP_PREFIX).removesuffix("Z" + BACKUP_SUFFIX)
    return names[-1], datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def _hours(age: timedelta) -> str:
    hours = max(0.0, age.total_seconds() / 3600)
    return f"{hours:.0f} h" if hours < 72 else f"{hours / 24:.0f} days"
