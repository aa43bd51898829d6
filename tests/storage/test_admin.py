"""File commands: migrate, backup (also while the daemon writes) and check."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from storage import migrations
from storage.admin import backup_file, check_file, migrate_file
from storage.database import Database
from storage.errors import DatabaseUnavailableError, NotADatabaseError, StorageError
from tests.storage import factories as f
from tests.storage.probes import sidecar_files


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in tables}
    finally:
        conn.close()


def _integrity(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def test_migrate_file_creates_and_then_has_nothing_to_do(db_path: Path) -> None:
    assert migrate_file(db_path) == list(migrations.names())
    assert migrate_file(db_path) == []
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert sidecar_files(db_path) == []


def test_backup_has_the_same_rows(sync_db: sqlite_utils.Database, db_path: Path) -> None:
    f.populate(sync_db)
    dest = db_path.with_name("backup.db")
    result = backup_file(db_path, dest)

    assert result.path == dest
    assert result.size_bytes == dest.stat().st_size > 0
    conn = sqlite3.connect(dest)
    try:
        assert result.pages * conn.execute("PRAGMA page_size").fetchone()[0] == result.size_bytes
    finally:
        conn.close()
    assert _rows(dest) == _rows(db_path)
    assert _integrity(dest) == ["ok"]


def test_backup_is_one_private_file_and_leaves_no_temporary(
    sync_db: sqlite_utils.Database, db_path: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "backups" / "shopbell-2026-01-01.db"
    dest.parent.mkdir()
    backup_file(db_path, dest)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]
    conn = sqlite3.connect(dest)
    try:
        # A rollback-journal file: it stands alone, no -wal to carry with it.
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        conn.close()


def test_backup_skips_a_write_still_in_progress(
    sync_db: sqlite_utils.Database, db_path: Path
) -> None:
    f.insert(sync_db, "job_runs", f.job_run())
    writer = sqlite3.connect(db_path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO job_runs (job_id, started_at) VALUES ('in-progress', ?)", [f.NOW]
        )
        # The writer holds the write lock; in WAL mode the backup reads past it.
        dest = db_path.with_name("backup.db")
        backup_file(db_path, dest)
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert len(_rows(dest)["job_runs"]) == 1
    assert len(_rows(db_path)["job_runs"]) == 2


async def test_backup_while_the_daemon_writes_is_a_consistent_snapshot(
    database: Database, tmp_path: Path
) -> None:
    stop = asyncio.Event()

    def enqueue(db: sqlite_utils.Database) -> None:
        message_id = f.insert(db, "messages", f.message())
        f.insert(db, "message_events", f.message_event(message_id))

    ten_written = asyncio.Event()

    async def keep_writing() -> int:
        written = 0
        while not stop.is_set():
            await database.write(enqueue)
            written += 1
            if written == 10:
                ten_written.set()
        return written

    writer = asyncio.create_task(keep_writing())
    waiter = asyncio.create_task(ten_written.wait())
    # Should the writer fail before its tenth write, fail with its error instead of hanging.
    await asyncio.wait({writer, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if writer.done():
        waiter.cancel()
        writer.result()
    dest = tmp_path / "backup.db"
    await asyncio.to_thread(backup_file, database.path, dest)
    stop.set()
    written = await writer

    assert _integrity(dest) == ["ok"]
    rows = _rows(dest)
    message_ids = [row[0] for row in rows["messages"]]
    event_message_ids = sorted(row[1] for row in rows["message_events"])
    # A snapshot: every message up to some point with its event, none half-written.
    assert message_ids == list(range(1, len(message_ids) + 1))
    assert event_message_ids == message_ids
    assert 10 <= len(message_ids) <= written
    assert check_file(dest).migrations.pending == ()


def test_backup_refuses_to_overwrite(sync_db: sqlite_utils.Database, db_path: Path) -> None:
    dest = db_path.with_name("backup.db")
    dest.write_bytes(b"last week's backup")
    with pytest.raises(StorageError, match="already exists") as caught:
        backup_file(db_path, dest)
    assert str(dest) in str(caught.value)
    assert dest.read_bytes() == b"last week's backup"

    backup_file(db_path, dest, overwrite=True)
    assert _integrity(dest) == ["ok"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600


def test_backup_refuses_to_replace_the_database_itself(
    sync_db: sqlite_utils.Database, db_path: Path
) -> None:
    f.insert(sync_db, "job_runs", f.job_run())
    with pytest.raises(StorageError, match="the database itself"):
        backup_file(db_path, db_path, overwrite=True)
    assert len(_rows(db_path)["job_runs"]) == 1


def test_backup_of_a_missing_source_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "backup.db"
    with pytest.raises(DatabaseUnavailableError, match="There is no database"):
        backup_file(tmp_path / "missing.db", dest)
    assert not dest.exists()


def test_backup_of_a_non_database_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("not a database\n" * 100)
    dest = tmp_path / "backup.db"
    with pytest.raises(NotADatabaseError):
        backup_file(source, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_backup_into_a_missing_folder_is_refused(
    sync_db: sqlite_utils.Database, db_path: Path, tmp_path: Path
) -> None:
    with pytest.raises(DatabaseUnavailableError, match="does not exist"):
        backup_file(db_path, tmp_path / "usb" / "backup.db")


def test_a_failed_backup_leaves_no_half_file(
    sync_db: sqlite_utils.Database, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    dest = db_path.with_name("backup.db")
    with pytest.raises(DatabaseUnavailableError):
        backup_file(db_path, dest)
    assert not dest.exists()
    assert [p.name for p in db_path.parent.iterdir() if "backup" in p.name] == []


def test_check_reports_ok_and_migration_status(
    sync_db: sqlite_utils.Database, db_path: Path
) -> None:
    f.populate(sync_db)
    result = check_file(db_path)
    assert result.ok
    assert result.integrity == ("ok",)
    assert result.foreign_key_violations == ()
    assert result.migrations.applied == migrations.names()
    assert result.migrations.pending == ()
    assert result.migrations.unknown == ()


def test_check_reports_pending_and_unknown_without_refusing(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(
        "CREATE TABLE _sqlite_migrations (id INTEGER PRIMARY KEY, migration_set TEXT, "
        "name TEXT, applied_at TEXT)"
    )
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
        ["shopbell", "m999_from_the_future", f.NOW],
    )
    conn.commit()
    conn.close()
    status = check_file(db_path).migrations
    assert status.pending == migrations.names()
    assert status.unknown == ("m999_from_the_future",)


def test_check_changes_nothing(sync_db: sqlite_utils.Database, db_path: Path) -> None:
    f.populate(sync_db)
    sync_db.close()
    before = (db_path.read_bytes(), db_path.stat().st_mtime_ns)
    check_file(db_path)
    assert (db_path.read_bytes(), db_path.stat().st_mtime_ns) == before
    assert sidecar_files(db_path) == []


def test_check_finds_damage(sync_db: sqlite_utils.Database, db_path: Path) -> None:
    for n in range(20):
        f.insert(sync_db, "job_runs", f.job_run(job_id=f"job-{n}"))
    root = sync_db.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'idx_job_runs_job_id_started_at'"
    ).fetchone()[0]
    page_size = sync_db.execute("PRAGMA page_size").fetchone()[0]
    sync_db.close()
    with db_path.open("r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(b"\xff")  # not a valid b-tree page type
    result = check_file(db_path)
    assert not result.ok
    assert result.integrity != ("ok",)


def test_check_finds_rows_pointing_nowhere(sync_db: sqlite_utils.Database, db_path: Path) -> None:
    sync_db.execute("PRAGMA foreign_keys = OFF")
    f.insert(sync_db, "message_events", f.message_event(message_id=77))
    result = check_file(db_path)
    assert not result.ok
    assert result.integrity == ("ok",)
    assert result.foreign_key_violations == (
        "message_events row 1 points to a missing messages row",
    )


def test_check_of_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailableError, match="There is no database"):
        check_file(tmp_path / "missing.db")
    assert list(tmp_path.iterdir()) == []


def test_check_of_a_non_database_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(bytes(range(256)) * 32)
    original = path.read_bytes()
    with pytest.raises(NotADatabaseError):
        check_file(path)
    assert path.read_bytes() == original
    assert sidecar_files(path) == []
