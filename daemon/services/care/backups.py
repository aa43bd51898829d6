"""The nightly online backup of the database, rotated, with an owner alert when it fails."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime
from pathlib import Path

from daemon.runtime.clock import Clock, utc_iso
from daemon.runtime.paths import PathError, ensure_private_dir
from daemon.services.owner import OwnerAlerts
from storage.admin import backup_file
from storage.errors import StorageError

log = logging.getLogger(__name__)

BACKUP_PREFIX = "shopbell-"
BACKUP_SUFFIX = ".db"
# Only files named like this are ever rotated away: anything else in the folder is the owner's.
BACKUP_NAME = re.compile(r"shopbell-\d{8}T\d{6}Z\.db")
# A backup copies the whole file in one read transaction; a Pi's SD card may take minutes.
BACKUP_TIMEOUT_SECONDS = 1800.0
KEY_BACKUP = "backup-failing"


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
        return backups_in(self.folder)

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


def backups_in(folder: Path) -> list[Path]:
    """The nightly backups in `folder`, oldest first (their names sort by age)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if BACKUP_NAME.fullmatch(p.name))
