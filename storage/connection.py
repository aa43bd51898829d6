"""Opening the database file: prove it is SQLite and not too new before writing, then pragmas."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from pathlib import Path

import sqlite_utils

from storage import migrations
from storage.errors import (
    DatabaseMissingError,
    DatabaseUnavailableError,
    NotADatabaseError,
    StorageError,
)

logger = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_MS = 5000
FILE_MODE = 0o600


def open_for_writing(
    path: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
) -> sqlite_utils.Database:
    """Open or create `path` for the one writer: checked first, then WAL, foreign keys, FULL sync.

    A file that is not SQLite, or that a newer shopbell migrated, is refused before anything is
    written to it, so it stays byte for byte as it was. Migrations are the caller's next step.
    """
    marker = kept_marker(path)
    if marker.exists() and not path.exists():
        # A cleanup script or a slip in the wrong folder: a new empty database here would hide
        # that every message and customer is gone, so the owner has to say so.
        raise DatabaseMissingError(path, marker)
    db = open_verified(path, create=True, busy_timeout_ms=busy_timeout_ms)
    try:
        migrations.ensure_known(db)
        _set_write_pragmas(db, path)
        _keep_marker(marker, path)
    except BaseException as exc:
        db.close()
        if isinstance(exc, sqlite3.Error):
            raise storage_error(path, exc) from exc
        raise
    return db


def kept_marker(path: Path) -> Path:
    """The file beside the database that says a database was kept at `path` before."""
    return path.with_name(f".{path.name}.kept")


def _keep_marker(marker: Path, path: Path) -> None:
    if marker.exists():
        return
    try:
        marker.write_text(
            f"shopbell keeps its database in {path.name}. While this file is here, shopbell "
            "refuses to start on an empty new database if that one goes missing.\n",
            encoding="utf-8",
        )
    except OSError as exc:
        # The database itself is fine; only the protection against losing it is missing.
        logger.warning("cannot write %s (%s): a deleted database would not be noticed", marker, exc)


def open_verified(
    path: Path,
    *,
    create: bool = False,
    read_only: bool = False,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
) -> sqlite_utils.Database:
    """Open `path` and prove it is an SQLite database, writing nothing to it.

    `create` makes a missing file, empty and mode 0600 (an empty file is a valid empty
    database). `read_only` sets `query_only`, so nothing done on the connection can write.
    """
    _check_location(path, create=create, read_only=read_only)
    if create and not path.exists():
        _create_private_file(path)
    try:
        conn = sqlite3.connect(path)
    except sqlite3.Error as exc:
        raise storage_error(path, exc) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if read_only:
            conn.execute("PRAGMA query_only = ON")
        # SQLite reads and checks the file header on the first query, not on connect; a read
        # creates no journal, and a non-WAL file (any non-database) gets no -wal or -shm.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise storage_error(path, exc) from exc
        raise
    # Plugins would add functions to our connection behind our back; we use none.
    return sqlite_utils.Database(conn, execute_plugins=False)


def storage_error(path: Path, exc: BaseException) -> StorageError:
    """Turn an error met while opening `path` into a sentence a shopkeeper can act on."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, sqlite3.Error):
        return _from_sqlite(path, exc)
    if isinstance(exc, OSError):
        return _from_os(path, exc)
    return StorageError(
        f"Could not open the database {path}: {type(exc).__name__}: {exc}. "
        "This is a bug in shopbell; please report it with the log.",
        path=path,
    )


def _set_write_pragmas(db: sqlite_utils.Database, path: Path) -> None:
    # journal_mode cannot change inside a transaction; with driver autocommit none is opened.
    with db.ensure_autocommit_on():
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise DatabaseUnavailableError(
            f"The database {path} cannot use write-ahead logging (it stays in {mode} mode). "
            "Keep the database on a local disk, not a network drive.",
            path=path,
        )
    db.execute("PRAGMA foreign_keys = ON")
    # FULL: a committed outbox row survives a power cut, which NORMAL does not promise in WAL.
    db.execute("PRAGMA synchronous = FULL")
    # What is deleted or overwritten is zeroed in the file, not left in free pages for anyone
    # who reads the file (a blanked message text, a deleted customer).
    db.execute("PRAGMA secure_delete = ON")
    # A write that fires a trigger (the message counts, m018) keeps a statement journal to
    # undo just that statement; in a temporary file that tripled an insert's CPU (bench figures
    # in docs/benchmarks.md "Issue 20"). Its size is one statement's pages.
    db.execute("PRAGMA temp_store = MEMORY")


