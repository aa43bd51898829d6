"""File-level commands (migrate, backup, check) that work whether or not the daemon runs."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from storage import migrations
from storage.connection import FILE_MODE, open_for_writing, open_verified, storage_error
from storage.errors import DatabaseUnavailableError, StorageError
from storage.migrations import MigrationStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupResult:
    """A finished backup: where it is, how big, how many database pages."""

    path: Path
    size_bytes: int
    pages: int


@dataclass(frozen=True)
class CheckResult:
    """What `check_file` found: SQLite's integrity report, foreign key faults, migrations."""

    path: Path
    integrity: tuple[str, ...]
    foreign_key_violations: tuple[str, ...]
    migrations: MigrationStatus

    @property
    def ok(self) -> bool:
        """True when SQLite finds the file sound and every foreign key points somewhere."""
        return self.integrity == ("ok",) and not self.foreign_key_violations


def migrate_file(path: Path) -> list[str]:
    """Create or open `path` with the daemon's checks, apply pending migrations, return them."""
    db = open_for_writing(path)
    try:
        applied = migrations.apply(db)
    except sqlite3.Error as exc:
        raise storage_error(path, exc) from exc
    finally:
        db.close()
    if applied:
        logger.info("database %s: applied migrations %s", path, ", ".join(applied))
    return applied


def backup_file(source: Path, dest: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the database `source` to `dest` with SQLite's online backup; safe while it is in use.

    The copy is made in a temporary file beside `dest` and renamed into place only once
    complete and checked, so a failed backup leaves no half file. `dest` is mode 0600.
    """
    _refuse_bad_destination(source, dest, overwrite=overwrite)
    src = open_verified(source, read_only=True)
    try:
        temp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
        try:
            pages = _copy_into(src.conn, temp, dest)
            if not overwrite and dest.exists():
                # Someone made `dest` while we copied; still refuse rather than replace it.
                raise _exists_error(dest)
            try:
                os.replace(temp, dest)
            except OSError as exc:
                raise storage_error(dest, exc) from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    finally:
        src.close()
    sync_folder(dest.parent)
    result = BackupResult(path=dest, size_bytes=dest.stat().st_size, pages=pages)
    logger.info("database %s backed up to %s (%d bytes)", source, dest, result.size_bytes)
    return result


def check_file(path: Path) -> CheckResult:
    """Report on `path` without changing it: integrity, foreign keys, migration status."""
    db = open_verified(path, read_only=True)
    try:
        integrity = _integrity_lines(db)
        violations = tuple(
            f"{table} row {rowid} points to a missing {parent} row"
            for table, rowid, parent, _ in db.execute("PRAGMA foreign_key_check").fetchall()
        )
        status = migrations.status(db)
    except sqlite3.Error as exc:
        raise storage_error(path, exc) from exc
    finally:
        db.close()
    return CheckResult(
        path=path, integrity=integrity, foreign_key_violations=violations, migrations=status
    )


def _integrity_lines(db: sqlite_utils.Database) -> tuple[str, ...]:
    try:
        rows = db.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        # Damage bad enough to stop the check is its finding, not a failure to check.
        if not getattr(exc, "sqlite_errorname", "").startswith("SQLITE_CORRUPT"):
            raise
        return (str(exc),)
    # One row may hold several lines ("*** in database main ***" then the faults).
    return tuple(line for (text,) in rows for line in str(text).splitlines())


def _refuse_bad_destination(source: Path, dest: Path, *, overwrite: bool) -> None:
    if dest.is_dir():
        raise DatabaseUnavailableError(
            f"The backup path {dest} is a folder. Give a file name for the backup.", path=dest
        )
    if not dest.parent.is_dir():
        raise DatabaseUnavailableError(
            f"Cannot write the backup {dest}: the folder {dest.parent} does not exist. "
            "Create it, or choose another place for the backup.",
            path=dest,
        )
    if dest.exists():
        if source.exists() and dest.samefile(source):
            raise StorageError(
                f"The backup {dest} would replace the database itself. "
                "Choose another file name for the backup.",
                path=dest,
            )
        if not overwrite:
            raise _exists_error(dest)


def _exists_error(dest: Path) -> StorageError:
    return StorageError(
        f"The backup file {dest} already exists and was left as it is. "
        "Choose another file name, or ask to overwrite it.",
        path=dest,
    )


def _copy_into(source: sqlite3.Connection, temp: Path, dest: Path) -> int:
    """Back `source` up into the new file `temp`; return its page count."""
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise storage_error(dest, exc) from exc
    os.close(fd)
    try:
        target = sqlite3.connect(temp)
        try:
            # pages=-1: one step under one read transaction, so the copy is a consistent
            # snapshot; in WAL mode the daemon keeps writing meanwhile.
            source.backup(target, pages=-1)
            # A backup is one self-contained file, not a database plus a -wal to keep with it.
            target.execute("PRAGMA journal_mode = DELETE").fetchone()
            check = [row[0] for row in target.execute("PRAGMA quick_check").fetchall()]
            pages = int(target.execute("PRAGMA page_count").fetchone()[0])
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise storage_error(dest, exc) from exc
    if check != ["ok"]:
        raise StorageError(
            f"The backup {dest} failed its check ({'; '.join(check[:3])}), so it was not kept. "
            "Run a check of the database itself.",
            path=dest,
        )
    return pages


def sync_folder(folder: Path) -> None:
    """fsync a folder, so a rename in it survives a power cut (where the OS allows it)."""
    # The rename is durable only once the folder's entry is on disk; some filesystems (and
    # non-POSIX systems) cannot open a folder for this, and then we rely on the OS.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
