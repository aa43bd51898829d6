"""`shopbell db restore`: check a backup first, keep the current database, swap atomically."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage.admin import backup_file, check_file, sync_folder
from storage.connection import FILE_MODE, open_verified
from storage.errors import NotADatabaseError, StorageError

logger = logging.getLogger(__name__)

# SQLite's companions of a database in WAL mode; a stale one must not meet a new database.
SIDE_FILES = ("-wal", "-shm")


class RestoreError(StorageError):
    """The restore was refused; the message says why, and that nothing was changed."""


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did."""

    database: Path
    source: Path
    kept: Path | None
    size_bytes: int
    pending: tuple[str, ...]


def restore_file(source: Path, database: Path, *, now: datetime) -> RestoreResult:
    """Replace `database` with the backup `source`, after checking it.

    The caller holds the daemon's instance lock, so nothing writes `database` meanwhile.
    `source` is copied with SQLite's backup API into a temporary file beside `database`
    (a consistent copy even of a WAL-mode file), checked there in full (integrity_check, a
    schema this version knows), and only then does anything change: the current database
    is kept as `<name>.before-restore-<time>`, its -wal and -shm are removed, and the copy
    is renamed into place. A bad `source` leaves everything as it was.
    """
    source = source.expanduser()
    if not source.is_file():
        raise RestoreError(
            f"Cannot restore from {source}: "
            f"{'it is a folder' if source.is_dir() else 'there is no such file'}. "
            "Nothing was changed.",
            path=source,
        )
    if database.exists() and source.resolve() == database.resolve():
        raise RestoreError(
            f"{source} is the database itself; give a backup file. Nothing was changed.",
            path=source,
        )
    temp = database.with_name(f".{database.name}.restore-{secrets.token_hex(4)}.tmp")
    try:
        pending = _checked_copy(source, temp)
        kept = _keep_current(database, now)
        for suffix in SIDE_FILES:
            side = database.with_name(database.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                side.unlink()
        os.replace(temp, database)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    sync_folder(database.parent)
    size = database.stat().st_size
    logger.info("database %s restored from %s (kept the old one: %s)", database, source, kept)
    return RestoreResult(
        database=database, source=source, kept=kept, size_bytes=size, pending=pending
    )


def _checked_copy(source: Path, temp: Path) -> tuple[str, ...]:
    """Copy `source` into the new file `temp` and check the copy; the pending migrations."""
    try:
        src = open_verified(source, read_only=True)
    except NotADatabaseError:
        raise RestoreError(
            f"{source} is not an SQLite database, so it is not a shopbell backup. "
            "Nothing was changed.",
            path=source,
        ) from None
    except StorageError as exc:
        raise RestoreError(
            f"Cannot read {source}: {exc} Nothing was changed.", path=source
        ) from None
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        os.close(fd)
        target = sqlite3.connect(temp)
        try:
            src.conn.backup(target, pages=-1)
            target.execute("PRAGMA journal_mode = DELETE").fetchone()
        finally:
            target.close()
        checked = check_file(temp)
    except (sqlite3.DatabaseError, StorageError) as exc:
        # SQLite's own words, not the daemon's advice about its live database.
        cause = exc.__cause__ if isinstance(exc, StorageError) and exc.__cause__ else exc
        raise RestoreError(
            f"{source} is damaged (SQLite said: {cause}). Nothing was changed; try an older "
            "backup.",
            path=source,
        ) from None
    except OSError as exc:
        raise RestoreError(
            f"Cannot write beside the database ({temp.parent}): {exc.strerror}. "
            "Nothing was changed.",
            path=temp,
        ) from None
    finally:
        src.close()
    integrity, status = checked.integrity, checked.migrations
    if integrity != ("ok",):
        raise RestoreError(
            f"{source} failed SQLite's integrity check ({'; '.join(integrity[:3])}). "
            "Nothing was changed; try an older backup.",
            path=source,
        )
    if status.unknown:
        raise RestoreError(
            f"{source} was written by a newer shopbell (it has {', '.join(status.unknown)}). "
            "Nothing was changed; upgrade shopbell first.",
            path=source,
        )
    if not status.applied:
        raise RestoreError(
            f"{source} is an SQLite database but not a shopbell one (no shopbell migrations). "
            "Nothing was changed.",
            path=source,
        )
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    return status.pending


def _keep_current(database: Path, now: datetime) -> Path | None:
    """Keep the database being replaced beside it; None when there is none yet."""
    if not database.exists():
        return None
    stamp = now.astimezone(UTC)
    kept = database.with_name(f"{database.name}.before-restore-{stamp:%Y%m%dT%H%M%SZ}")
    try:
        # The backup API takes what its -wal holds too; the file alone might lack it.
        backup_file(database, kept)
    except StorageError as exc:
        # A damaged database may refuse the backup API: keep its files as they are instead.
        logger.warning("keeping %s by copying its files: %s", database, exc)
        for suffix in ("", *SIDE_FILES):
            part = database.with_name(database.name + suffix)
            if part.exists():
                shutil.copy2(part, kept.with_name(kept.name + suffix))
    return kept