def _check_location(path: Path, *, create: bool, read_only: bool) -> None:
    """Explain a missing folder or missing permission before SQLite reports it vaguely."""
    folder = path.parent
    if path.is_dir():
        raise DatabaseUnavailableError(
            f"The database path {path} is a folder, not a file. "
            "Change the database path in the configuration to a file name.",
            path=path,
        )
    if not folder.is_dir():
        raise DatabaseUnavailableError(
            f"Cannot open the database {path}: the folder {folder} does not exist. "
            "Create that folder, or change the database path in the configuration.",
            path=path,
        )
    if not path.exists():
        if create:
            return
        raise DatabaseUnavailableError(
            f"There is no database at {path}. Check the path; shopbell creates the database "
            "when the daemon first starts.",
            path=path,
        )
    wanted = os.R_OK if read_only else os.R_OK | os.W_OK
    if not os.access(path, wanted):
        raise DatabaseUnavailableError(
            f"No permission to {'read' if read_only else 'read and write'} the database {path}. "
            "Run shopbell as the user that owns the file, or fix the file's permissions.",
            path=path,
        )
    # WAL keeps two files beside the database (-wal, -shm); SQLite must be able to make them.
    if not read_only and not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseUnavailableError(
            f"No permission to write in the folder {folder}, where the database {path} needs "
            "its journal files. Give the shopbell user write access to that folder.",
            path=path,
        )


def _create_private_file(path: Path) -> None:
    # O_EXCL: never truncate a file that appeared since we looked; 0600 because the database
    # holds phone numbers, tokens and password hashes.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return
    except OSError as exc:
        raise _from_os(path, exc) from exc
    os.close(fd)
    logger.info("created an empty database at %s", path)


def _from_os(path: Path, exc: OSError) -> DatabaseUnavailableError:
    folder = path.parent
    if exc.errno in (errno.EACCES, errno.EPERM):
        message = (
            f"No permission to create the database {path} in the folder {folder}. "
            "Give the shopbell user write access to that folder, or change the database path."
        )
    elif exc.errno == errno.ENOENT:
        message = (
            f"Cannot create the database {path}: the folder {folder} does not exist. "
            "Create that folder, or change the database path in the configuration."
        )
    elif exc.errno == errno.EROFS:
        message = (
            f"Cannot create the database {path}: the disk holding {folder} is read-only. "
            "Choose a database path on a writable disk."
        )
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        message = f"Cannot create the database {path}: the disk is full. Free some space."
    else:
        message = (
            f"Cannot create the database {path}: {exc.strerror or exc}. "
            "Check the disk and the folder, then try again."
        )
    return DatabaseUnavailableError(message, path=path)


def _from_sqlite(path: Path, exc: sqlite3.Error) -> StorageError:
    # Python 3.11 exposes the (extended) result code name, e.g. SQLITE_IOERR_SHORT_READ.
    name = getattr(exc, "sqlite_errorname", "") or ""
    said = f"(SQLite said: {exc})"
    if name == "SQLITE_NOTADB":
        return NotADatabaseError(path)
    if name.startswith("SQLITE_CORRUPT"):
        return StorageError(
            f"The database {path} is damaged {said}. Stop shopbell and restore the latest "
            "backup; keep the damaged file for inspection.",
            path=path,
        )
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")):
        return DatabaseUnavailableError(
            f"Cannot write to the database {path} {said}. Check that the file and its folder "
            "are writable by the shopbell user and the disk is not read-only.",
            path=path,
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return DatabaseUnavailableError(
            f"Cannot open the database {path} {said}. Check that the file and its folder "
            "exist and the shopbell user may read and write them.",
            path=path,
        )
    if name.startswith("SQLITE_FULL"):
        return DatabaseUnavailableError(
            f"The disk holding the database {path} is full. Free some space, then try again.",
            path=path,
        )
    if name.startswith("SQLITE_IOERR"):
        return DatabaseUnavailableError(
            f"The disk reported an error reading or writing the database {path} {said}. "
            "Check the disk (is it failing or unplugged?), then try again.",
            path=path,
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return DatabaseUnavailableError(
            f"The database {path} is locked by another program {said}. "
            "Stop the other program (another shopbell?), then try again.",
            path=path,
        )
    return StorageError(
        f"Cannot use the database {path} {said}. Check the file, or restore a backup.",
        path=path,
    )
