"""The nightly backup keeps the newest N sound copies, privately; a failure alerts the owner
once and a success clears it; the free-disk check alerts below the minimum, once."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from daemon.app.services import build_owner_alerts
from daemon.config import Settings
from daemon.runtime.clock import ManualClock
from daemon.runtime.scheduler import JobSpec, Scheduler
from daemon.services.care.backups import Backups
from daemon.services.care.disk import MB, DiskFigures, DiskWatch
from daemon.services.outbox.service import Outbox
from daemon.services.owner import OwnerAlerts
from storage.admin import check_file
from storage.database import Database

START = datetime(2026, 3, 1, 3, 30, tzinfo=UTC)
DAY = 24 * 3600


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Database, ManualClock, OwnerAlerts]]:
    settings = Settings.model_validate(
        {
            "paths": {"data_dir": str(tmp_path / "data")},
            "owner": {"phone": "+33612345678"},
        }
    )
    settings.data_dir.mkdir()
    clock = ManualClock(START)
    db = Database(settings.database_path)
    await db.open()
    owner = build_owner_alerts(settings, db, clock, Outbox(db, clock))
    yield db, clock, owner
    await db.close()


async def sms_to_owner(db: Database) -> list[str]:
    return await db.execute(
        lambda c: [r[0] for r in c.execute("SELECT body FROM messages ORDER BY id").fetchall()]
    )


async def test_backups_rotate_keeping_the_newest_sound_copies(
    setup: tuple[Database, ManualClock, OwnerAlerts], tmp_path: Path
) -> None:
    db, clock, owner = setup
    folder = tmp_path / "data" / "backups"
    folder.mkdir(mode=0o755)
    # Someone else's file in the folder is never rotated away.
    (folder / "notes.txt").write_text("mine")
    # What a backup killed mid-copy leaves: removed by the next run.
    stale = folder / ".shopbell-20260228T033000Z.db.0badf00d.tmp"
    stale.write_bytes(b"half a copy")
    backups = Backups(db.path, folder, 3, clock, owner)
    for night in range(5):
        await db.write(
            lambda c, night=night: c.execute(
                "INSERT INTO job_runs (job_id, started_at, outcome) VALUES (?, ?, 'running')",
                [f"marker-{night}", "2026-03-01T00:00:00.000000+00:00"],
            )
        )
        detail = await backups.run()
        assert detail.startswith("shopbell-2026030")
        clock.advance(DAY)

    kept = backups.backups()
    assert [p.name for p in kept] == [
        "shopbell-20260303T033000Z.db",
        "shopbell-20260304T033000Z.db",
        "shopbell-20260305T033000Z.db",
    ]
    assert (folder / "notes.txt").exists()
    assert not stale.exists()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in kept:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert check_file(path).ok
    # The newest holds everything written before it; each a consistent snapshot.
    newest = check_file(kept[-1])
    assert newest.migrations.pending == ()
    with sqlite3.connect(kept[-1]) as copy:
        markers = [r[0] for r in copy.execute("SELECT job_id FROM job_runs ORDER BY id")]
    assert markers == [f"marker-{n}" for n in range(5)]
    assert await sms_to_owner(db) == []


async def test_a_failing_backup_alerts_the_owner_once_and_success_clears_it(
    setup: tuple[Database, ManualClock, OwnerAlerts], tmp_path: Path
) -> None:
    db, clock, owner = setup
    # A file where the backup folder should be: no folder can be made there.
    blocker = tmp_path / "data" / "backups"
    blocker.write_text("not a folder")
    backups = Backups(db.path, blocker, 7, clock, owner)
    scheduler = Scheduler(db, clock)
    scheduler.add(JobSpec("backup", backups.run, IntervalTrigger(days=1)))

    assert await scheduler.run_job("backup") == "error"
    clock.advance(DAY)
    assert await scheduler.run_job("backup") == "error"
    [alert] = await sms_to_owner(db)
    assert alert.startswith("shopbell: backups failing: ")
    assert str(blocker) in alert

    blocker.unlink()
    clock.advance(DAY)
    assert await scheduler.run_job("backup") == "ok"
    assert (await sms_to_owner(db))[1:] == [
        "shopbell: backups work again (shopbell-20260303T033000Z.db)."
    ]
    runs = await db.execute(
        lambda c: c.execute("SELECT outcome FROM job_runs ORDER BY id").fetchall()
    )
    assert [r[0] for r in runs] == ["error", "error", "ok"]


async def test_low_disk_alerts_once_and_clears_with_a_margin(
    setup: tuple[Database, ManualClock, OwnerAlerts], tmp_path: Path
) -> None:
    db, _, owner = setup
    free = {"mb": 500}

    def usage(path: Path) -> DiskFigures:
        assert path == tmp_path / "data"
        return DiskFigures(total=16_000 * MB, used=0, free=free["mb"] * MB)

    disk = DiskWatch(tmp_path / "data", 200, owner, usage=usage)
    assert await disk.run() == "500 MB free of 16000 MB"
    free["mb"] = 150
    await disk.run()
    await disk.run()
    [alert] = await sms_to_owner(db)
    assert alert.startswith("shopbell: the disk is filling: 150 MB free")
    # Just over the minimum is not yet "back": no flapping around the line.
    free["mb"] = 210
    await disk.run()
    assert len(await sms_to_owner(db)) == 1
    free["mb"] = 400
    await disk.run()
    assert (await sms_to_owner(db))[1:] == ["shopbell: disk space is back: 400 MB free."]


async def test_the_real_disk_is_measured(
    setup: tuple[Database, ManualClock, OwnerAlerts], tmp_path: Path
) -> None:
    _, _, owner = setup
    detail = await DiskWatch(tmp_path, 1, owner).run()
    assert detail.endswith(" MB") and " MB free of " in detail
