"""Care of the data and of the owner: nightly backups, retention, free disk, provider outages."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from daemon.clock import Clock, utc_iso
from daemon.config import Settings
from daemon.outbox.service import Outbox
from daemon.owner import OwnerAlerts
from daemon.paths import PathError, ensure_private_dir
from daemon.scheduler import JobSpec
from providers.base import ProviderHealth
from storage import retention
from storage.admin import backup_file
from storage.database import Database
from storage.errors import StorageError

log = logging.getLogger(__name__)

BACKUP_PREFIX = "shopbell-"
BACKUP_SUFFIX = ".db"
# Only files named like this are ever rotated away: anything else in the folder is the owner's.
BACKUP_NAME = re.compile(r"shopbell-\d{8}T\d{6}Z\.db")
# A backup copies the whole file in one read transaction; a Pi's SD card may take minutes.
BACKUP_TIMEOUT_SECONDS = 1800.0
DISK_TIMEOUT_SECONDS = 30.0
DISK_CHECK_MINUTES = 10
MB = 1024 * 1024
# Messages (each with a few events and parts) and other rows deleted per transaction: about
# 5,000 rows either way, a few tens of milliseconds of the database thread on a Pi.
MESSAGE_BATCH = 1000
ROW_BATCH = 5000
# A missed nightly run (the machine was off or asleep) still runs within this many seconds.
NIGHTLY_GRACE_SECONDS = 6 * 3600

KEY_BACKUP = "backup-failing"
KEY_DISK = "disk-low"


class DiskFigures(NamedTuple):
    """What `shutil.disk_usage` returns, in bytes."""

    total: int
    used: int
    free: int


DiskUsage = Callable[[Path], DiskFigures]


def _disk_usage(path: Path) -> DiskFigures:
    total, used, free = shutil.disk_usage(path)
    return DiskFigures(total, used, free)


class ProviderWatch:
    """Provider health into owner alerts: down past N minutes, or the SIM locked at once.

    When a provider went down is kept in memory: after a restart the wait starts again, and
    an alert already sent stays open in the database until the provider is ok.
    """

    def __init__(self, owner: OwnerAlerts, clock: Clock, down_minutes: int) -> None:
        self._owner = owner
        self._clock = clock
        self._down_after = timedelta(minutes=down_minutes)
        self._down_since: dict[str, datetime] = {}

    async def observe(self, health: Mapping[str, ProviderHealth]) -> None:
        now = self._clock.now()
        for name, report in sorted(health.items()):
            if report.state == "ok":
                self._down_since.pop(name, None)
                await self._owner.clear(f"sim-locked:{name}", f"shopbell: {name}: SIM unlocked.")
                await self._owner.clear(
                    f"provider-down:{name}", f"shopbell: {name} works again ({report.detail})."
                )
                continue
            if report.state != "down":
                continue  # degraded: slow or retrying, not yet the owner's problem
            if report.detail.startswith("sim locked"):
                # Only a person with the PIN (or PUK) can fix it: no point in waiting.
                await self._owner.alert(
                    f"sim-locked:{name}",
                    f"shopbell: the modem's SIM is locked: {report.detail}",
                    subject="shopbell: the modem's SIM is locked",
                )
                continue  # one alert for one cause, not a second one 15 minutes on
            since = self._down_since.setdefault(name, now)
            if now - since >= self._down_after:
                minutes = int((now - since).total_seconds() // 60)
                await self._owner.alert(
                    f"provider-down:{name}",
                    f"shopbell: {name} has been down for {minutes} min: {report.detail}",
                    subject=f"shopbell: {name} is down",
                )


class Backups:
    """The nightly online backup into a private folder, keeping the newest `keep`."""

    def __init__(
        self,
        database: Path,
        folder: Path,
        keep: int,
        clock: Clock,
        owner: OwnerAlerts,
        *,
        timeout: float = BACKUP_TIMEOUT_SECONDS,
    ) -> None:
        self.database = database
        self.folder = folder
        self.keep = keep
        self._clock = clock
        self._owner = owner
        self._timeout = timeout

    async def run(self) -> str:
        """One backup and rotation; a failure alerts the owner and is raised for job_runs."""
        now = self._clock.now()
        try:
            made, removed = await asyncio.wait_for(
                asyncio.to_thread(self._backup, now), self._timeout
            )
        except (StorageError, PathError, OSError, TimeoutError) as exc:
            why = str(exc) or f"no backup within {self._timeout:.0f}s"
            await self._owner.alert(
                KEY_BACKUP,
                f"shopbell: backups failing: {why}",
                subject="shopbell: the nightly backup failed",
            )
            raise
        await self._owner.clear(KEY_BACKUP, f"shopbell: backups work again ({made.name}).")
        return f"{made.name} ({made.stat().st_size} bytes); {len(removed)} old removed"

    def backup_name(self, now: datetime) -> str:
        """UTC time in the name: sorting by name is sorting by age, whatever the time zone."""
        return f"{BACKUP_PREFIX}{utc_iso(now)[:19].replace('-', '').replace(':', '')}Z.db"

    def backups(self) -> list[Path]:
        """The backups in the folder, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if BACKUP_NAME.fullmatch(p.name))

    def _backup(self, now: datetime) -> tuple[Path, list[Path]]:
        ensure_private_dir(self.folder, purpose="backup folder")
        try:
            # An existing folder is made private too: backups hold every customer's number.
            self.folder.chmod(0o700)
        except OSError as exc:
            log.warning("backup: cannot make %s private (0700): %s", self.folder, exc.strerror)
        # What a backup killed mid-copy (kill -9, power cut) left; none is running now.
        for stale in self.folder.glob(".shopbell-*.tmp"):
            stale.unlink(missing_ok=True)
        made = backup_file(self.database, self.folder / self.backup_name(now)).path
        removed: list[Path] = []
        for old in self.backups()[: -self.keep]:
            old.unlink(missing_ok=True)
            removed.append(old)
        log.info(
            "backup: %s; kept %d, removed %s",
            made,
            len(self.backups()),
            ", ".join(p.name for p in removed) or "none",
        )
        return made, removed


