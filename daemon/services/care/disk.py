"""Free space of the data folder's disk: an owner alert below the minimum, once."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from daemon.services.owner import OwnerAlerts

DISK_TIMEOUT_SECONDS = 30.0
MB = 1024 * 1024
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


class DiskWatch:
    """Checks the free space; alerts the owner below `min_mb`, clears well above it."""

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