class Retention:
    """The daily clean-up of old finished rows, a bounded batch per transaction."""

    def __init__(self, db: Database, clock: Clock, days: int) -> None:
        self._db = db
        self._clock = clock
        self.days = days

    async def run(self) -> str:
        # The planner's statistics follow the log as it grows and shrinks (a daemon runs for
        # months between restarts, and ANALYZE otherwise only happens at close).
        await self._db.write(lambda conn: conn.execute("PRAGMA optimize"))
        if self.days == 0:
            return "keeping everything ([retention] messages_days = 0)"
        before = utc_iso(self._clock.now() - timedelta(days=self.days))
        totals: Counter[str] = Counter()
        for step in retention.STEPS:
            limit = MESSAGE_BATCH if step is retention.delete_old_messages else ROW_BATCH
            while True:
                batch = await self._db.write(
                    lambda conn, step=step, limit=limit: step(conn, before, limit)
                )
                totals.update(batch.counts)
                if batch.primary < limit:
                    break
        went = ", ".join(f"{n} {table}" for table, n in totals.items() if n) or "nothing"
        log.info("retention: deleted %s older than %d days", went, self.days)
        return f"deleted {went}"


class DiskWatch:
    """Free space of the data folder's disk: an owner alert below the minimum, once."""

    def __init__(
        self,
        folder: Path,
        min_mb: int,
        owner: OwnerAlerts,
        *,
        usage: DiskUsage = _disk_usage,
    ) -> None:
        self.folder = folder
        self.min_mb = min_mb
        self._owner = owner
        self._usage = usage
        # Cleared only this far above the minimum, so a disk hovering at it does not flap.
        self.clear_mb = min_mb + max(50, min_mb // 10)

    async def run(self) -> str:
        figures = await asyncio.wait_for(
            asyncio.to_thread(self._usage, self.folder), DISK_TIMEOUT_SECONDS
        )
        free_mb = figures.free // MB
        if free_mb < self.min_mb:
            await self._owner.alert(
                KEY_DISK,
                f"shopbell: the disk is filling: {free_mb} MB free on {self.folder} "
                f"(the alert is below {self.min_mb} MB). Free some space, or the shop's "
                "messages will stop being written down.",
                subject="shopbell: the disk is nearly full",
            )
        elif free_mb >= self.clear_mb:
            await self._owner.clear(KEY_DISK, f"shopbell: disk space is back: {free_mb} MB free.")
        return f"{free_mb} MB free of {figures.total // MB} MB"


@dataclass
class Care:
    """Everything above, built once from the settings; the daemon adds `jobs()`."""

    owner: OwnerAlerts
    providers: ProviderWatch
    backups: Backups
    retention: Retention
    disk: DiskWatch
    timezone: str
    backup_at: str
    retention_at: str

    def jobs(self) -> list[JobSpec]:
        zone = ZoneInfo(self.timezone)
        return [
            JobSpec(
                "backup",
                self.backups.run,
                _daily(self.backup_at, zone),
                misfire_grace_seconds=NIGHTLY_GRACE_SECONDS,
            ),
            JobSpec(
                "retention",
                self.retention.run,
                _daily(self.retention_at, zone),
                misfire_grace_seconds=NIGHTLY_GRACE_SECONDS,
            ),
            JobSpec("disk-check", self.disk.run, IntervalTrigger(minutes=DISK_CHECK_MINUTES)),
        ]


def _daily(at: str, zone: ZoneInfo) -> CronTrigger:
    moment = time.fromisoformat(at)
    return CronTrigger(hour=moment.hour, minute=moment.minute, timezone=zone)


def build_care(
    settings: Settings,
    db: Database,
    clock: Clock,
    owner: OwnerAlerts,
    *,
    disk_usage: DiskUsage = _disk_usage,
) -> Care:
    """The maintenance parts for the daemon, from [owner], [backup] and [retention]."""
    return Care(
        owner=owner,
        providers=ProviderWatch(owner, clock, settings.owner.provider_down_minutes),
        backups=Backups(
            settings.database_path, settings.backup_dir, settings.backup.keep, clock, owner
        ),
        retention=Retention(db, clock, settings.retention.messages_days),
        disk=DiskWatch(settings.data_dir, settings.owner.disk_free_min_mb, owner, usage=disk_usage),
        timezone=settings.shop.timezone,
        backup_at=settings.backup.at,
        retention_at=settings.retention.at,
    )


def build_owner_alerts(
    settings: Settings, db: Database, clock: Clock, outbox: Outbox
) -> OwnerAlerts:
    """OwnerAlerts from [owner], the phone falling back to [tgtg] and [reports] owner_phone."""
    if not (settings.owner_phone or settings.owner.email):
        log.info("owner: no [owner] phone or email: what needs the owner is only logged")
    return OwnerAlerts(
        db,
        clock,
        outbox,
        phone=settings.owner_phone,
        email=settings.owner.email,
        max_per_hour=settings.owner.max_per_hour,
        shop_name=settings.shop.name,
    )
